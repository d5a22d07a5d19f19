// app.js: sign-in, the page router (#/queues, #/queue/<name>, #/service)
// and the refresh loop that keeps the shown page current without a reload.
"use strict";

MQ.refreshMs = 2000; // counts and messages
MQ.statsMs = 5000;   // charts: the server samples every few seconds
MQ.session = null;

MQ.pages = ["login", "queues", "queue", "service"];
MQ.current = null; // { name, page }

MQ.show = function (name) {
  for (const p of MQ.pages) MQ.$("page-" + p).hidden = p !== name;
  const signedIn = name !== "login";
  MQ.$("nav").hidden = !signedIn;
  MQ.$("who").hidden = !signedIn;
  for (const a of MQ.$("nav").querySelectorAll("a")) {
    const here = a.id === "nav-" + name || (name === "queue" && a.id === "nav-queues");
    if (here) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
};

MQ.onUnauthorized = function (msg) {
  MQ.clearToken();
  MQ.session = null;
  MQ.leave();
  MQ.show("login");
  MQ.$("login-error").textContent = "Sign in again: " + msg;
};

MQ.describeSession = function (s) {
  let who = "Role " + s.role + (s.subject ? " (" + s.subject + ")" : "");
  if (s.expires_at) who += ", token valid until " + MQ.time(s.expires_at);
  MQ.$("whoami").textContent = who;
  const note = MQ.$("grants-note");
  if (s.limited) {
    note.hidden = false;
    note.textContent = "This token is limited by queue grants: it lists only the queues its grants name" +
      (s.service ? "." : ", and cannot open the service page (it needs the list grant on every queue).");
  } else {
    note.hidden = true;
  }
  MQ.$("nav-service").hidden = !s.service;
};

MQ.leave = function () {
  if (!MQ.current) return;
  if (MQ.current.page.leave) MQ.current.page.leave();
  MQ.current = null;
};

// route shows the page the fragment names, after checking the token.
MQ.route = async function () {
  MQ.takeTokenFromFragment();
  MQ.clearError();
  if (!MQ.token()) {
    MQ.leave();
    MQ.show("login");
    return;
  }
  if (!MQ.session) {
    MQ.session = await MQ.run(() => MQ.get("session"));
    if (!MQ.session) return;
    MQ.describeSession(MQ.session);
  }
  const h = location.hash;
  MQ.leave();
  if (h.startsWith("#/queue/")) {
    const name = decodeURIComponent(h.slice("#/queue/".length));
    MQ.queuePage.enter(name);
    MQ.current = { name: "queue", page: MQ.queuePage };
  } else if (h === "#/service") {
    MQ.current = { name: "service", page: MQ.servicePage };
  } else {
    MQ.current = { name: "queues", page: MQ.queuesPage };
  }
  MQ.show(MQ.current.name);
  await MQ.tick(true);
};

// tick refreshes the shown page; the stats every statsMs.
MQ.lastStats = 0;
MQ.tick = async function (force) {
  const cur = MQ.current;
  if (!cur) return;
  await MQ.run(() => cur.page.refresh());
  if (cur.page.refreshStats && (force || Date.now() - MQ.lastStats >= MQ.statsMs)) {
    MQ.lastStats = Date.now();
    await MQ.run(() => cur.page.refreshStats());
  }
};

MQ.loop = async function () {
  // One refresh at a time: a slow answer delays the next, never piles up.
  await MQ.tick(false);
  setTimeout(MQ.loop, MQ.refreshMs);
};

MQ.start = function () {
  MQ.$("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const t = MQ.$("token-input").value.trim();
    if (!t) return;
    MQ.setToken(t);
    MQ.$("login-error").textContent = "";
    MQ.$("token-input").value = "";
    MQ.session = null;
    if (!location.hash.startsWith("#/")) history.replaceState(null, "", location.pathname + "#/queues");
    await MQ.route();
  });
  MQ.$("signout").addEventListener("click", () => {
    MQ.clearToken();
    MQ.session = null;
    MQ.leave();
    MQ.show("login");
  });
  MQ.$("alert-close").addEventListener("click", MQ.clearError);
  MQ.queuePage.bind();
  window.addEventListener("hashchange", MQ.route);
  MQ.route().then(() => setTimeout(MQ.loop, MQ.refreshMs));
};

MQ.start();
