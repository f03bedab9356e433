// @ts-check
// Holocron operator dashboard. Overview: polls GET /admin/overview and
// /admin/cluster. Objects: the object admin API (GET /admin/objects, GET and
// DELETE /admin/objects/{class}/{name}, POST …/move).

const REFRESH_MS = 2000;
const LS_TOKEN = "holocron.adminToken";

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

/**
 * @param {string} tag @param {Record<string, any>} [props] @param {...any} kids
 * @returns {any}
 */
function h(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "style") e.setAttribute("style", v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** @param {string} s */
function hue(s) {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
  return (x >>> 0) % 360;
}
/** Distinct colours for nodes, in name order; others hash to a hue. */
const PALETTE = ["#5b50e6", "#0ea5e9", "#f59e0b", "#10b981", "#ef4444", "#a855f7", "#14b8a6", "#f97316", "#64748b", "#ec4899"];
let nodeOrder = /** @type {string[]} */ ([]);
/** @param {string} s */
function color(s) {
  const i = nodeOrder.indexOf(s);
  return i >= 0 ? PALETTE[i % PALETTE.length] : `hsl(${hue(s)} 62% 52%)`;
}
/** @param {number} n */
const fmtInt = (n) => Number(n || 0).toLocaleString("en-US");
/** @param {number} r */
const fmtRate = (r) => (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2));
/** @param {string} iso */
function ago(iso) {
  const t = Date.parse(iso);
  if (!isFinite(t) || t <= 0) return "–";
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return Math.floor(s) + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h " + Math.floor((s % 3600) / 60) + "m ago";
  return Math.floor(s / 86400) + "d ago";
}

const CLASS_COLORS = /** @type {Record<string, string>} */ ({ ChatLobby: "#5b50e6", RoomManager: "#0ea5e9", Leaderboard: "#f59e0b" });
/** @param {string} c */
const classColor = (c) => CLASS_COLORS[c] || `hsl(${hue(c)} 62% 52%)`;

/** Per node: previous reading and the messages/s history. */
const rates = /** @type {Map<string, {total: number, t: number, rate: number|null, hist: number[]}>} */ (new Map());
let token = localStorage.getItem(LS_TOKEN) || "";
let lastOK = 0;
let timer = 0;
let inflight = false;

/**
 * One admin API request with the admin token. Fails with an Error carrying
 * the API's status, code and message ({"code","message"} bodies).
 * @param {string} method @param {string} path @param {(text: string) => any} [parse]
 */
async function api(method, path, parse = JSON.parse) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(path, { method, headers, cache: "no-store" });
  const text = await res.text();
  /** @type {any} */
  let body = null;
  try { body = text ? (res.ok ? parse(text) : JSON.parse(text)) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const err = /** @type {any} */ (new Error((body && body.message) || `${method} ${path}: ${res.status} ${res.statusText}`));
    err.status = res.status;
    err.code = body && body.code;
    throw err;
  }
  return body;
}
/** @param {string} path */
const get = (path) => api("GET", path);

async function refresh() {
  if (inflight) return;
  inflight = true;
  try {
    const [ov, cl] = await Promise.all([get("/admin/overview"), get("/admin/cluster").catch((e) => ({ error: e }))]);
    if (cl && cl.error && cl.error.status === 401) throw cl.error;
    $("token-dialog").hidden = true;
    $("admin-signout").hidden = !token;
    $("admin-error").hidden = true;
    lastOK = Date.now();
    render(ov, cl && cl.error ? null : cl, cl && cl.error ? cl.error : null);
  } catch (e) {
    const err = /** @type {any} */ (e);
    if (err.status === 401) {
      askToken(token ? "That token was refused." : "");
    } else {
      const b = $("admin-error");
      b.hidden = false;
      b.textContent = `Cannot load the dashboard: ${err.message || err}. Retrying every ${REFRESH_MS / 1000} s; the figures below are from the last good reading.`;
    }
  } finally {
    inflight = false;
    renderLive();
  }
}

function renderLive() {
  const el = $("admin-live");
  const age = lastOK ? (Date.now() - lastOK) / 1000 : Infinity;
  if ($("admin-pause").checked) { el.dataset.state = "connecting"; $("admin-live-text").textContent = "Paused"; return; }
  if (!lastOK) { el.dataset.state = "connecting"; $("admin-live-text").textContent = "Loading…"; return; }
  el.dataset.state = age < REFRESH_MS * 3 / 1000 ? "connected" : "failed";
  $("admin-live-text").textContent = age < 2 ? "Live · just updated" : `Live · updated ${Math.floor(age)}s ago`;
}

/** @param {string} msg */
function askToken(msg) {
  $("token-dialog").hidden = false;
  const e = $("token-error");
  e.hidden = !msg;
  e.textContent = msg;
  $("token-input").focus();
}

$("token-form").addEventListener("submit", (/** @type {Event} */ e) => {
  e.preventDefault();
  token = $("token-input").value.trim();
  if (!token) return;
  localStorage.setItem(LS_TOKEN, token);
  $("token-input").value = "";
  refresh();
  reloadPage();
});
$("admin-signout").addEventListener("click", () => {
  localStorage.removeItem(LS_TOKEN);
  token = "";
  refresh();
  reloadPage();
});

/**
 * @param {any} ov /admin/overview
 * @param {any} cl /admin/cluster, or null when it failed
 * @param {any} clErr
 */
