// api.js: the token, calls to the REST listener, DOM helpers, messages.
// Every call carries the token as a Bearer header; the server checks it and
// its grants on every request, so nothing here is a security decision.
"use strict";
const MQ = window.MQ = {};

MQ.tokenKey = "mqstack.console.token";

// takeTokenFromFragment moves a token from the banner link's fragment
// (#token=...) into this tab's session storage and out of the address bar.
MQ.takeTokenFromFragment = function () {
  const h = location.hash;
  if (!h.startsWith("#token=")) return;
  const t = decodeURIComponent(h.slice("#token=".length)).trim();
  if (t) sessionStorage.setItem(MQ.tokenKey, t);
  history.replaceState(null, "", location.pathname + "#/queues");
};

MQ.token = () => sessionStorage.getItem(MQ.tokenKey) || "";
MQ.setToken = (t) => sessionStorage.setItem(MQ.tokenKey, t);
MQ.clearToken = () => sessionStorage.removeItem(MQ.tokenKey);

// describe words an error answer (PostgREST style: code, message, hint).
MQ.describe = function (status, data) {
  if (!data || typeof data !== "object") return "HTTP " + status;
  let s = data.message || ("HTTP " + status);
  if (status === 403) s = "Not allowed: " + s;
  if (data.hint) s += " Hint: " + data.hint;
  if (data.code) s += " (HTTP " + status + ", " + data.code + ")";
  return s;
};

// call sends one request; a JSON body makes it a POST. It throws an Error
// with .status and the server's words on any answer but 2xx.
MQ.call = async function (path, body) {
  const opts = { headers: { "Authorization": "Bearer " + MQ.token() }, cache: "no-store" };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    const err = new Error("mqstack did not answer: " + e.message);
    err.status = 0;
    throw err;
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!res.ok) {
    const err = new Error(MQ.describe(res.status, data));
    err.status = res.status;
    if (res.status === 401) MQ.onUnauthorized(err.message);
    throw err;
  }
  return data;
};

MQ.pgmq = (fn, args) => MQ.call("/pgmq/v1/" + fn, args || {});
MQ.get = (path) => MQ.call("/mqstack/v1/" + path);

// el builds an element; text children become text nodes, never HTML, so
// queue names and message bodies cannot inject markup.
MQ.el = function (tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
};

MQ.$ = (id) => document.getElementById(id);

MQ.showError = function (msg) {
  MQ.$("alert-text").textContent = msg;
  MQ.$("alert").hidden = false;
};
MQ.clearError = function () {
  MQ.$("alert").hidden = true;
  MQ.$("alert-text").textContent = "";
};

// run awaits fn and shows its error in the alert instead of failing silently.
MQ.run = async function (fn) {
  try {
    return await fn();
  } catch (e) {
    if (e.status !== 401) MQ.showError(e.message);
    return undefined;
  }
};

MQ.num = (v) => (v === null || v === undefined) ? "-" : Number(v).toLocaleString("en-US");
MQ.rate = (v) => (v === null || v === undefined) ? "-" : (v >= 10 ? v.toFixed(0) : v.toFixed(2));
MQ.age = function (sec) {
  if (sec === null || sec === undefined) return "-";
  if (sec < 60) return sec.toFixed(0) + " s";
  if (sec < 3600) return (sec / 60).toFixed(1) + " min";
  if (sec < 86400) return (sec / 3600).toFixed(1) + " h";
  return (sec / 86400).toFixed(1) + " d";
};
MQ.bytes = function (n) {
  if (n === null || n === undefined) return "-";
  if (n < 1024) return n + " B";
  if (n < 1 << 20) return (n / 1024).toFixed(1) + " KiB";
  return (n / (1 << 20)).toFixed(1) + " MiB";
};
MQ.time = (iso) => iso ? new Date(iso).toLocaleString("en-GB", { hour12: false }) : "-";

// kindOf names what makes a queue of its kind, as the queues page shows it.
MQ.kindOf = function (q) {
  const k = [];
  k.push(q.is_partitioned ? "partitioned" : "plain");
  if (q.is_unlogged) k.push("unlogged");
  if (q.fifo_index) k.push("FIFO index");
  if (q.notify_insert) k.push("insert notifications");
  if (q.topic_bindings > 0) k.push(q.topic_bindings + " topic binding" + (q.topic_bindings > 1 ? "s" : ""));
  return k.join(", ");
};

// confirm asks in a modal dialog that names what will happen.
MQ.confirm = function (title, text, okLabel) {
  const d = MQ.$("confirm");
  MQ.$("confirm-title").textContent = title;
  MQ.$("confirm-text").textContent = text;
  MQ.$("confirm-ok").textContent = okLabel;
  return new Promise((resolve) => {
    const done = (v) => () => { d.close(); cleanup(); resolve(v); };
    const ok = done(true), cancel = done(false);
    const onCancel = () => { cleanup(); resolve(false); };
    function cleanup() {
      MQ.$("confirm-ok").removeEventListener("click", ok);
      MQ.$("confirm-cancel").removeEventListener("click", cancel);
      d.removeEventListener("cancel", onCancel);
    }
    MQ.$("confirm-ok").addEventListener("click", ok);
    MQ.$("confirm-cancel").addEventListener("click", cancel);
    d.addEventListener("cancel", onCancel);
    d.showModal();
    MQ.$("confirm-cancel").focus();
  });
};
