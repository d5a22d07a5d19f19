// charts.js: the console's charts, drawn by uPlot (vendor/uplot, pinned).
"use strict";

MQ.colors = { sent: "#2563eb", received: "#16a34a", deleted: "#dc2626", visible: "#2563eb", in_flight: "#d97706", delayed: "#7c3aed" };

// stats fetches the rate and depth history (all listable queues, or one).
MQ.stats = (queue) => MQ.get("stats" + (queue ? "?queue=" + encodeURIComponent(queue) : ""));

// recent is the mean of a rate series over its last minute: steadier than
// the last sample, and a burst stays visible for a while.
MQ.recent = function (stats, s) {
  if (!s || !stats.t.length) return null;
  const from = stats.t[stats.t.length - 1] - 60;
  let sum = 0, n = 0;
  for (let i = s.length - 1; i >= 0 && stats.t[i] > from; i--) {
    if (s[i] !== null) { sum += s[i]; n++; }
  }
  return n ? sum / n : null;
};

// chartData turns a queue's series into uPlot's columns.
MQ.chartData = function (stats, qs, keys) {
  const n = stats.t.length;
  const cols = [stats.t];
  for (const k of keys) cols.push(qs && qs[k] ? qs[k] : new Array(n).fill(null));
  return cols;
};

// Chart keeps one uPlot in a container and redraws it with new data,
// resizing with the container.
MQ.Chart = class {
  constructor(container, keys, opts) {
    this.container = container;
    this.keys = keys;
    this.small = !!(opts && opts.small);
    this.plot = null;
  }
  size() {
    const w = Math.max(this.container.clientWidth || 0, this.small ? 100 : 240);
    return { width: this.small ? Math.min(w, 160) : w, height: this.small ? 36 : 180 };
  }
  options() {
    const series = [{}].concat(this.keys.map((k) => ({
      label: k.replace("_", " "), stroke: MQ.colors[k] || "#555", width: this.small ? 1 : 1.5,
      points: { show: false }, spanGaps: false,
    })));
    // x spans the samples kept: the last 15 minutes, or the process's life
    // when it is younger.
    const x = { time: true };
    // A little room below zero keeps a flat line at 0 in sight.
    const y = { range: (u, min, max) => { const top = Math.max(max || 0, 1) * 1.1; return [-top * 0.04, top]; } };
    const o = Object.assign(this.size(), { series, scales: { x, y } });
    if (this.small) {
      o.legend = { show: false };
      o.cursor = { show: false };
      o.axes = [{ show: false }, { show: false }];
    }
    return o;
  }
  update(data) {
    if (!window.uPlot) return;
    if (!this.plot) {
      this.plot = new uPlot(this.options(), data, this.container);
      return;
    }
    this.plot.setData(data);
    const s = this.size();
    if (s.width !== this.plot.width) this.plot.setSize(s);
  }
  destroy() {
    if (this.plot) this.plot.destroy();
    this.plot = null;
  }
};