function render(ov, cl, clErr) {
  $("admin-node").textContent = ov.node;
  $("admin-mode").textContent = ov.mode === "cluster" ? "Cluster" : "Single node";
  $("admin-insecure").hidden = !ov.insecure;
  servedBy = ov.node;
  setTitle();
  const members = ov.members || [];
  const nodes = ov.nodes || [];
  const order = [...new Set([...members.map((/** @type {any} */ m) => m.name), ...nodes.map((/** @type {any} */ n) => n.node)])].sort();
  const changed = order.join() !== nodeOrder.join() || ov.mode !== mode;
  nodeOrder = order;
  mode = ov.mode;
  if (changed) onClusterShape();

  // Partition leadership, by member name.
  const byRaft = new Map(members.map((/** @type {any} */ m) => [m.raftId, m.name]));
  const parts = cl && Array.isArray(cl.partitions) ? cl.partitions : [];
  const leads = new Map();
  for (const p of parts) {
    const name = p.leader ? byRaft.get(p.leader) || "raft " + p.leader : "";
    if (name) leads.set(name, (leads.get(name) || 0) + 1);
  }

  // messages/s per node from two readings.
  let totalRate = 0, haveRate = false;
  for (const n of nodes) {
    if (n.error || !n.stats) continue;
    const total = (n.stats.messagesIn || 0) + (n.stats.messagesOut || 0);
    const t = Date.parse(n.time) || Date.now();
    const r = rates.get(n.node);
    if (!r || total < r.total || t <= r.t) {
      rates.set(n.node, { total, t, rate: r && total >= r.total ? r.rate : null, hist: r ? r.hist : [] });
    } else {
      const rate = (total - r.total) / ((t - r.t) / 1000);
      r.hist.push(rate);
      if (r.hist.length > 40) r.hist.shift();
      Object.assign(r, { total, t, rate });
    }
    const cur = rates.get(n.node);
    if (cur && cur.rate !== null) { totalRate += cur.rate; haveRate = true; }
  }

  // Summary.
  const up = nodes.filter((/** @type {any} */ n) => !n.error).length;
  $("summary-nodes").textContent = `${up}/${nodes.length}`;
  $("summary-nodes-sub").textContent = ov.mode === "cluster" ? `${members.filter((/** @type {any} */ m) => m.state === "alive").length} alive members` : "embedded single node";
  const objs = nodes.flatMap((/** @type {any} */ n) => n.objects || []);
  $("summary-objects").textContent = fmtInt(objs.length);
  $("summary-objects-sub").textContent = `${objs.filter((/** @type {any} */ o) => o.live).length} live · ${objs.filter((/** @type {any} */ o) => !o.live).length} hibernating`;
  $("summary-sockets").textContent = fmtInt(nodes.reduce((/** @type {number} */ s, /** @type {any} */ n) => s + (n.stats?.sockets || 0), 0));
  $("summary-rate").textContent = haveRate ? fmtRate(totalRate) : "…";
  $("summary-rate-sub").textContent = haveRate ? "in + out, all nodes" : "measuring (needs two readings)";
  if (cl && cl.mode === "single-node") {
    $("summary-parts").textContent = "–";
    $("summary-parts-sub").textContent = "single node: no partitions";
  } else {
    const served = parts.filter((/** @type {any} */ p) => p.leader).length;
    $("summary-parts").textContent = parts.length ? `${served}/${parts.length}` : "–";
    $("summary-parts-sub").textContent = clErr ? "cluster status unavailable" : "with a known leader";
  }

  renderMembers(ov, members, leads);
  renderNodes(nodes, leads);
  renderPartitions(cl, clErr, parts, members, leads, byRaft);
}

/** @param {any} ov @param {any[]} members @param {Map<string, number>} leads */
function renderMembers(ov, members, leads) {
  const body = $("members-body");
  $("members").tHead.hidden = ov.mode !== "cluster";
  if (ov.mode !== "cluster") {
    $("members-note").textContent = "single-node mode";
    body.replaceChildren(h("tr", { class: "empty-row" }, h("td", { colspan: "8" }, `Single-node mode: ${ov.node} serves every object from its embedded store; there is no cluster membership.`)));
    return;
  }
  $("members-note").textContent = `${members.length} known to ${ov.node}`;
  body.replaceChildren(...members.map((m) => h("tr", { dataset: { member: m.name } },
    h("td", {}, h("span", { class: "obj-class" }, h("i", { style: `background:${color(m.name)}` }), h("b", {}, m.name))),
    h("td", {}, h("span", { class: "badge " + m.state }, m.state)),
    h("td", { class: "mono" }, String(m.raftId ?? "")),
    h("td", { class: "mono" }, m.http || "–"),
    h("td", { class: "mono" }, m.gossip || "–"),
    h("td", {}, m.initialized ? "yes" : "no"),
    h("td", { title: m.since }, ago(m.since)),
    h("td", { class: "num" }, String(leads.get(m.name) || 0)))));
}

/** @param {number[]} hist */
function sparkline(hist) {
  const w = 300, hgt = 46;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", "spark");
  if (hist.length < 2) return svg;
  const max = Math.max(1, ...hist);
  const step = w / (hist.length - 1);
  const pts = hist.map((v, i) => [i * step, hgt - 3 - (v / max) * (hgt - 8)]);
  const d = pts.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join("");
  for (const [cls, path] of [["area", `${d}L${w},${hgt}L0,${hgt}Z`], ["line", d]]) {
    const p = document.createElementNS("http://www.w3.org/2000/svg", "path");
    p.setAttribute("class", cls);
    p.setAttribute("d", path);
    svg.append(p);
  }
  return svg;
}

