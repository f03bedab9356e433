// @ts-check
// Holocron demo app: chat rooms and game rooms on top of /holocron.js.
import { connectChat, connectGame, decodeTokenClaims, newClientMsgId, HolocronError } from "/holocron.js";

/** @param {string} id @returns {any} */
const $ = (id) => document.getElementById(id);

/**
 * Tiny element builder.
 * @param {string} tag @param {Record<string, any>} [props] @param {...any} kids
 * @returns {any}
 */
function h(tag, props = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "dataset") Object.assign(e.dataset, v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of kids.flat()) if (c != null && c !== false) e.append(c instanceof Node ? c : String(c));
  return e;
}

/** @param {string} name @param {number} [size] @param {string} [cls] */
function icon(name, size = 16, cls = "") {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  if (cls) svg.setAttribute("class", cls);
  svg.setAttribute("width", String(size));
  svg.setAttribute("height", String(size));
  svg.setAttribute("aria-hidden", "true");
  const use = document.createElementNS("http://www.w3.org/2000/svg", "use");
  use.setAttribute("href", "#i-" + name);
  svg.append(use);
  return svg;
}

/** @param {string} s */
function hash(s) {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
  return x >>> 0;
}
/** @param {string} seed */
const hue = (seed) => hash(seed) % 360;
/** @param {string} seed */
const colorFor = (seed) => `linear-gradient(135deg, hsl(${hue(seed)} 68% 56%), hsl(${(hue(seed) + 35) % 360} 70% 48%))`;
/** @param {string} name */
function initials(name) {
  const w = name.trim().split(/\s+/).filter(Boolean);
  const s = w.length > 1 ? w[0][0] + w[w.length - 1][0] : (w[0] || "?").slice(0, 2);
  return s.toUpperCase();
}
/** @param {string} id @param {string} name @param {string} [size] @param {boolean|null} [online] */
function avatar(id, name, size = "", online = null) {
  const a = h("span", { class: "avatar " + size, title: name }, initials(name));
  a.style.background = colorFor(id);
  if (online !== null) a.append(h("span", { class: "dot" + (online ? "" : " off") }));
  return a;
}

/** @param {string} iso */
function fmtTime(iso) {
  const d = new Date(iso);
  return isNaN(+d) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
/** @param {string} iso */
function fmtDay(iso) {
  const d = new Date(iso);
  if (isNaN(+d)) return "";
  const today = new Date();
  const y = new Date(Date.now() - 864e5);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === y.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", month: "short", day: "numeric" });
}
/** @param {string} iso */
function ago(iso) {
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (!isFinite(s)) return "";
  if (s < 60) return "just now";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago";
  return Math.floor(s / 86400) + "d ago";
}
/** @param {number} ms */
function clockText(ms) {
  const t = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(t / 3600), mm = Math.floor((t % 3600) / 60), ss = t % 60;
  const p = (/** @type {number} */ n) => String(n).padStart(2, "0");
  return hh ? `${hh}:${p(mm)}:${p(ss)}` : `${mm}:${p(ss)}`;
}
/** @param {number} n */
const fmtScore = (n) => (Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, ""));
/** @param {string} name */
function roomIdFrom(name) {
  const slug = name.toLowerCase().normalize("NFKD").replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 40) || "room";
  return slug + "-" + Math.random().toString(36).slice(2, 6);
}

// ---- identity ----------------------------------------------------------------

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const claims = decodeTokenClaims(token);
const LS_ID = "holocron.playerId", LS_NAME = "holocron.playerName";

function storedPlayerId() {
  let id = localStorage.getItem(LS_ID);
  if (!id) {
    id = "p-" + (crypto.randomUUID ? crypto.randomUUID().replace(/-/g, "").slice(0, 16) : Math.random().toString(36).slice(2, 14));
    localStorage.setItem(LS_ID, id);
  }
  return id;
}

const me = {
  id: claims && claims.sub ? String(claims.sub) : storedPlayerId(),
  name: claims && (claims.name || claims.sub) ? String(claims.name || claims.sub) : localStorage.getItem(LS_NAME) || "",
  fromToken: !!(claims && claims.sub),
};

/** playerId → display name, learned from every frame that carries one. */
const names = new Map();
/** @param {string} id */
const nameOf = (id) => names.get(id) || (id === me.id ? me.name : id);

// ---- toasts ------------------------------------------------------------------

let lastToast = { key: "", at: 0 };
/**
 * @param {"error"|"info"|"ok"} kind @param {string} title @param {string} [text] @param {string} [code]
 */
function toast(kind, title, text = "", code = "") {
  const key = kind + title + text + code;
  if (key === lastToast.key && Date.now() - lastToast.at < 2000) return;
  lastToast = { key, at: Date.now() };
  const box = $("toasts");
  const t = h("div", { class: "toast " + kind, role: kind === "error" ? "alert" : "status", dataset: { code } },
    icon(kind === "error" ? "alert" : "info", 18),
    h("div", {}, h("b", {}, title), text || code ? h("p", {}, code ? h("code", {}, code) : null, code && text ? " " : "", text) : null),
    h("button", { class: "x", type: "button", "aria-label": "Dismiss", onclick: () => t.remove() }, "×"));
  box.append(t);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => t.remove(), kind === "error" ? 9000 : 4000);
}

