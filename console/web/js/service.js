// service.js: the service page, the counters /metrics exports, read now.
"use strict";

MQ.servicePage = {
  async refresh() {
    const s = await MQ.get("service");
    MQ.$("service-clients").textContent = MQ.num(s.clients);
    MQ.$("service-updated").textContent = "Updated " + new Date(s.at).toLocaleTimeString("en-GB", { hour12: false }) + ".";
    const td = (label, v, cls) => MQ.el("td", { "data-label": label, class: cls, text: v });
    this.fill("pools-table", s.pools, (p) => [td("Backend", p.backend), td("Database", p.database), td("Role", p.role),
      td("Active", MQ.num(p.active), "num"), td("Idle", MQ.num(p.idle), "num"),
      td("Waiting", MQ.num(p.waiting), "num"), td("Size", MQ.num(p.max), "num")], "No backend pool yet.");
    this.fill("pins-table", s.pins, (c) => [td("Cause", c.label), td("Sessions", MQ.num(c.count), "num")], "None.");
    this.fill("denials-table", s.denials, (c) => [td("Reason", c.label), td("Source", c.source),
      td("Statements", MQ.num(c.count), "num")], "None.");
    this.fill("auth-table", s.auth_failures, (c) => [td("Reason", c.label), td("Source", c.source),
      td("Attempts", MQ.num(c.count), "num")], "None.");
    this.fill("closed-table", s.connections_closed, (c) => [td("Reason", c.label),
      td("Connections", MQ.num(c.count), "num")], "None.");
  },

  fill(id, rows, cells, empty) {
    const body = MQ.$(id).tBodies[0];
    if (!rows.length) {
      const n = MQ.$(id).tHead.rows[0].cells.length;
      body.replaceChildren(MQ.el("tr", {}, MQ.el("td", { colspan: String(n), class: "note", text: empty })));
      return;
    }
    body.replaceChildren(...rows.map((r) => MQ.el("tr", {}, ...cells(r))));
  },
};