/** @param {any[]} nodes @param {Map<string, number>} leads */
function renderNodes(nodes, leads) {
  const box = $("nodes");
  box.replaceChildren(...nodes.map((n) => {
    const r = rates.get(n.node);
    const objs = [...(n.objects || [])].sort((a, b) => (b.sockets - a.sockets) || String(a.class + a.name).localeCompare(String(b.class + b.name)));
    const dot = h("span", { class: "node-dot" }, (n.node.replace(/[^A-Za-z0-9]/g, "").slice(0, 2) || "?").toUpperCase());
    dot.style.background = color(n.node);
    return h("article", { class: "card node-card" + (n.error ? " down" : ""), dataset: { node: n.node } },
      h("div", { class: "node-head" }, dot,
        h("div", { class: "grow" }, h("h3", {}, n.node), h("span", { class: "sub mono" }, n.http || (n.mode === "single-node" ? "this server" : "–"))),
        n.error ? h("span", { class: "badge dead" }, /^member is /.test(n.error) ? n.error.slice(10) : "no report") : h("span", { class: "badge alive" }, "up")),
      n.error ? h("div", { class: "node-error" }, h("b", {}, "Report failed: "), n.error) : null,
      h("div", { class: "metrics" },
        h("div", { class: "metric" }, h("span", {}, "Objects"), h("b", { class: "m-objects" }, fmtInt(n.stats?.objects))),
        h("div", { class: "metric" }, h("span", {}, "Sockets"), h("b", { class: "m-sockets" }, fmtInt(n.stats?.sockets))),
        h("div", { class: "metric" }, h("span", {}, "Messages/s"), h("b", { class: "m-rate" }, r && r.rate !== null ? fmtRate(r.rate) : "…")),
        h("div", { class: "metric" }, h("span", {}, "Leads"), h("b", {}, String(leads.get(n.node) ?? (n.mode === "single-node" ? "–" : 0))))),
      h("div", {}, r && r.hist.length >= 2 ? sparkline(r.hist) : h("div", { class: "spark spark-empty" }, "collecting readings…"),
        h("div", { class: "muted", style: "font-size:12px;display:flex;justify-content:space-between" },
          h("span", {}, `in ${fmtInt(n.stats?.messagesIn)} · out ${fmtInt(n.stats?.messagesOut)} total`),
          h("span", {}, `last ${Math.round((r ? r.hist.length : 0) * REFRESH_MS / 1000)} s`))),
      h("div", { class: "table-wrap" }, h("table", { class: "table objects" },
        h("thead", {}, h("tr", {}, h("th", {}, "Class"), h("th", {}, "Name"), h("th", {}, "Id"), h("th", { class: "num" }, "Sockets"), h("th", {}, "State"))),
        h("tbody", {}, objs.length ? objs.map((o) => h("tr", { dataset: { class: o.class, name: o.name || "" } },
          h("td", {}, h("span", { class: "obj-class" }, h("i", { style: `background:${CLASS_COLORS[o.class] || color(o.class)}` }), o.class)),
          h("td", { class: "mono" }, o.name ? h("a", { class: "obj-link", href: objectHash(o.class, o.name), title: "Inspect its stored data" }, o.name) : "–"),
          h("td", { class: "mono muted", title: o.id }, String(o.id).slice(0, 12) + "…"),
          h("td", { class: "num" }, fmtInt(o.sockets)),
          h("td", {}, h("span", { class: "badge " + (o.live ? "live" : "hibernating") }, o.live ? "live" : "hibernating"))))
          : h("tr", { class: "empty-row" }, h("td", { colspan: "5" }, n.error ? "No data" : "No active objects on this node"))))));
  }));
}

/**
 * @param {any} cl @param {any} clErr @param {any[]} parts @param {any[]} members
 * @param {Map<string, number>} leads @param {Map<any, any>} byRaft
 */
function renderPartitions(cl, clErr, parts, members, leads, byRaft) {
  const note = $("parts-note");
  if (clErr) {
    note.textContent = "unavailable: " + clErr.message;
    return;
  }
  if (!cl || cl.mode === "single-node" || !parts.length) {
    note.textContent = "single-node mode";
    $("leaders").replaceChildren(h("div", { class: "single" }, "This server runs as a single node: objects live in its embedded store, there is no Raft replication or partition leadership to show."));
    $("part-map").replaceChildren();
    $("partitions").replaceChildren();
    $("part-details").hidden = true;
    return;
  }
  $("part-details").hidden = false;
  note.textContent = `${parts.length} partitions as seen by ${cl.node}`;
  const max = Math.max(1, ...leads.values());
  const names = [...new Set([...members.map((m) => m.name), ...leads.keys()])];
  $("leaders").replaceChildren(...names.map((name) => {
    const n = leads.get(name) || 0;
    const bar = h("i");
    bar.style.width = (n / max * 100).toFixed(1) + "%";
    bar.style.background = color(name);
    return h("div", { class: "leader-row", dataset: { leader: name } }, h("span", { class: "mono" }, name), h("span", { class: "bar" }, bar), h("b", {}, String(n)));
  }));
  $("part-map").replaceChildren(...parts.map((p) => {
    const name = p.leader ? byRaft.get(p.leader) || "raft " + p.leader : "";
    const s = h("span", { class: name ? "" : "none", title: `partition ${p.partition}: ${name || "no known leader"}` }, String(p.partition));
    if (name) s.style.background = color(name);
    return s;
  }));
  const nm = (/** @type {any} */ id) => byRaft.get(id) || String(id);
  $("partitions").replaceChildren(...parts.map((p) => {
    const lag = p.lag ? Math.max(0, ...Object.values(p.lag).map(Number)) : null;
    return h("tr", {},
      h("td", {}, String(p.partition)),
      h("td", {}, p.leader ? nm(p.leader) : "–"),
      h("td", {}, (p.voters || []).map(nm).join(", ") || "–"),
      h("td", {}, (p.learners || []).map(nm).join(", ") || "–"),
      h("td", { class: "num" }, p.term ?? "–"),
      h("td", { class: "num" }, p.commit ?? "–"),
      h("td", { class: "num" }, p.applied ?? "–"),
      h("td", { class: "num" }, lag === null ? "–" : String(lag)),
      h("td", {}, p.serving ? "yes" : ""));
  }));
}

