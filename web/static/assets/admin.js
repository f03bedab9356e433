// @ts-check
// Holocron operator dashboard: polls GET /admin/overview and /admin/cluster.

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

const CLASS_COLORS = /** @type {Record<string, string>} */ ({ ChatLobby: "#5b50e6", RoomManager: "#0ea5e9" });

/** Per node: previous reading and the messages/s history. */
const rates = /** @type {Map<string, {total: number, t: number, rate: number|null, hist: number[]}>} */ (new Map());
let token = localStorage.getItem(LS_TOKEN) || "";
let lastOK = 0;
let timer = 0;
let inflight = false;

/** @param {string} path */
async function get(path) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = "Bearer " + token;
  const res = await fetch(path, { headers, cache: "no-store" });
  const text = await res.text();
  /** @type {any} */
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!res.ok) {
    const err = /** @type {any} */ (new Error((body && body.message) || `${path}: ${res.status} ${res.statusText}`));
    err.status = res.status;
    err.code = body && body.code;
    throw err;
  }
  return body;
}

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
});
$("admin-signout").addEventListener("click", () => {
  localStorage.removeItem(LS_TOKEN);
  token = "";
  refresh();
});

/**
 * @param {any} ov /admin/overview
 * @param {any} cl /admin/cluster, or null when it failed
 * @param {any} clErr
 */
function render(ov, cl, clErr) {
  $("admin-node").textContent = ov.node;
  $("admin-mode").textContent = ov.mode === "cluster" ? "Cluster" : "Single node";
  document.title = `Holocron · ${ov.node} · Operator`;
  const members = ov.members || [];
  const nodes = ov.nodes || [];
  nodeOrder = [...new Set([...members.map((/** @type {any} */ m) => m.name), ...nodes.map((/** @type {any} */ n) => n.node)])].sort();

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
          h("td", { class: "mono" }, o.name || "–"),
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

function loop() {
  clearTimeout(timer);
  if (!$("admin-pause").checked) refresh();
  timer = window.setTimeout(loop, REFRESH_MS);
}
$("admin-pause").addEventListener("change", () => { renderLive(); if (!$("admin-pause").checked) loop(); });
setInterval(renderLive, 1000);
document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") loop(); });
loop();
