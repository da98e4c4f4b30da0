// Lintel console: reads and changes through /api/v1 with the session
// cookie; changes carry the CSRF token. Everything is rendered with
// textContent: nothing from the server is parsed as HTML.
"use strict";

const API = "/api/v1";
const role = document.body.dataset.role;
const canOperate = role === "operator" || role === "admin";

function csrf() {
  for (const c of document.cookie.split("; ")) {
    const [k, v] = c.split("=");
    if (k === "lintel_csrf") return decodeURIComponent(v);
  }
  return "";
}

async function api(method, path, body) {
  const opts = { method, credentials: "same-origin", headers: {} };
  if (method !== "GET") opts.headers["X-CSRF-Token"] = csrf();
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(API + path, opts);
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) {
    const msg = data && data.detail ? data.detail : r.status + " " + r.statusText;
    throw new Error(data && data.field ? data.field + ": " + msg : msg);
  }
  return data;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function row(tbody, cells) {
  const tr = el("tr");
  for (const c of cells) {
    const td = el("td");
    if (c instanceof Node) td.append(c); else td.textContent = c === undefined || c === null ? "-" : String(c);
    tr.append(td);
  }
  tbody.append(tr);
  return tr;
}

function ago(t) {
  if (!t) return "-";
  const s = Math.round((Date.now() - Date.parse(t)) / 1000);
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function status(id, text, error) {
  const p = document.getElementById(id);
  p.textContent = text;
  p.classList.toggle("error", !!error);
}

function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

// auditCell is the edges table's audit column for an edge's audit report
// (null when it could not be read): "not verified" until central's
// auditor has checked anything, "intact" or "BROKEN" and the number of
// breaks, and the number of revoked grants, styled as an alarm.
function auditCell(a) {
  if (!a) return "-";
  const breaks = a.breaks || [], grants = a.revoked_grants || [];
  const parts = [breaks.length ? "BROKEN: " + plural(breaks.length, "break", "breaks") : a.through ? "intact" : "not verified"];
  if (grants.length) parts.push(plural(grants.length, "revoked grant", "revoked grants"));
  return el("span", parts.join(" · "), breaks.length || grants.length ? "alarm" : a.through ? "" : "unverified");
}

function when(t) { return t ? new Date(t).toLocaleString() : "?"; }

// showAlarms lists every edge's audit alarms in the banner above the
// edges table, which shows only when there is one.
function showAlarms(edges, audits) {
  const box = document.getElementById("audit-alarms");
  const list = box.querySelector("ul");
  list.replaceChildren();
  edges.forEach((e, i) => {
    const a = audits[i];
    if (!a) return;
    for (const b of a.breaks || []) {
      const x = b.alarm;
      let text = `${e.edge}: audit chain ${x.kind} at ${when(b.time)}, event ${x.event}`;
      if (x.expected_seq || x.got_seq) text += ` (expected record ${x.expected_seq}, got ${x.got_seq})`;
      if (x.subject) text += ` on ${x.subject}`;
      if (x.detail) text += `: ${x.detail}`;
      const li = el("li", text, "alarm-break");
      li.dataset.edge = e.edge;
      list.append(li);
    }
    for (const g of a.revoked_grants || []) {
      const x = g.alarm;
      let text = `${e.edge}: revoked credential granted: ${x.holder || x.credential.slice(0, 12) + "…"} at door ${x.door} (reader ${x.reader})` +
        `${x.offline ? " offline" : ""} at ${when(x.decision_time)}; revoked at central at ${when(x.revoked_at)}`;
      if (x.reason) text += `: ${x.reason}`;
      const li = el("li", text, "alarm-grant");
      li.dataset.edge = e.edge;
      list.append(li);
    }
  });
  box.hidden = list.children.length === 0;
  document.getElementById("audit-alarms-title").textContent = plural(list.children.length, "audit alarm", "audit alarms");
}

async function loadEdges() {
  const tbody = document.querySelector("#edges tbody");
  const edges = await api("GET", "/edges");
  const audits = await Promise.all(edges.map(e => api("GET", "/edges/" + encodeURIComponent(e.edge) + "/audit").catch(() => null)));
  tbody.replaceChildren();
  edges.forEach((e, i) => {
    const tr = row(tbody, [e.edge, el("span", e.link, e.link), e.backlog, e.credential_version, e.credentials_received,
      ago(e.credentials_synced_at), auditCell(audits[i])]);
    tr.dataset.edge = e.edge;
  });
  showAlarms(edges, audits);
  const sel = document.getElementById("cred-edge-select");
  if (sel.options.length === 0) {
    for (const e of edges) sel.append(new Option(e.edge, e.edge));
    loadCredentials();
  }
}

async function command(thing, action, out) {
  out.textContent = action + ": sending…";
  try {
    const r = await api("POST", "/commands?wait=15s", { thing, action });
    out.textContent = action + ": " + r.status + (r.error ? " (" + r.error + ")" : "");
  } catch (err) {
    out.textContent = action + ": " + err.message;
  }
  loadDoors();
}

async function loadDoors() {
  const tbody = document.querySelector("#doors tbody");
  const doors = await api("GET", "/doors");
  const last = {};
  for (const tr of tbody.querySelectorAll("tr")) last[tr.dataset.door] = tr.lastChild.textContent;
  tbody.replaceChildren();
  for (const d of doors) {
    const key = d.edge + "." + d.code;
    let state = "unknown";
    if (d.state) state = (d.state.locked ? "locked" : "unlocked") + ", " + (d.state.open ? "open" : "closed");
    const actions = el("span");
    const out = el("span", last[key] || "");
    if (canOperate && d.locks && d.locks.length) {
      for (const action of ["unlock", "lock"]) {
        const b = el("button", action[0].toUpperCase() + action.slice(1));
        b.type = "button";
        b.dataset.action = action;
        b.addEventListener("click", () => command(d.locks[0], action, out));
        actions.append(b, " ");
      }
    }
    const tr = row(tbody, [d.name || d.code, d.edge, state, actions, out]);
    tr.dataset.door = key;
  }
}

// rate is the event-rate chart: events of the live stream counted per
// second over the last rateSeconds, drawn as SVG bars (no inline style, so
// the strict CSP holds), split by message type.
const rateSeconds = 120;
const rate = { counts: new Map() }; // second -> {evt, other}

function countRate(e) {
  const sec = Math.floor(Date.now() / 1000);
  const c = rate.counts.get(sec) || { evt: 0, other: 0 };
  if (e.type === "evt") c.evt++; else c.other++;
  rate.counts.set(sec, c);
}

function drawRate() {
  const svg = document.getElementById("rate-chart");
  const now = Math.floor(Date.now() / 1000);
  for (const sec of rate.counts.keys()) if (sec <= now - rateSeconds) rate.counts.delete(sec);
  let max = 1, total = 0;
  for (const c of rate.counts.values()) { max = Math.max(max, c.evt + c.other); total += c.evt + c.other; }
  const ns = "http://www.w3.org/2000/svg", w = 600, h = 80, bw = w / rateSeconds;
  svg.replaceChildren();
  for (let i = 0; i < rateSeconds; i++) {
    const c = rate.counts.get(now - rateSeconds + 1 + i);
    if (!c) continue;
    let y = h;
    for (const [n, cls] of [[c.evt, "bar-evt"], [c.other, "bar-other"]]) {
      if (!n) continue;
      const bh = Math.max(1, Math.round(n / max * (h - 4)));
      y -= bh;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", String(i * bw));
      r.setAttribute("y", String(y));
      r.setAttribute("width", String(Math.max(1, bw - 1)));
      r.setAttribute("height", String(bh));
      r.setAttribute("class", cls);
      r.dataset.count = String(n);
      svg.append(r);
    }
  }
  status("rate-status", `${total} events in the last ${rateSeconds / 60} minutes; peak ${max}/s`);
}

function live() {
  const tbody = document.querySelector("#live tbody");
  const src = new EventSource(API + "/events/stream");
  src.addEventListener("open", () => status("live-status", "live"));
  src.addEventListener("error", () => status("live-status", "reconnecting…", true));
  // The server ends the stream when the session was logged out or its
  // API token revoked: reconnecting would be refused.
  src.addEventListener("ended", () => {
    src.close();
    status("live-status", "the session has ended: reload the page to log in again", true);
  });
  setInterval(drawRate, 1000);
  src.addEventListener("event", m => {
    const e = JSON.parse(m.data);
    countRate(e);
    const tr = el("tr");
    for (const c of [new Date(e.time).toLocaleTimeString(), e.thing, e.type, e.name || "-"]) tr.append(el("td", c));
    tbody.prepend(tr);
    while (tbody.children.length > 50) tbody.lastChild.remove();
  });
}

async function loadAccess(ev) {
  if (ev) ev.preventDefault();
  const f = new FormData(document.getElementById("access-filter"));
  const q = new URLSearchParams({ desc: "true", limit: "50" });
  for (const k of ["edge", "door", "granted", "since"]) if (f.get(k)) q.set(k, f.get(k));
  const tbody = document.querySelector("#access tbody");
  try {
    const page = await api("GET", "/decisions?" + q);
    tbody.replaceChildren();
    for (const d of page.items) {
      row(tbody, [new Date(d.time).toLocaleString(), d.edge, d.door, d.holder, d.granted ? "granted" : "denied: " + d.reason, d.offline ? "yes" : ""]);
    }
    status("access-status", page.items.length + " decisions");
  } catch (err) {
    status("access-status", err.message, true);
  }
}

async function loadCredentials() {
  const edge = document.getElementById("cred-edge-select").value;
  if (!edge) return;
  const tbody = document.querySelector("#credentials tbody");
  const list = await api("GET", "/edges/" + encodeURIComponent(edge) + "/credentials");
  tbody.replaceChildren();
  for (const c of list) {
    const actions = el("span");
    if (canOperate && c.state !== "revoked") {
      const steps = c.state === "active" ? ["suspend", "revoke"] : ["reinstate", "revoke"];
      for (const step of steps) {
        const b = el("button", step);
        b.type = "button";
        b.dataset.action = step;
        b.addEventListener("click", async () => {
          try {
            const body = step === "reinstate" ? undefined : { reason: step + " from the console" };
            await api("POST", "/credentials/" + c.id + "/" + step, body);
            status("cred-status", c.holder + ": " + step + " done");
          } catch (err) {
            status("cred-status", err.message, true);
          }
          loadCredentials();
          refreshEdges();
        });
        actions.append(b, " ");
      }
    }
    const tr = row(tbody, [c.holder, c.id.slice(0, 12) + "…", c.state + (c.reason ? " (" + c.reason + ")" : ""), (c.doors || []).join(", "), actions]);
    tr.dataset.id = c.id;
  }
}

async function addCredential(ev) {
  ev.preventDefault();
  const form = ev.target;
  const f = new FormData(form);
  const edge = document.getElementById("cred-edge-select").value;
  const doors = String(f.get("doors") || "").split(",").map(s => s.trim()).filter(Boolean);
  try {
    const c = await api("POST", "/edges/" + encodeURIComponent(edge) + "/credentials", { holder: f.get("holder"), card: f.get("card"), doors });
    status("cred-status", "added " + c.holder + " as " + c.id.slice(0, 12) + "…");
    form.reset();
  } catch (err) {
    status("cred-status", err.message, true);
  }
  loadCredentials();
  refreshEdges();
}

// refreshEdges reloads the edges table at once, for a change that moves an
// edge's credential set version, rather than at its next refresh.
function refreshEdges() {
  loadEdges().catch(err => console.warn(err));
}

function every(ms, f) {
  const run = () => f().catch(err => console.warn(err));
  run();
  setInterval(run, ms);
}

document.addEventListener("DOMContentLoaded", () => {
  const logout = document.getElementById("logout");
  if (logout) logout.addEventListener("click", async () => { await api("POST", "/auth/logout"); location.reload(); });
  const tokenForm = document.getElementById("token-login");
  if (tokenForm) tokenForm.addEventListener("submit", async ev => {
    ev.preventDefault();
    try {
      await api("POST", "/auth/token", { token: new FormData(tokenForm).get("token") });
      location.reload();
    } catch (err) {
      status("login-status", err.message, true);
    }
  });
  if (!role) return;
  every(5000, loadEdges);
  every(5000, loadDoors);
  live();
  document.getElementById("access-filter").addEventListener("submit", loadAccess);
  loadAccess();
  document.getElementById("cred-edge-select").addEventListener("change", loadCredentials);
  document.getElementById("cred-add").addEventListener("submit", addCredential);
});