// ---- pages ------------------------------------------------------------------

/** "cluster" or "single-node", from the last overview. */
let mode = "";
let servedBy = "";
/** @type {"overview"|"objects"} */
let page = "overview";

function setTitle() {
  const what = page === "objects" ? (detail ? `${detail.class} ${detail.name}` : "Objects") : "Operator";
  document.title = servedBy ? `Holocron · ${servedBy} · ${what}` : `Holocron · ${what}`;
}

/** @param {string} cls @param {string} name */
const objectHash = (cls, name) => `#objects/${encodeURIComponent(cls)}/${encodeURIComponent(name)}`;
/** @param {string} cls @param {string} name */
const objectPath = (cls, name) => `/admin/objects/${encodeURIComponent(cls)}/${encodeURIComponent(name)}`;

/** Shows the page and object the location hash names. */
function route() {
  const [p, cls, name] = location.hash.replace(/^#/, "").split("/");
  const next = p === "objects" ? "objects" : "overview";
  const entering = next !== page || !objs.loaded;
  page = next;
  $("overview-page").hidden = page !== "overview";
  $("objects-page").hidden = page !== "objects";
  $("tab-overview").setAttribute("aria-selected", String(page === "overview"));
  $("tab-objects").setAttribute("aria-selected", String(page === "objects"));
  if (page === "objects" && entering && !objs.loading) loadObjects(true);
  if (page === "objects" && cls && name) {
    let c = "", n = "";
    try { c = decodeURIComponent(cls); n = decodeURIComponent(name); } catch { /* a mangled link */ }
    if (c && n && (!detail || detail.class !== c || detail.name !== n)) openDetail(c, n);
  } else if (detail) {
    closeDetail();
  }
  setTitle();
}
window.addEventListener("hashchange", route);

/** After a new token: load what the current page shows again. */
function reloadPage() {
  if (page !== "objects") return;
  loadObjects(true);
  if (detail) loadDetail(false);
}

/** Node names or the mode changed: node colours and the Move button follow. */
function onClusterShape() {
  if (objs.loaded) renderObjects();
  if (detail) renderDetailFacts();
}

// ---- formatting -------------------------------------------------------------

const NONE = "—";

/** @param {number} n */
function fmtBytes(n) {
  n = Number(n || 0);
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

/** @param {number} s seconds, ≥ 0 */
function span(s) {
  if (s < 60) return Math.floor(s) + "s";
  if (s < 3600) return Math.floor(s / 60) + "m";
  if (s < 86400) {
    const hrs = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return m ? `${hrs}h ${m}m` : `${hrs}h`;
  }
  return Math.floor(s / 86400) + "d";
}

/**
 * Relative time of an RFC 3339 timestamp: "in 5m", "12s ago". With past
 * only (activity), a time slightly ahead of this browser's clock is "just now".
 * @param {string} iso @param {boolean} [pastOnly]
 */
function rel(iso, pastOnly = false) {
  const t = Date.parse(iso);
  if (!iso || !isFinite(t)) return NONE;
  const d = (t - Date.now()) / 1000;
  if (Math.abs(d) < 2 || (pastOnly && d > 0)) return pastOnly ? "just now" : "due now";
  return d > 0 ? `in ${span(d)}` : `${span(-d)} ago`;
}

/**
 * A <time> that keeps its relative text current (see tick), or "—".
 * @param {string|undefined} iso @param {boolean} [pastOnly]
 */
function relTime(iso, pastOnly = false) {
  if (!iso || !isFinite(Date.parse(iso))) return h("span", { class: "none" }, NONE);
  const overdue = !pastOnly && Date.parse(iso) < Date.now() - 2000;
  return h("time", { datetime: iso, title: new Date(iso).toLocaleString(), class: overdue ? "overdue" : null, dataset: { rel: pastOnly ? "past" : "any" } }, rel(iso, pastOnly));
}
setInterval(() => {
  for (const el of document.querySelectorAll("time[data-rel]")) {
    const t = /** @type {HTMLTimeElement} */ (el);
    const text = rel(t.dateTime, t.dataset.rel === "past");
    if (t.textContent !== text) t.textContent = text;
  }
}, 1000);

/** @param {any} err */
const errText = (err) => (err && err.message ? err.message : String(err)) + (err && err.code ? ` (${err.code})` : "");

/**
 * A failed request: a 401 asks for the token (as the overview does); anything
 * else is the caller's to show.
 * @param {any} err
 */
function authFailed(err) {
  if (err && err.status === 401) {
    askToken(token ? "That token was refused." : "");
    return true;
  }
  return false;
}

/** @param {HTMLElement} el @param {any} err @param {string} [prefix] */
function showInlineError(el, err, prefix = "") {
  el.hidden = false;
  el.replaceChildren(svgIcon("alert"), h("div", {}, prefix ? h("b", {}, prefix + " ") : null, errText(err)));
}

/** @param {string} name */
function svgIcon(name) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", "#i-" + name);
  svg.append(use);
  return svg;
}

/**
 * @param {"error"|"ok"|"info"} kind @param {string} title @param {string} [text]
 */
function toast(kind, title, text = "") {
  const box = $("toasts");
  const t = h("div", { class: "toast " + kind, role: kind === "error" ? "alert" : "status" },
    svgIcon(kind === "error" ? "alert" : "info"),
    h("div", {}, h("b", {}, title), text ? h("p", {}, text) : null),
    h("button", { class: "x", type: "button", "aria-label": "Dismiss", onclick: () => t.remove() }, "×"));
  box.append(t);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => t.remove(), kind === "error" ? 9000 : 5000);
}