const ACTIONS = {
  join_room: "Could not join the room", leave_room: "Could not leave the room", send_message: "Message not sent",
  get_history: "Could not load history", start_game: "Could not start the game", update_score: "Score not updated",
  game_action: "Action failed", end_game: "Could not end the game",
};
/** @param {any} err @param {string} [title] */
function showError(err, title) {
  if (err instanceof HolocronError) {
    toast("error", title || ACTIONS[/** @type {keyof ACTIONS} */ (err.requestType || "")] || "Server error", err.message, err.code);
  } else {
    toast("error", title || "Something went wrong", String(err && err.message ? err.message : err));
  }
}

// ---- name picker -----------------------------------------------------------------

function showNamePicker() {
  $("app-screen").hidden = true;
  $("name-screen").hidden = false;
  $("player-id-hint").textContent = me.id;
  const input = $("name-input");
  input.value = me.name;
  input.focus();
}

$("name-form").addEventListener("submit", (/** @type {Event} */ e) => {
  e.preventDefault();
  const name = $("name-input").value.trim().replace(/\s+/g, " ");
  if (!name) return;
  const changed = me.name !== name;
  me.name = name;
  localStorage.setItem(LS_NAME, name);
  if (!started) start();
  // A socket's name is fixed by its first join: a new name needs new sockets.
  else if (changed) location.reload();
  else { $("name-screen").hidden = true; $("app-screen").hidden = false; }
});

$("change-name").addEventListener("click", showNamePicker);

// ---- app -------------------------------------------------------------------------

/** @type {import("/holocron.js").ChatClient} */
let chat;
/** @type {import("/holocron.js").GameClient} */
let game;
let started = false;

const ui = {
  tab: /** @type {"chat"|"games"} */ ("chat"),
  chatRoom: /** @type {string|null} */ (null),
  chatRoomInfo: /** @type {any} */ (null),
  participants: /** @type {string[]} */ ([]),
  lastMsg: /** @type {{sender: string, at: number}|null} */ (null),
  lastDay: "",
  gameRoom: /** @type {string|null} */ (null),
  readonly: /** @type {any} */ (null), // a finished game shown from HTTP, not joined
  myScore: new Map(), // roomId → {value, inflight}
  feeds: new Map(), // roomId → [{at, text}]
  chatRooms: /** @type {any[]} */ ([]),
  gameRooms: /** @type {any[]} */ ([]),
  everConnected: false,
  retryAt: 0,
  listErr: { chat: "", game: "" },
};

function start() {
  started = true;
  $("name-screen").hidden = true;
  $("app-screen").hidden = false;
  names.set(me.id, me.name);
  $("me-name").textContent = me.name;
  $("me-id").textContent = me.id.length > 14 ? me.id.slice(0, 12) + "…" : me.id;
  $("me-avatar").replaceWith(Object.assign(avatar(me.id, me.name, "sm"), { id: "me-avatar" }));
  if (me.fromToken) $("change-name").hidden = true;

  const opts = { token, playerId: me.id, playerName: me.name };
  chat = connectChat(opts);
  game = connectGame(opts);
  // @ts-ignore: handy in the console
  window.holocron = { chat, game, me };

  for (const c of [chat, game]) {
    c.on("state", (/** @type {any} */ s) => {
      if (s.state === "open") ui.everConnected = true;
      if (s.retryAt) ui.retryAt = s.retryAt;
      renderConn();
    });
    c.on("error", (/** @type {any} */ e) => showError(e));
    c.on("auth_error", (/** @type {any} */ e) => {
      const b = $("auth-banner");
      b.hidden = false;
      b.textContent = e.code === "token_expired"
        ? "Your session token has expired. Open the app again with a fresh ?token= to continue."
        : "The server refused our credentials (" + e.code + "): " + e.message;
      renderConn();
    });
    c.on("room_lost", (/** @type {any} */ x) => showError(x.error, `Lost room ${x.roomId}`));
  }
  chat.on("message", onChatMessage);
  chat.on("presence", onPresence);
  chat.on("history_gap", (/** @type {any} */ x) => {
    if (x.roomId !== ui.chatRoom) return;
    appendSys("Some messages were trimmed from history while you were away.", "", "gap");
  });
  game.on("room_update", onGameUpdate);

  renderConn();
  refreshLists();
  setInterval(() => { if (document.visibilityState === "visible") refreshLists(); }, 3000);
  setInterval(tick, 250);
  window.addEventListener("hashchange", route);
  route();
}

function renderConn() {
  const el = $("conn-status");
  const states = [chat.state, game.state];
  let s, text;
  if (states.includes("failed")) {
    s = "failed";
    text = chat.lastError?.code === "token_expired" || game.lastError?.code === "token_expired" ? "Session expired" : "Disconnected";
  } else if (states.every((x) => x === "open")) {
    s = "connected"; text = "Connected";
  } else if (ui.everConnected) {
    s = "reconnecting";
    const secs = Math.ceil((ui.retryAt - Date.now()) / 1000);
    text = secs > 0 ? `Reconnecting in ${secs}s…` : "Reconnecting…";
  } else {
    s = "connecting"; text = "Connecting…";
  }
  el.dataset.state = s;
  $("conn-text").textContent = text;
}

