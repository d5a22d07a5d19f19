// queue.js: one queue: counts, charts, the message list (browsing changes
// nothing), one message, send, delete / archive / purge / drop.
"use strict";

MQ.queuePage = {
  name: "",
  info: null,     // the queue's row of /mqstack/v1/queues
  after: 0,       // the current page starts after this message id
  next: null,     // where the next page starts, null on the last page
  open: null,     // { id, state } of the message shown in detail
  charts: null,

  enter(name) {
    this.name = name;
    this.after = 0;
    this.open = null;
    MQ.$("queue-title").textContent = "Queue " + name;
    MQ.$("message-detail").hidden = true;
    MQ.$("send-result").textContent = "";
    this.charts = {
      rates: new MQ.Chart(MQ.$("chart-rates"), ["sent", "received", "deleted"]),
      depth: new MQ.Chart(MQ.$("chart-depth"), ["visible", "in_flight", "delayed"]),
    };
  },

  leave() {
    if (this.charts) {
      this.charts.rates.destroy();
      this.charts.depth.destroy();
    }
    this.charts = null;
  },

  async refresh() {
    const data = await MQ.get("queues");
    this.info = data.queues.find((q) => q.queue_name === this.name) || null;
    this.renderInfo();
    await this.loadMessages();
  },

  async refreshStats() {
    const st = await MQ.stats(this.name);
    if (!this.charts) return;
    const qs = st.queues[this.name];
    this.charts.rates.update(MQ.chartData(st, qs, ["sent", "received", "deleted"]));
    this.charts.depth.update(MQ.chartData(st, qs, ["visible", "in_flight", "delayed"]));
  },

  renderInfo() {
    const q = this.info;
    const counts = MQ.$("queue-counts");
    if (!q) {
      MQ.$("queue-kind").textContent = "This token may not list this queue, or it does not exist.";
      counts.replaceChildren();
      MQ.$("queue-abilities").textContent = "";
      return;
    }
    MQ.$("queue-kind").textContent = "Kind: " + MQ.kindOf(q) + ". Created " + MQ.time(q.created_at) + ".";
    const d = q.depth || {};
    const item = (key, label, v) => [MQ.el("dt", { text: label }), MQ.el("dd", { "data-col": key, text: v })];
    counts.replaceChildren(...item("visible", "Visible", MQ.num(d.visible)),
      ...item("in_flight", "In flight", MQ.num(d.in_flight)), ...item("delayed", "Delayed", MQ.num(d.delayed)),
      ...item("archived", "Archived", MQ.num(d.archived)), ...item("oldest", "Oldest visible", MQ.age(d.oldest_visible_age_sec)));
    const can = q.can || {};
    const names = { read: "browse and read", send: "send", delete: "delete", archive: "archive", drop: "purge or drop" };
    const yes = Object.keys(names).filter((k) => can[k]).map((k) => names[k]);
    const no = Object.keys(names).filter((k) => !can[k]).map((k) => names[k]);
    MQ.$("queue-abilities").textContent = no.length === 0
      ? "This token may do everything here."
      : "This token may " + (yes.length ? yes.join(", ") : "only list this queue") +
        ". Its grants do not allow it to " + no.join(", ") + " here: those buttons will be refused.";
  },

  async loadMessages() {
    const state = MQ.$("state-filter").value, limit = MQ.$("page-size").value;
    const path = "queues/" + encodeURIComponent(this.name) + "/messages?state=" + state +
      "&limit=" + limit + "&after=" + this.after;
    const body = MQ.$("messages-table").tBodies[0];
    let page;
    try {
      page = await MQ.get(path);
    } catch (e) {
      body.replaceChildren();
      MQ.$("messages-empty").hidden = false;
      MQ.$("messages-empty").textContent = e.message;
      return;
    }
    this.next = page.next_after;
    MQ.$("next-page").disabled = this.next === null;
    MQ.$("first-page").disabled = this.after === 0;
    body.replaceChildren(...page.messages.map((m) => this.messageRow(m, state)));
    MQ.$("messages-empty").hidden = page.messages.length > 0;
    MQ.$("messages-empty").textContent = "No messages in this state.";
  },

  messageRow(m, state) {
    const td = (label, v, cls) => MQ.el("td", { "data-label": label, class: cls, text: v });
    const open = MQ.el("button", { type: "button", class: "link", "aria-label": "Open message " + m.msg_id, text: "Open",
      onclick: () => MQ.run(() => this.openMessage(m.msg_id, state)) });
    return MQ.el("tr", { "data-msg-id": String(m.msg_id) },
      td("Id", String(m.msg_id), "num"), td("Enqueued", MQ.time(m.enqueued_at)), td("Reads", String(m.read_ct), "num"),
      td("Visible at", MQ.time(m.vt)),
      MQ.el("td", { "data-label": "Message", class: "preview" }, MQ.el("code", { text: m.preview || "null" })),
      td("Size", MQ.bytes(m.message_bytes), "num"), MQ.el("td", { "data-label": "Open" }, open));
  },

  async openMessage(id, state) {
    const m = await MQ.get("queues/" + encodeURIComponent(this.name) + "/messages/" + id +
      (state === "archived" ? "?state=archived" : ""));
    this.open = { id, state };
    const shown = (v, bytes) => v === null && bytes > 0
      ? "(" + MQ.bytes(bytes) + ": too large to show here)" : JSON.stringify(v, null, 2);
    MQ.$("detail-title").textContent = "Message " + id + (state === "archived" ? " (archived " + MQ.time(m.archived_at) + ")" : "") +
      ", read " + m.read_ct + " times, visible at " + MQ.time(m.vt);
    MQ.$("message-json").textContent = shown(m.message, m.message_bytes);
    MQ.$("message-headers").textContent = m.headers === null && !m.headers_bytes ? "(none)" : shown(m.headers, m.headers_bytes);
    MQ.$("msg-delete").hidden = MQ.$("msg-archive").hidden = state === "archived";
    MQ.$("message-detail").hidden = false;
    MQ.$("message-detail").scrollIntoView({ block: "nearest" });
  },

  async messageAction(fn, verb) {
    if (!this.open) return;
    const id = this.open.id;
    const ok = await MQ.confirm(verb + " message " + id + "?",
      verb + " message " + id + " of queue \u201c" + this.name + "\u201d? This cannot be undone.", verb);
    if (!ok) return;
    await MQ.run(async () => {
      const done = await MQ.pgmq(fn, { queue_name: this.name, msg_id: id });
      MQ.$("send-result").textContent = done ? verb + "d message " + id + "." : "Message " + id + " was already gone.";
      MQ.$("message-detail").hidden = true;
      this.open = null;
      await this.refresh();
    });
  },

  async send(ev) {
    ev.preventDefault();
    MQ.$("send-result").textContent = "";
    let msg, headers;
    try {
      msg = JSON.parse(MQ.$("send-message").value);
      const h = MQ.$("send-headers").value.trim();
      headers = h ? JSON.parse(h) : undefined;
    } catch (e) {
      MQ.showError("The message and headers must be JSON: " + e.message);
      return;
    }
    const args = { queue_name: this.name, msg: msg, delay: Number(MQ.$("send-delay").value || 0) };
    if (headers !== undefined) args.headers = headers;
    await MQ.run(async () => {
      const ids = await MQ.pgmq("send", args);
      MQ.$("send-result").textContent = "Sent message " + (Array.isArray(ids) ? ids.join(", ") : ids) + ".";
      await this.refresh();
    });
  },

  async queueAction(fn, verb, what) {
    const n = this.info && this.info.depth ? this.info.depth.visible + this.info.depth.in_flight + this.info.depth.delayed : null;
    const ok = await MQ.confirm(verb + " queue \u201c" + this.name + "\u201d?",
      verb + " queue \u201c" + this.name + "\u201d: " + what + (n !== null ? " It holds " + MQ.num(n) + " messages now." : "") +
      " This cannot be undone.", verb + " " + this.name);
    if (!ok) return;
    await MQ.run(async () => {
      const res = await MQ.pgmq(fn, { queue_name: this.name });
      if (fn === "drop_queue") {
        location.hash = "#/queues";
        return;
      }
      MQ.$("send-result").textContent = "Purged " + MQ.num(res) + " messages from " + this.name + ".";
      this.after = 0;
      await this.refresh();
    });
  },

  bind() {
    MQ.$("send-form").addEventListener("submit", (ev) => this.send(ev));
    MQ.$("state-filter").addEventListener("change", () => { this.after = 0; MQ.run(() => this.loadMessages()); });
    MQ.$("page-size").addEventListener("change", () => { this.after = 0; MQ.run(() => this.loadMessages()); });
    MQ.$("first-page").addEventListener("click", () => { this.after = 0; MQ.run(() => this.loadMessages()); });
    MQ.$("next-page").addEventListener("click", () => {
      if (this.next !== null) { this.after = this.next; MQ.run(() => this.loadMessages()); }
    });
    MQ.$("msg-close").addEventListener("click", () => { MQ.$("message-detail").hidden = true; this.open = null; });
    MQ.$("msg-delete").addEventListener("click", () => this.messageAction("delete", "Delete"));
    MQ.$("msg-archive").addEventListener("click", () => this.messageAction("archive", "Archive"));
    MQ.$("purge-queue").addEventListener("click", () =>
      this.queueAction("purge_queue", "Purge", "every message in it is deleted; the queue stays."));
    MQ.$("drop-queue").addEventListener("click", () =>
      this.queueAction("drop_queue", "Drop", "the queue, its messages and its archive are deleted."));
  },
};