/** @param {string} cls */
const classChip = (cls) => h("span", { class: "obj-class" }, h("i", { style: `background:${classColor(cls)}` }), cls);
/** @param {string} node */
function nodeChip(node) {
  if (!node) return h("span", { class: "none" }, NONE);
  return h("span", { class: "node-chip" }, h("i", { style: `background:${color(node)}` }), h("span", { class: "mono" }, node));
}

// ---- objects list -----------------------------------------------------------

/** The classes this server registers; classes seen in listings are added. */
const KNOWN_CLASSES = ["ChatLobby", "RoomManager", "Leaderboard"];
/** Objects per page; ?limit=N in the address (1..1000) overrides it. */
const PAGE_SIZE = Math.min(1000, Math.max(1, Number(new URLSearchParams(location.search).get("limit")) || 50));

const objs = {
  /** @type {any[]} */ list: [],
  next: "",
  cls: "",
  loading: false,
  loaded: false,
  gen: 0,
  /** @type {Set<string>} */ classes: new Set(KNOWN_CLASSES),
};

function renderClassFilter() {
  const classes = [...objs.classes];
  $("class-filter").replaceChildren(...["", ...classes].map((c) => h("button", {
    type: "button", class: "seg-btn", dataset: { class: c }, "aria-pressed": String(c === objs.cls),
    onclick: () => { if (c !== objs.cls) { objs.cls = c; renderClassFilter(); loadObjects(true); } },
  }, c ? h("i", { style: `background:${classColor(c)}` }) : null, c || "All classes")));
  const sel = $("open-class");
  const cur = sel.value || classes[0];
  sel.replaceChildren(...classes.map((c) => h("option", { value: c, selected: c === cur }, c)));
}

/** @param {boolean} reset start again from the first page */
async function loadObjects(reset) {
  const gen = reset ? ++objs.gen : objs.gen;
  if (!reset && (objs.loading || !objs.next)) return;
  objs.loading = true;
  $("objects-more").disabled = true;
  $("objects-refresh").disabled = true;
  if (reset && !objs.loaded) renderObjects();
  const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (objs.cls) q.set("class", objs.cls);
  if (!reset) q.set("after", objs.next);
  try {
    const pg = await get("/admin/objects?" + q);
    if (gen !== objs.gen) return;
    const rows = Array.isArray(pg.objects) ? pg.objects : [];
    objs.list = reset ? rows : [...objs.list, ...rows];
    objs.next = pg.next || "";
    objs.loaded = true;
    $("objects-error").hidden = true;
    let grew = false;
    for (const o of rows) if (o.class && !objs.classes.has(o.class)) { objs.classes.add(o.class); grew = true; }
    if (grew) renderClassFilter();
    if (detail) { renderDetailFacts(); renderKeysFoot(); }
  } catch (e) {
    if (gen !== objs.gen) return;
    if (!authFailed(e)) showInlineError($("objects-error"), e, "Cannot list objects:");
  } finally {
    if (gen === objs.gen) {
      objs.loading = false;
      $("objects-refresh").disabled = false;
      renderObjects();
    }
  }
}

function renderObjects() {
  const body = $("objects-body");
  const list = objs.list;
  if (!list.length) {
    const what = objs.cls ? `${objs.cls} objects` : "objects";
    const msg = objs.loading ? "Loading objects…" : !objs.loaded ? "Objects not loaded." : `No stored ${what}. An object appears here once it has written data.`;
    body.replaceChildren(h("tr", { class: "empty-row" }, h("td", { colspan: "8" }, msg)));
  } else {
    body.replaceChildren(...list.map((o) => {
      const open = o.name ? () => { location.hash = objectHash(o.class, o.name); } : null;
      const selected = detail && detail.class === o.class && detail.name === o.name;
      return h("tr", {
        class: "obj-row" + (open ? "" : " unnamed") + (selected ? " selected" : ""),
        dataset: { id: o.id, class: o.class, name: o.name || "", node: o.node || "" },
        tabindex: open ? "0" : null,
        title: open ? null : "This object has no name: the admin API reads, deletes and moves objects by class and name",
        onclick: open,
        onkeydown: open ? (/** @type {KeyboardEvent} */ ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } } : null,
      },
      h("td", {}, classChip(o.class)),
      h("td", { class: "c-name" }, o.name ? h("b", { class: "mono" }, o.name) : h("span", { class: "none mono", title: o.id }, String(o.id).slice(0, 16) + "…")),
      h("td", { class: "c-node" }, nodeChip(o.node)),
      h("td", { class: "num c-keys" }, fmtInt(o.keys)),
      h("td", { class: "num c-size", title: `${fmtInt(o.bytes)} bytes` }, fmtBytes(o.bytes)),
      h("td", { class: "c-alarm" }, relTime(o.alarm)),
      h("td", { class: "c-activity" }, relTime(o.lastActivity, true)),
      h("td", { class: "chev-col" }, open ? svgIcon("chevron") : null));
    }));
  }
  const keys = list.reduce((s, o) => s + (o.keys || 0), 0);
  const bytes = list.reduce((s, o) => s + (o.bytes || 0), 0);
  $("objects-count").textContent = list.length
    ? `${fmtInt(list.length)} object${list.length === 1 ? "" : "s"} loaded · ${fmtInt(keys)} keys · ${fmtBytes(bytes)}${objs.next ? " · more on the next page" : ""}`
    : "";
  const more = $("objects-more");
  more.hidden = !objs.next;
  more.disabled = objs.loading;
  more.textContent = objs.loading && objs.list.length ? "Loading…" : "Load more";
}

