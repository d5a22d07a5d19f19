// queues.js: the queues page, one row per queue the token may list.
"use strict";

MQ.queuesPage = {
  sparks: new Map(), // queue name -> Chart
  stats: null,

  async refresh() {
    const data = await MQ.get("queues");
    this.render(data);
    MQ.$("queues-updated").textContent = "Updated " + new Date().toLocaleTimeString("en-GB", { hour12: false }) +
      (data.truncated ? " - showing the first " + data.max_queues + " queues" : "");
  },

  async refreshStats() {
    this.stats = await MQ.stats();
    this.drawStats();
  },

  render(data) {
    const body = MQ.$("queues-table").tBodies[0];
    const seen = new Set();
    for (const q of data.queues) {
      seen.add(q.queue_name);
      let tr = body.querySelector('tr[data-queue="' + CSS.escape(q.queue_name) + '"]');
      if (!tr) {
        tr = this.row(q);
        body.append(tr);
      }
      this.fill(tr, q);
    }
    for (const tr of Array.from(body.rows)) {
      if (!seen.has(tr.dataset.queue)) {
        const c = this.sparks.get(tr.dataset.queue);
        if (c) c.destroy();
        this.sparks.delete(tr.dataset.queue);
        tr.remove();
      }
    }
    MQ.$("queues-empty").hidden = data.queues.length > 0;
    this.drawStats();
  },

  row(q) {
    const cell = (col, label, cls) => MQ.el("td", { "data-col": col, "data-label": label, class: cls });
    const link = MQ.el("a", { href: "#/queue/" + encodeURIComponent(q.queue_name), text: q.queue_name });
    const tr = MQ.el("tr", { "data-queue": q.queue_name },
      MQ.el("th", { scope: "row", "data-col": "name" }, link),
      cell("kind", "Kind"), cell("visible", "Visible", "num"), cell("in_flight", "In flight", "num"),
      cell("delayed", "Delayed", "num"), cell("archived", "Archived", "num"),
      cell("oldest", "Oldest visible", "num"), cell("sent", "Sent/s", "num"),
      cell("received", "Received/s", "num"), cell("deleted", "Deleted/s", "num"),
      cell("spark", "Last 15 min", "spark"));
    return tr;
  },

  fill(tr, q) {
    const set = (col, v) => { tr.querySelector('[data-col="' + col + '"]').textContent = v; };
    const d = q.depth || {};
    set("kind", MQ.kindOf(q));
    set("visible", MQ.num(d.visible));
    set("in_flight", MQ.num(d.in_flight));
    set("delayed", MQ.num(d.delayed));
    set("archived", MQ.num(d.archived));
    set("oldest", MQ.age(d.oldest_visible_age_sec));
  },

  drawStats() {
    const st = this.stats;
    if (!st) return;
    for (const tr of MQ.$("queues-table").tBodies[0].rows) {
      const name = tr.dataset.queue;
      const qs = st.queues[name];
      const set = (col, v) => { tr.querySelector('[data-col="' + col + '"]').textContent = v; };
      set("sent", MQ.rate(MQ.recent(st, qs && qs.sent)));
      set("received", MQ.rate(MQ.recent(st, qs && qs.received)));
      set("deleted", MQ.rate(MQ.recent(st, qs && qs.deleted)));
      let c = this.sparks.get(name);
      if (!c) {
        const box = MQ.el("div", { class: "sparkbox", role: "img", "aria-label": "Sent and received per second, last 15 minutes, " + name });
        tr.querySelector('[data-col="spark"]').append(box);
        c = new MQ.Chart(box, ["sent", "received"], { small: true });
        this.sparks.set(name, c);
      }
      c.update(MQ.chartData(st, qs, ["sent", "received"]));
    }
  },

  leave() {
    for (const c of this.sparks.values()) c.destroy();
    this.sparks.clear();
    MQ.$("queues-table").tBodies[0].replaceChildren();
  },
};