// ---- routing ---------------------------------------------------------------------

function route() {
  const [, kind, id] = location.hash.match(/^#\/(chat|games?)(?:\/([A-Za-z0-9_-]{1,64}))?/) || [];
  if (kind === "game" && id) { setTab("games"); openGame(id); }
  else if (kind === "chat" && id) { setTab("chat"); openChat(id); }
  else if (kind === "games" || kind === "game") setTab("games");
  else setTab("chat");
  renderMain();
}

/** @param {"chat"|"games"} tab */
function setTab(tab) {
  ui.tab = tab;
  $("tab-chat").setAttribute("aria-selected", String(tab === "chat"));
  $("tab-games").setAttribute("aria-selected", String(tab === "games"));
  $("chat-side").hidden = tab !== "chat";
  $("game-side").hidden = tab !== "games";
}

function renderMain() {
  const chatOn = ui.tab === "chat" && !!ui.chatRoom;
  const gameOn = ui.tab === "games" && !!ui.gameRoom;
  $("chat-view").hidden = !chatOn;
  $("game-view").hidden = !gameOn;
  $("empty-state").hidden = chatOn || gameOn;
  $("app-screen").classList.toggle("in-room", chatOn || gameOn);
  if (ui.tab === "chat") {
    $("empty-title").textContent = "Pick a room to start";
    $("empty-text").textContent = "Choose a chat room on the left, or create a new one. Everyone in the room sees your messages live.";
  } else {
    $("empty-title").textContent = "Play a game";
    $("empty-text").textContent = "Join a waiting game room on the left, or create one and invite others. Scores update live for everyone.";
  }
  renderChatList();
  renderGameList();
}

$("tab-chat").addEventListener("click", () => { location.hash = ui.chatRoom ? "#/chat/" + ui.chatRoom : "#/chat"; });
$("tab-games").addEventListener("click", () => { location.hash = ui.gameRoom ? "#/game/" + ui.gameRoom : "#/games"; });
// On small screens the create forms fold away while a room is open.
for (const id of ["chat-new-toggle", "game-new-toggle"]) {
  $(id).addEventListener("click", () => {
    const on = $("app-screen").classList.toggle("show-create");
    if (on) (id === "chat-new-toggle" ? $("new-chat-name") : $("new-game-name")).focus();
  });
}

// ---- room lists --------------------------------------------------------------------

async function refreshLists() {
  const [c, g] = await Promise.allSettled([chat.listRooms(), game.listRooms()]);
  if (c.status === "fulfilled") { ui.chatRooms = c.value; ui.listErr.chat = ""; }
  else if (String(c.reason?.message) !== ui.listErr.chat) { ui.listErr.chat = String(c.reason?.message); showError(c.reason, "Could not load chat rooms"); }
  if (g.status === "fulfilled") { ui.gameRooms = g.value; ui.listErr.game = ""; }
  else if (String(g.reason?.message) !== ui.listErr.game) { ui.listErr.game = String(g.reason?.message); showError(g.reason, "Could not load game rooms"); }
  renderChatList();
  renderGameList();
}

function renderChatList() {
  const list = $("chat-room-list");
  if (ui.listErr.chat && !ui.chatRooms.length) { list.replaceChildren(h("li", { class: "list-empty" }, "Could not load rooms.")); return; }
  if (!ui.chatRooms.length) { list.replaceChildren(h("li", { class: "list-empty" }, "No rooms yet. Create the first one below.")); return; }
  const rooms = [...ui.chatRooms].sort((a, b) => (b.lastActivity || "").localeCompare(a.lastActivity || ""));
  list.replaceChildren(...rooms.map((r) => {
    const n = (r.participants || []).length;
    const ic = h("span", { class: "room-icon" }, (r.name.trim()[0] || "#").toUpperCase());
    ic.style.background = colorFor(r.id);
    return h("li", {}, h("button", {
      class: "room-item", type: "button", dataset: { roomId: r.id }, "aria-current": String(r.id === ui.chatRoom),
      onclick: () => { location.hash = "#/chat/" + r.id; },
    }, ic, h("span", { class: "room-meta" },
      h("span", { class: "room-name" }, r.name),
      h("span", { class: "room-sub" }, `${n} online · active ${ago(r.lastActivity)}`))));
  }));
}

const STATUS_TEXT = { waiting: "Waiting", playing: "Playing", finished: "Finished" };
function renderGameList() {
  const list = $("game-room-list");
  if (ui.listErr.game && !ui.gameRooms.length) { list.replaceChildren(h("li", { class: "list-empty" }, "Could not load rooms.")); return; }
  if (!ui.gameRooms.length) { list.replaceChildren(h("li", { class: "list-empty" }, "No game rooms yet. Create one below.")); return; }
  const order = { waiting: 0, playing: 1, finished: 2 };
  const rooms = [...ui.gameRooms].sort((a, b) =>
    (order[/** @type {keyof order} */ (a.status)] - order[/** @type {keyof order} */ (b.status)]) || (b.createdAt || "").localeCompare(a.createdAt || "")).slice(0, 40);
  list.replaceChildren(...rooms.map((r) => {
    const ic = h("span", { class: "room-icon" }, icon("game", 18));
    ic.style.background = r.status === "finished" ? "linear-gradient(135deg,#9ca3af,#6b7280)" : colorFor(r.id);
    return h("li", {}, h("button", {
      class: "room-item", type: "button", dataset: { roomId: r.id, status: r.status }, "aria-current": String(r.id === ui.gameRoom),
      onclick: () => { location.hash = "#/game/" + r.id; },
    }, ic, h("span", { class: "room-meta" },
      h("span", { class: "room-name" }, r.name),
      h("span", { class: "room-sub" }, `${(r.currentPlayers || []).length}/${r.maxPlayers} players · ${r.gameType}`)),
    h("span", { class: "badge " + r.status }, STATUS_TEXT[/** @type {keyof STATUS_TEXT} */ (r.status)] || r.status)));
  }));
}

$("chat-refresh").addEventListener("click", refreshLists);
$("game-refresh").addEventListener("click", refreshLists);

$("new-chat-form").addEventListener("submit", async (/** @type {Event} */ e) => {
  e.preventDefault();
  const input = $("new-chat-name");
  const name = input.value.trim();
  if (!name) return;
  const btn = $("new-chat-submit");
  btn.disabled = true;
  try {
    const room = await chat.createRoom({ roomId: roomIdFrom(name), name });
    input.value = "";
    ui.chatRooms = [...ui.chatRooms, room];
    $("app-screen").classList.remove("show-create");
    location.hash = "#/chat/" + room.id;
  } catch (err) {
    showError(err, "Could not create the room");
  } finally {
    btn.disabled = false;
  }
});

$("new-game-form").addEventListener("submit", async (/** @type {Event} */ e) => {
  e.preventDefault();
  const name = $("new-game-name").value.trim();
  if (!name) return;
  const btn = $("new-game-submit");
  btn.disabled = true;
  try {
    const room = await game.createRoom({
      roomId: roomIdFrom(name), name,
      gameType: $("new-game-type").value,
      maxPlayers: Number($("new-game-max").value) || 4,
      settings: { duration: Math.round(Number($("new-game-duration").value)) || 60, difficulty: $("new-game-difficulty").value },
    });
    $("new-game-name").value = "";
    ui.gameRooms = [...ui.gameRooms, room];
    $("app-screen").classList.remove("show-create");
    location.hash = "#/game/" + room.id;
  } catch (err) {
    showError(err, "Could not create the game");
  } finally {
    btn.disabled = false;
  }
});

// ---- chat room -------------------------------------------------------------------------

/** @param {string} roomId */
function openChat(roomId) {
  if (ui.chatRoom === roomId) return;
  const prev = ui.chatRoom;
  if (prev) chat.leaveRoom(prev).catch((e) => showError(e));
  ui.chatRoom = roomId;
  ui.chatRoomInfo = ui.chatRooms.find((r) => r.id === roomId) || null;
  ui.participants = [];
  ui.lastMsg = null;
  ui.lastDay = "";
  $("message-list").replaceChildren(h("div", { class: "loading" }, "Loading messages…"));
  renderChatHead();
  renderParticipants();
  chat.joinRoom(roomId, { history: 50 }).then((res) => {
    if (ui.chatRoom !== roomId) return;
    ui.chatRoomInfo = res.room;
    ui.participants = res.participants;
    $("message-list").querySelector(".loading")?.remove();
    renderChatHead();
    renderParticipants();
    scrollToBottom(true);
    $("composer-input").focus();
  }, (err) => {
    if (ui.chatRoom !== roomId) return;
    showError(err, `Could not join ${roomId}`);
    ui.chatRoom = null;
    location.hash = "#/chat";
  });
}

function renderChatHead() {
  const r = ui.chatRoomInfo;
  const id = /** @type {string} */ (ui.chatRoom);
  $("chat-title").textContent = r ? r.name : id;
  $("chat-room-id").textContent = "#" + id;
  const ic = $("chat-icon");
  ic.textContent = ((r ? r.name : id).trim()[0] || "#").toUpperCase();
  ic.style.background = colorFor(id);
  $("chat-online").textContent = `${ui.participants.length} online`;
}

function renderParticipants() {
  const list = $("participant-list");
  $("participant-count").textContent = String(ui.participants.length);
  $("chat-online").textContent = `${ui.participants.length} online`;
  const sorted = [...ui.participants].sort((a, b) => (a === me.id ? -1 : b === me.id ? 1 : nameOf(a).localeCompare(nameOf(b))));
  list.replaceChildren(...sorted.map((id) => h("li", { class: "person", dataset: { playerId: id } },
    avatar(id, nameOf(id), "sm", true),
    h("span", { class: "name" }, nameOf(id)),
    id === me.id ? h("span", { class: "tag" }, "you") : null)));
}

/** @param {any} p */
function onPresence(p) {
  if (p.playerName) names.set(p.playerId, p.playerName);
  const listed = ui.chatRooms.find((r) => r.id === p.roomId);
  if (listed) { listed.participants = p.participants; renderChatList(); }
  if (p.roomId !== ui.chatRoom) return;
  ui.participants = p.participants;
  renderParticipants();
}

function nearBottom() {
  const m = $("message-list");
  return m.scrollHeight - m.scrollTop - m.clientHeight < 120;
}
/** @param {boolean} force */
function scrollToBottom(force) {
  const m = $("message-list");
  if (force || nearBottom()) m.scrollTop = m.scrollHeight;
}

/** Inserts before the pending (unconfirmed) bubbles, which stay last. @param {Node} node */
function insertTimeline(node) {
  const m = $("message-list");
  m.insertBefore(node, m.querySelector(".msg.pending, .msg.failed"));
}

/** @param {string} iso */
function dayMark(iso) {
  const d = fmtDay(iso);
  if (d && d !== ui.lastDay) {
    ui.lastDay = d;
    insertTimeline(h("div", { class: "day" }, d));
  }
}

/** @param {string} text @param {string} iso @param {string} [cls] @param {string} [id] */
function appendSys(text, iso, cls = "", id = "") {
  const stick = nearBottom();
  if (iso) dayMark(iso);
  insertTimeline(h("div", { class: "sys " + cls, dataset: id ? { id } : {} }, text, iso ? h("time", {}, fmtTime(iso)) : null));
  ui.lastMsg = null;
  if (stick) scrollToBottom(true);
}

/** @param {any} ev */
function onChatMessage(ev) {
  const m = ev.message;
  if (m.senderId && m.senderName) names.set(m.senderId, m.senderName);
  if (ev.roomId !== ui.chatRoom) return;
  const list = $("message-list");
  list.querySelector(".loading")?.remove();
  if (m.type === "join" || m.type === "leave") {
    const who = m.senderId === me.id ? "You" : m.senderName;
    appendSys(`${who} ${m.type === "join" ? "joined" : "left"} the room`, m.timestamp, m.type, m.id);
    if (ev.live || m.type === "join") renderParticipants();
    return;
  }
  if (m.type === "system") { appendSys(m.content, m.timestamp, "", m.id); return; }
  const stick = nearBottom() || m.senderId === me.id;
  // The confirmed message replaces its pending bubble.
  if (m.clientMsgId) list.querySelector(`.msg[data-client-msg-id="${CSS.escape(m.clientMsgId)}"]`)?.remove();
  dayMark(m.timestamp);
  const at = Date.parse(m.timestamp);
  const cont = !!ui.lastMsg && ui.lastMsg.sender === m.senderId && at - ui.lastMsg.at < 5 * 60e3;
  ui.lastMsg = { sender: m.senderId, at };
  insertTimeline(messageEl(m, cont));
  if (stick) scrollToBottom(true);
}

/** @param {any} m @param {boolean} cont @param {string} [cls] */
function messageEl(m, cont, cls = "") {
  const mine = m.senderId === me.id;
  return h("div", {
    class: `msg${mine ? " mine" : ""}${cont ? " cont" : ""}${cls ? " " + cls : ""}`,
    dataset: { id: m.id || "", sender: m.senderId, clientMsgId: m.clientMsgId || "" },
  },
  avatar(m.senderId, m.senderName || nameOf(m.senderId)),
  h("div", { class: "body" },
    h("div", { class: "meta" }, h("b", { class: "msg-author" }, mine ? "You" : m.senderName), h("time", { datetime: m.timestamp }, fmtTime(m.timestamp))),
    h("div", { class: "bubble msg-text" }, m.content)));
}

/** @param {string} roomId @param {string} content @param {string} clientMsgId @param {any} [el] */
function send(roomId, content, clientMsgId, el) {
  const pending = el || messageEl({ senderId: me.id, senderName: me.name, content, clientMsgId, timestamp: new Date().toISOString() }, false, "pending");
  pending.classList.remove("failed");
  pending.classList.add("pending");
  pending.querySelector(".status")?.remove();
  pending.querySelector(".body").append(h("div", { class: "status" }, "Sending…"));
  if (!el) { $("message-list").append(pending); scrollToBottom(true); }
  chat.sendMessage(roomId, content, { clientMsgId }).then(() => {
    pending.remove(); // normally already replaced by the confirmed message
  }, (err) => {
    if (!pending.isConnected) return;
    pending.classList.remove("pending");
    pending.classList.add("failed");
    const st = pending.querySelector(".status");
    st.replaceChildren("Not sent (" + (err.code || "error") + ")",
      h("button", { type: "button", onclick: () => send(roomId, content, clientMsgId, pending) }, "Retry"));
    showError(err);
  });
}

const composer = $("composer-input");
function autoGrow() {
  composer.style.height = "auto";
  composer.style.height = Math.min(140, composer.scrollHeight) + "px";
}
composer.addEventListener("input", autoGrow);
composer.addEventListener("keydown", (/** @type {KeyboardEvent} */ e) => {
  if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});
$("composer").addEventListener("submit", (/** @type {Event} */ e) => {
  e.preventDefault();
  const content = composer.value;
  if (!content.trim() || !ui.chatRoom) return;
  composer.value = "";
  autoGrow();
  send(ui.chatRoom, content, newClientMsgId());
});
$("chat-leave").addEventListener("click", () => {
  const id = ui.chatRoom;
  if (!id) return;
  ui.chatRoom = null;
  chat.leaveRoom(id).catch((e) => showError(e));
  location.hash = "#/chat";
});

// ---- game room ------------------------------------------------------------------------------

const REASONS = { clock: "Time's up!", rounds: "All rounds played.", ended: "A player ended the game.", abandoned: "Every player left the game." };

/** @param {string} roomId */
async function openGame(roomId) {
  if (ui.gameRoom === roomId) return;
  ui.gameRoom = roomId;
  ui.readonly = null;
  renderGame();
  const track = game.rooms.get(roomId);
  if (track && track.joined) return;
  try {
    const { room, gameState } = await game.getRoom(roomId);
    for (const p of gameState.players) names.set(p.playerId, p.playerName);
    if (ui.gameRoom !== roomId) return;
    const isPlayer = gameState.players.some((/** @type {any} */ p) => p.playerId === me.id);
    if (isPlayer || room.status === "waiting") {
      try {
        await game.joinRoom(roomId);
      } catch (err) {
        if (!(err instanceof HolocronError) || err.code !== "room_full" || !room.settings.allowSpectators) throw err;
        toast("info", "The room is full", "You are watching as a spectator.");
        await game.joinRoom(roomId, { spectator: true });
      }
    } else if (room.status === "playing" && room.settings.allowSpectators) {
      await game.joinRoom(roomId, { spectator: true });
    } else {
      ui.readonly = { room, gameState, finalScores: gameState.gameData?.finalScores || [] };
    }
  } catch (err) {
    if (ui.gameRoom !== roomId) return;
    showError(err, `Could not open game ${roomId}`);
    ui.gameRoom = null;
    location.hash = "#/games";
    return;
  }
  if (ui.gameRoom === roomId) renderGame();
}

/** @param {string} roomId @param {string} text */
function feed(roomId, text) {
  let f = ui.feeds.get(roomId);
  if (!f) ui.feeds.set(roomId, (f = []));
  f.push({ at: new Date(), text });
  if (f.length > 60) f.shift();
}

/** @param {any} u */
function onGameUpdate(u) {
  const f = u.cause;
  for (const p of u.gameState?.players || []) names.set(p.playerId, p.playerName);
  const who = (/** @type {string} */ id) => (id === me.id ? "You" : nameOf(id));
  switch (f.type) {
    case "room_joined": if (!ui.feeds.has(u.roomId)) feed(u.roomId, u.spectator ? "You are watching" : "You joined the room"); break;
    case "player_joined": if (f.playerId !== me.id) feed(u.roomId, `${f.playerName} joined`); break;
    case "player_left": feed(u.roomId, `${f.playerName} left`); break;
    case "game_started": feed(u.roomId, `Game started · ${u.room?.settings?.duration ?? "?"}s on the clock`); break;
    case "score_updated": feed(u.roomId, `${who(f.playerId)} → ${fmtScore(f.score)} points`); break;
    case "game_action": feed(u.roomId, f.action === "end_turn" ? `${who(f.playerId)} ended turn ${f.currentTurn}` : `${who(f.playerId)}: ${f.action}`); break;
    case "game_ended": feed(u.roomId, `Game over · ${REASONS[/** @type {keyof REASONS} */ (f.reason)] || f.reason}`); break;
  }
  if (f.type === "score_updated" && f.playerId === me.id) {
    const s = ui.myScore.get(u.roomId);
    if (s && s.inflight === 0) s.value = f.score;
  }
  // Keep the sidebar list in step without waiting for the next poll.
  const i = ui.gameRooms.findIndex((r) => r.id === u.roomId);
  if (i >= 0 && u.room) { ui.gameRooms[i] = { ...ui.gameRooms[i], ...u.room }; renderGameList(); }
  if (u.roomId === ui.gameRoom) renderGame(f.type === "score_updated" ? f.playerId : "");
}

function currentGame() {
  const id = ui.gameRoom;
  if (!id) return null;
  const t = game.rooms.get(id);
  if (t && t.room) return { room: t.room, gameState: t.gameState, finalScores: t.finalScores || [], spectator: t.spectator, joined: t.joined };
  if (ui.readonly && ui.readonly.room.id === id) return { ...ui.readonly, spectator: true, joined: false };
  return null;
}

/** @param {string} [bumped] playerId whose score just changed */
function renderGame(bumped = "") {
  renderMain();
  const id = ui.gameRoom;
  if (!id) return;
  const g = currentGame();
  $("game-room-id").textContent = "#" + id;
  $("game-icon").style.background = colorFor(id);
  if (!g) {
    $("game-title").textContent = "Joining…";
    $("game-status").className = "badge";
    $("game-status").textContent = "…";
    return;
  }
  const { room, gameState } = g;
  const players = gameState?.players || [];
  const isPlayer = players.some((/** @type {any} */ p) => p.playerId === me.id);
  $("game-title").textContent = room.name;
  const st = $("game-status");
  st.className = "badge " + room.status;
  st.dataset.status = room.status;
  st.textContent = STATUS_TEXT[/** @type {keyof STATUS_TEXT} */ (room.status)] || room.status;
  const s = room.settings || {};
  $("game-chips").replaceChildren(
    h("span", { class: "badge plain" }, room.gameType),
    h("span", { class: "badge plain" }, s.difficulty || "medium"),
    h("span", { class: "badge plain" }, clockText((s.duration || 0) * 1000)));
  $("game-icon").style.background = room.status === "finished" ? "linear-gradient(135deg,#9ca3af,#6b7280)" : colorFor(id);

  // Panels by status and role.
  $("game-waiting").hidden = !(room.status === "waiting" && isPlayer);
  $("game-controls").hidden = !(room.status === "playing" && isPlayer);
  $("game-spectating").hidden = !(g.spectator && room.status !== "finished") || isPlayer;
  $("game-leave").hidden = !g.joined;
  const enough = players.length >= 2;
  $("start-game").disabled = !enough;
  $("waiting-count").textContent = `${players.length} / ${room.maxPlayers} players`;
  $("waiting-text").textContent = enough
    ? "Everyone here? Anyone in the room can start; the clock starts for everyone at once."
    : "Waiting for another player to join. Share this room: it is listed under Games.";

  // My score (optimistic while updates are in flight).
  const mine = players.find((/** @type {any} */ p) => p.playerId === me.id);
  let ms = ui.myScore.get(id);
  if (!ms) ui.myScore.set(id, (ms = { value: mine ? mine.score : 0, inflight: 0 }));
  if (mine && ms.inflight === 0) ms.value = mine.score;
  $("my-score").textContent = fmtScore(ms.value);
  $("turn-counter").textContent = String(gameState?.currentTurn ?? 0);
  $("turn-max").textContent = s.maxRounds ? `of ${s.maxRounds}` : "";

  // Players, ranked by score once the game runs.
  const ranked = room.status === "waiting" ? players : [...players].sort((a, b) => b.score - a.score);
  const connected = new Set(room.connected || []);
  $("players-title").textContent = room.status === "waiting" ? "Players" : "Scoreboard";
  $("player-count").textContent = `${players.length}/${room.maxPlayers}`;
  $("game-players").replaceChildren(...(ranked.length ? ranked.map((p, i) => h("li", {
    class: `player${p.playerId === me.id ? " me" : ""}${p.playerId === bumped ? " bump" : ""}`, dataset: { playerId: p.playerId },
  },
  h("span", { class: "rank" }, String(i + 1)),
  avatar(p.playerId, p.playerName, "sm", room.status === "finished" ? null : connected.has(p.playerId)),
  h("span", { class: "pname" }, h("span", { class: "player-name" }, p.playerName), p.playerId === me.id ? h("small", {}, "you") : null),
  h("span", { class: "score" }, fmtScore(p.score)))) : [h("li", { class: "list-empty" }, "No players yet")]));

  // Final scoreboard.
  const finished = room.status === "finished";
  const fin = $("final-scoreboard");
  const wasHidden = fin.hidden;
  fin.hidden = !finished;
  // Once over, the final scoreboard replaces the clock and the live board.
  $("clock-card").hidden = finished;
  $("players-panel").hidden = finished;
  $("game-left").hidden = finished && $("game-spectating").hidden && $("game-waiting").hidden && $("game-controls").hidden;
  if (finished && wasHidden) $("game-view").scrollTop = 0;
  if (room.status === "finished") renderFinal(room, g.finalScores && g.finalScores.length ? g.finalScores : players.map((/** @type {any} */ p) => ({ playerId: p.playerId, playerName: p.playerName, finalScore: p.score })));

  const f = ui.feeds.get(id) || [];
  $("game-feed").replaceChildren(...(f.length ? [...f].reverse().map((x) => h("li", {}, h("time", {}, x.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" })), h("span", {}, x.text)))
    : [h("li", { class: "muted" }, "Nothing yet.")]));
  tick();
}

/** @param {any} room @param {any[]} scores */
function renderFinal(room, scores) {
  const ranked = [...scores].sort((a, b) => b.finalScore - a.finalScore);
  const top = ranked[0];
  $("final-title").textContent = top ? (top.playerId === me.id ? "You win!" : `${top.playerName} wins!`) : "Game over";
  $("final-reason").textContent = `${REASONS[/** @type {keyof REASONS} */ (room.endReason)] || "Game over."} Final scoreboard`;
  const place = (/** @type {any} */ p, /** @type {number} */ n) => p ? h("div", { class: "step p" + n },
    n === 1 ? icon("crown", 28, "crown") : null,
    avatar(p.playerId, p.playerName, "lg"),
    h("div", { class: "pn" }, p.playerName),
    h("div", { class: "ps" }, fmtScore(p.finalScore) + " pts"),
    h("div", { class: "block" }, String(n))) : null;
  const pod = $("podium");
  pod.replaceChildren(...[place(ranked[1], 2), place(ranked[0], 1), place(ranked[2], 3)].filter(Boolean));
  $("final-rows").replaceChildren(...ranked.map((p, i) => h("tr", { class: p.playerId === me.id ? "me" : "", dataset: { playerId: p.playerId } },
    h("td", {}, String(i + 1)),
    h("td", {}, h("span", { style: "display:inline-flex;gap:10px;align-items:center" }, avatar(p.playerId, p.playerName, "sm"), h("span", { class: "final-name" }, p.playerName))),
    h("td", { class: "final-score" }, fmtScore(p.finalScore)))));
}

/** Updates the clock (and the reconnect countdown). */
function tick() {
  if (started) renderConn();
  const g = currentGame();
  if (!g || ui.tab !== "games") return;
  const { room } = g;
  const clock = $("game-clock");
  const dur = (room.settings?.duration || 0) * 1000;
  let left = 0, frac = 0;
  clock.classList.remove("low", "idle");
  if (room.status === "playing" && room.endsAt) {
    left = Math.max(0, Date.parse(room.endsAt) - game.serverNow());
    frac = dur ? 1 - left / dur : 1;
    clock.textContent = clockText(left);
    clock.dataset.remaining = String(Math.ceil(left / 1000));
    if (left <= 10000) clock.classList.add("low");
    $("clock-label").textContent = "Time left";
    $("clock-foot-left").textContent = left > 0 ? `Ends at ${new Date(Date.parse(room.endsAt)).toLocaleTimeString()}` : "Finishing…";
    $("clock-foot-right").textContent = `Started ${fmtTime(room.startedAt)}`;
  } else if (room.status === "waiting") {
    clock.classList.add("idle");
    clock.textContent = clockText(dur);
    clock.dataset.remaining = "";
    $("clock-label").textContent = "Game clock";
    $("clock-foot-left").textContent = "Starts when a player presses Start";
    $("clock-foot-right").textContent = "";
  } else {
    frac = 1;
    clock.textContent = "0:00";
    clock.dataset.remaining = "0";
    $("clock-label").textContent = "Game over";
    $("clock-foot-left").textContent = REASONS[/** @type {keyof REASONS} */ (room.endReason)] || "";
    $("clock-foot-right").textContent = room.endedAt ? `Ended ${fmtTime(room.endedAt)}` : "";
  }
  $("clock-progress").style.width = Math.min(100, Math.max(0, frac * 100)).toFixed(1) + "%";
  $("clock-badge").replaceChildren(room.status === "playing" ? h("span", { class: "badge playing" }, "Live") : "");
}

/** @param {(score: number) => number} next */
function changeScore(next) {
  const id = ui.gameRoom;
  if (!id) return;
  let ms = ui.myScore.get(id);
  if (!ms) ui.myScore.set(id, (ms = { value: 0, inflight: 0 }));
  const s = ms;
  const v = next(s.value);
  if (!Number.isFinite(v)) { toast("error", "Invalid score", "Enter a number."); return; }
  s.value = v;
  s.inflight++;
  $("my-score").textContent = fmtScore(v);
  game.updateScore(id, v).catch((e) => showError(e)).finally(() => {
    s.inflight--;
    if (s.inflight === 0) {
      const mine = game.rooms.get(id)?.gameState?.players.find((p) => p.playerId === me.id);
      if (mine) s.value = mine.score;
      if (ui.gameRoom === id) $("my-score").textContent = fmtScore(s.value);
    }
  });
}

$("score-minus1").addEventListener("click", () => changeScore((s) => s - 1));
$("score-plus1").addEventListener("click", () => changeScore((s) => s + 1));
$("score-plus5").addEventListener("click", () => changeScore((s) => s + 5));
$("score-plus10").addEventListener("click", () => changeScore((s) => s + 10));
$("score-form").addEventListener("submit", (/** @type {Event} */ e) => {
  e.preventDefault();
  const raw = $("score-input").value;
  if (raw === "") return;
  changeScore(() => Number(raw));
  $("score-input").value = "";
});

/** @param {string} label @param {() => Promise<any>} fn @param {any} btn */
async function act(label, fn, btn) {
  btn.disabled = true;
  try { await fn(); } catch (e) { showError(e, label); } finally { btn.disabled = false; renderGame(); }
}
$("start-game").addEventListener("click", (/** @type {any} */ e) => act("Could not start the game", () => game.startGame(/** @type {string} */ (ui.gameRoom)), e.currentTarget));
$("end-game").addEventListener("click", (/** @type {any} */ e) => act("Could not end the game", () => game.endGame(/** @type {string} */ (ui.gameRoom)), e.currentTarget));
$("end-turn").addEventListener("click", (/** @type {any} */ e) => act("Could not end the turn", () => game.endTurn(/** @type {string} */ (ui.gameRoom)), e.currentTarget));
$("game-leave").addEventListener("click", async () => {
  const id = ui.gameRoom;
  if (!id) return;
  try {
    await game.leaveRoom(id);
    ui.gameRoom = null;
    location.hash = "#/games";
    refreshLists();
  } catch (e) {
    showError(e, "Could not leave the room");
  }
});

// ---- boot --------------------------------------------------------------------------------------

if (me.name) start();
else showNamePicker();