$("objects-more").addEventListener("click", () => loadObjects(false));
$("objects-refresh").addEventListener("click", () => loadObjects(true));
$("open-form").addEventListener("submit", (/** @type {Event} */ e) => {
  e.preventDefault();
  const name = $("open-name").value.trim();
  if (!name) return;
  location.hash = objectHash($("open-class").value, name);
});
renderClassFilter();

// ---- object detail ----------------------------------------------------------

/**
 * The object open in the drawer.
 * @type {null | {class: string, name: string, data: any, keys: any[], more: boolean, loading: boolean, gen: number, moving: boolean}}
 */
let detail = null;
let detailGen = 0;
const KEY_PAGE = 200;
const CLAMP_LINES = 14;
const CLAMP_CHARS = 1500;

/** @param {string} cls @param {string} name */
function openDetail(cls, name) {
  detail = { class: cls, name, data: null, keys: [], more: false, loading: false, gen: ++detailGen, moving: false };
  $("object-panel").hidden = false;
  document.body.classList.add("drawer-open");
  $("key-prefix").value = "";
  $("object-notice").hidden = true;
  $("object-error").hidden = true;
  $("object-keys").replaceChildren();
  renderDetailFacts();
  if (objs.loaded) renderObjects();
  loadDetail(false);
  setTitle();
  $("object-drawer").focus({ preventScroll: true });
}

function closeDetail() {
  detail = null;
  detailGen++;
  $("object-panel").hidden = true;
  document.body.classList.remove("drawer-open");
  if (objs.loaded) renderObjects();
  setTitle();
}

/** Leaves the drawer (back to the list, in the address bar too). */
function leaveDetail() {
  if (location.hash.startsWith("#objects/")) location.hash = "#objects";
  else closeDetail();
}

/** The object's row in the loaded list, if any. */
const listed = () => detail ? objs.list.find((o) => o.class === detail?.class && o.name === detail?.name) : undefined;

/**
 * JSON.parse that keeps integers beyond 2^53 exact (stored values are often
 * int64s), where the browser can.
 * @param {string} text
 */
function parseExact(text) {
  const J = /** @type {any} */ (JSON);
  if (typeof J.rawJSON !== "function") return JSON.parse(text);
  return J.parse(text, (/** @type {string} */ _k, /** @type {any} */ v, /** @type {any} */ ctx) =>
    typeof v === "number" && !Number.isSafeInteger(v) && ctx && /^-?\d+$/.test(ctx.source) ? J.rawJSON(ctx.source) : v);
}

/** @param {boolean} append the next page of keys after the last one shown */
async function loadDetail(append) {
  const d = detail;
  if (!d || (append && (!d.more || d.loading))) return;
  if (!append) d.gen = ++detailGen;
  const gen = d.gen;
  d.loading = true;
  $("object-keys-more").disabled = true;
  $("object-reload").disabled = true;
  if (!append) $("object-keys").replaceChildren(h("div", { class: "kv-empty" }, "Loading stored keys…"));
  const q = new URLSearchParams({ limit: String(KEY_PAGE) });
  const prefix = $("key-prefix").value;
  if (prefix) q.set("prefix", prefix);
  if (append && d.keys.length) q.set("start", d.keys[d.keys.length - 1].key + "\u0000");
  try {
    const r = await api("GET", objectPath(d.class, d.name) + "?" + q, parseExact);
    if (detail !== d || d.gen !== gen) return;
    const keys = Array.isArray(r.keys) ? r.keys : [];
    d.data = r;
    d.keys = append ? [...d.keys, ...keys] : keys;
    d.more = !!r.more;
    $("object-error").hidden = true;
    renderDetailFacts();
    renderKeys(append ? keys : d.keys, append);
  } catch (e) {
    if (detail !== d || d.gen !== gen) return;
    if (!authFailed(e)) showInlineError($("object-error"), e, "Cannot read this object:");
    if (!append) $("object-keys").replaceChildren();
  } finally {
    if (detail === d && d.gen === gen) {
      d.loading = false;
      $("object-reload").disabled = false;
      renderKeysFoot();
    }
  }
}

function renderDetailFacts() {
  const d = detail;
  if (!d) return;
  const row = listed();
  const r = d.data || {};
  $("object-class").replaceChildren(classChip(d.class));
  $("object-title").textContent = d.name;
  $("object-id").textContent = r.id || row?.id || "";
  $("object-id").title = r.id || row?.id || "";
  $("object-node").replaceChildren(nodeChip(r.node || row?.node || ""));
  $("object-keycount").textContent = row ? fmtInt(row.keys) : r.keys ? (d.more ? `${fmtInt(d.keys.length)}+` : fmtInt(d.keys.length)) : NONE;
  $("object-size").textContent = row ? fmtBytes(row.bytes) : NONE;
  $("object-size").title = row ? `${fmtInt(row.bytes)} bytes` : "";
  $("object-alarm").replaceChildren(relTime(d.data ? r.alarm : row?.alarm));
  $("object-activity").replaceChildren(relTime(row?.lastActivity, true));
  const single = mode === "single-node";
  const move = $("object-move");
  move.disabled = single || d.moving || !mode;
  move.title = single ? "Single node: there is no other replica to move the object to" : "Evict the object and hand its partition's leadership to another replica";
  const hint = $("object-move-hint");
  hint.hidden = !single;
  hint.textContent = single ? "Move needs a cluster: on a single node there is no other replica to re-place the object on." : "";
}

/**
 * The value of one stored key: JSON pretty-printed and highlighted, text as
 * is; long ones start collapsed.
 * @param {any} k {key, value?, text?, bytes}
 */
function renderValue(k) {
  const isJSON = Object.prototype.hasOwnProperty.call(k, "value");
  const isText = !isJSON && typeof k.text === "string" && k.text !== "";
  const kind = isJSON ? "JSON" : isText ? "text" : "empty";
  const pre = h("pre", { class: "kv-value " + (isJSON ? "json" : "text") });
  let src = "";
  if (isJSON) {
    src = JSON.stringify(k.value, null, 2);
    pre.append(highlight(src));
  } else if (isText) {
    src = k.text;
    pre.textContent = src;
  }
  const lines = src ? src.split("\n").length : 0;
  const long = lines > CLAMP_LINES || src.length > CLAMP_CHARS;
  const copy = src && window.isSecureContext && navigator.clipboard ? h("button", {
    class: "btn btn-ghost btn-xs", type: "button", title: "Copy the value",
    onclick: async () => {
      try { await navigator.clipboard.writeText(src); toast("ok", "Copied", k.key); } catch (e) { toast("error", "Copy failed", errText(e)); }
    },
  }, svgIcon("copy"), "Copy") : null;
  const box = h("div", { class: "kv" + (long ? " long collapsed" : "") + (src ? "" : " bare"), dataset: { key: k.key, kind } },
    h("div", { class: "kv-head" },
      h("span", { class: "kv-key mono", title: k.key }, k.key),
      h("span", { class: "kv-kind kind-" + kind.toLowerCase() }, kind),
      h("span", { class: "kv-size", title: `${fmtInt(k.bytes)} bytes` }, fmtBytes(k.bytes)),
      copy),
    src ? pre : null);
  if (long) {
    const what = lines > 1 ? `${fmtInt(lines)} lines` : `${fmtInt(src.length)} characters`;
    const toggle = h("button", { class: "kv-toggle", type: "button", "aria-expanded": "false" }, `Show all ${what}`);
    toggle.addEventListener("click", () => {
      const open = box.classList.toggle("collapsed") === false;
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = open ? "Collapse" : `Show all ${what}`;
    });
    box.append(toggle);
  }
  return box;
}

const TOKEN = /("(?:[^"\\]|\\.)*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;
/** Pretty-printed JSON → text nodes and highlighted spans. @param {string} src */
function highlight(src) {
  const frag = document.createDocumentFragment();
  let last = 0;
  for (const m of src.matchAll(TOKEN)) {
    const i = m.index || 0;
    if (i > last) frag.append(src.slice(last, i));
    if (m[1] && m[2]) frag.append(h("span", { class: "j-key" }, m[1]), m[2]);
    else if (m[1]) frag.append(h("span", { class: "j-str" }, m[1]));
    else if (m[3]) frag.append(h("span", { class: "j-num" }, m[3]));
    else frag.append(h("span", { class: "j-lit" }, m[4]));
    last = i + m[0].length;
  }
  if (last < src.length) frag.append(src.slice(last));
  return frag;
}

/** @param {any[]} keys @param {boolean} append */
function renderKeys(keys, append) {
  const box = $("object-keys");
  if (!append) box.replaceChildren();
  if (!append && !keys.length) {
    const prefix = $("key-prefix").value;
    box.append(h("div", { class: "kv-empty" }, prefix
      ? `No keys start with “${prefix}”.`
      : "No stored data. The object has never written anything, or it was deleted."));
    return;
  }
  box.append(...keys.map(renderValue));
}

function renderKeysFoot() {
  const d = detail;
  if (!d) return;
  const more = $("object-keys-more");
  more.hidden = !d.more;
  more.disabled = d.loading;
  const row = listed();
  const prefix = $("key-prefix").value;
  $("object-keys-note").textContent = !d.keys.length ? "" : prefix
    ? `${fmtInt(d.keys.length)}${d.more ? "+" : ""} keys with this prefix`
    : row && row.keys > d.keys.length ? `showing ${fmtInt(d.keys.length)} of ${fmtInt(row.keys)} keys` : `${fmtInt(d.keys.length)}${d.more ? "+" : ""} keys`;
}

$("object-close").addEventListener("click", leaveDetail);
$("object-scrim").addEventListener("click", leaveDetail);
$("object-reload").addEventListener("click", () => { loadDetail(false); loadObjects(true); });
$("object-keys-more").addEventListener("click", () => loadDetail(true));
$("key-filter").addEventListener("submit", (/** @type {Event} */ e) => { e.preventDefault(); loadDetail(false); });
let prefixTimer = 0;
$("key-prefix").addEventListener("input", () => {
  clearTimeout(prefixTimer);
  prefixTimer = window.setTimeout(() => loadDetail(false), 250);
});
document.addEventListener("keydown", (/** @type {KeyboardEvent} */ e) => {
  if (e.key !== "Escape") return;
  if (!$("delete-dialog").hidden) closeDelete();
  else if (detail && $("token-dialog").hidden) leaveDetail();
});

// ---- move -------------------------------------------------------------------

/** @param {"ok"|"warn"|"info"} kind @param {...any} parts */
function notice(kind, ...parts) {
  const el = $("object-notice");
  el.hidden = false;
  el.className = "notice " + kind;
  el.replaceChildren(svgIcon(kind === "warn" ? "alert" : "info"), h("div", {}, ...parts));
}

async function moveObject() {
  const d = detail;
  if (!d || d.moving) return;
  d.moving = true;
  renderDetailFacts();
  notice("info", "Moving ", h("b", {}, d.name), "…");
  try {
    const r = await api("POST", objectPath(d.class, d.name) + "/move");
    if (detail !== d) return;
    if (!r.leadershipMoved) {
      notice("warn", h("b", {}, "Not moved. "), `The instance on ${r.from} was evicted (its sockets were told to reconnect), but no other caught-up replica took over its partition, so it stays on ${r.from}.`);
      return;
    }
    notice("info", `Handing the partition over from ${r.from}…`);
    // The response does not say where the object went: ask where its
    // partition is led now until that is another node.
    let loc = null;
    for (let i = 0; i < 20 && detail === d; i++) {
      await new Promise((res) => setTimeout(res, 300));
      try {
        const l = await get(`/admin/cluster/locate/${encodeURIComponent(d.class)}/${encodeURIComponent(d.name)}`);
        if (l && l.leader && l.leader !== r.from) { loc = l; break; }
      } catch { /* an election in progress; ask again */ }
    }
    if (detail !== d) return;
    if (loc) {
      notice("ok", h("b", {}, "Moved "), "from ", nodeChip(r.from), " to ", nodeChip(loc.leader),
        `. Partition ${loc.partition} went with it (every object in it); ${loc.leader} keeps it for 5 minutes.`);
      const row = listed();
      if (row) row.node = loc.leader;
      if (d.data) d.data.node = loc.leader;
      renderDetailFacts();
      renderObjects();
    } else {
      notice("warn", h("b", {}, "Leadership handed off "), `from ${r.from}, but no new owner is known yet. Reload in a moment.`);
    }
  } catch (e) {
    if (detail !== d) return;
    $("object-notice").hidden = true;
    if (!authFailed(e)) showInlineError($("object-error"), e, "Move failed:");
  } finally {
    d.moving = false;
    if (detail === d) renderDetailFacts();
  }
}
$("object-move").addEventListener("click", moveObject);

// ---- delete -----------------------------------------------------------------

function openDelete() {
  if (!detail) return;
  const d = detail;
  const row = listed();
  $("delete-title").textContent = `Delete ${d.class} “${d.name}”?`;
  $("delete-text").textContent = `Its stored data${row ? ` (${fmtInt(row.keys)} keys, ${fmtBytes(row.bytes)})` : ""} and alarm are deleted on every replica, and its open sockets are closed. This cannot be undone.`;
  $("delete-name").textContent = d.name;
  $("delete-input").value = "";
  $("delete-error").hidden = true;
  $("delete-submit").disabled = true;
  $("delete-submit").textContent = "Delete object";
  $("delete-dialog").hidden = false;
  $("delete-input").focus();
}
function closeDelete() {
  $("delete-dialog").hidden = true;
  if (detail) $("object-delete").focus({ preventScroll: true });
}
$("object-delete").addEventListener("click", openDelete);
$("delete-cancel").addEventListener("click", closeDelete);
$("delete-dialog").addEventListener("click", (/** @type {Event} */ e) => { if (e.target === $("delete-dialog")) closeDelete(); });
$("delete-input").addEventListener("input", () => {
  $("delete-submit").disabled = !detail || $("delete-input").value !== detail.name;
});
$("delete-form").addEventListener("submit", async (/** @type {Event} */ e) => {
  e.preventDefault();
  const d = detail;
  if (!d || $("delete-input").value !== d.name) return;
  const btn = $("delete-submit");
  btn.disabled = true;
  btn.textContent = "Deleting…";
  $("delete-error").hidden = true;
  try {
    await api("DELETE", objectPath(d.class, d.name));
    $("delete-dialog").hidden = true;
    objs.list = objs.list.filter((o) => !(o.class === d.class && o.name === d.name));
    toast("ok", `Deleted ${d.class} “${d.name}”`, "Its storage and alarm are gone on every replica.");
    if (detail === d) leaveDetail();
    renderObjects();
  } catch (err) {
    if (authFailed(err)) { $("delete-dialog").hidden = true; return; }
    const el = $("delete-error");
    el.hidden = false;
    el.textContent = "Not deleted: " + errText(err);
    btn.textContent = "Delete object";
    btn.disabled = $("delete-input").value !== d.name;
  }
});

function loop() {
  clearTimeout(timer);
  if (!$("admin-pause").checked) refresh();
  timer = window.setTimeout(loop, REFRESH_MS);
}
$("admin-pause").addEventListener("change", () => { renderLive(); if (!$("admin-pause").checked) loop(); });
setInterval(renderLive, 1000);
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") loop(); });
route();
loop();
