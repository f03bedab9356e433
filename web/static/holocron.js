// @ts-check
/**
 * Holocron browser client: a plain ES module, no build step.
 *
 *   import { connectChat, connectGame } from "/holocron.js";
 *   const chat = connectChat({ playerId, playerName });   // same origin
 *   chat.on("message", ({ roomId, message }) => render(message));
 *   await chat.joinRoom("lobby-1");                       // + recent history
 *   await chat.sendMessage("lobby-1", "hello");
 *
 * What it does for you (PROTOCOL.md "Close codes", "Idempotent send"):
 * - keepalive pings; a connection that stops answering is dropped;
 * - reconnect with jittered exponential backoff on 1001, 1012 ("moved": at
 *   once, to the next node), 1013, 4008 and dropped connections; never on
 *   4001 (auth failed / token expired): the client stops in state "failed"
 *   and emits "auth_error";
 * - after a reconnect it rejoins its rooms; chat resumes with `since` = the
 *   last message id received, and "message" events are deduplicated by id,
 *   so the app sees every message once and in commit order;
 * - requests in flight when the connection dropped are sent again where
 *   that is safe (send_message keeps its clientMsgId, update_score is
 *   absolute); the others (start_game, end_game, game_action) are rejected
 *   with code "connection_lost" because their outcome is unknown;
 * - with a token, sockets connect with ?token=… (browsers cannot set headers
 *   on WebSockets) and HTTP calls send Authorization: Bearer ….
 *
 * Events (client.on(type, fn) returns an unsubscribe function):
 * - every server frame under its own `type` ("user_joined", "score_updated",
 *   "game_ended", …) and as "frame"; failure frames that answer a request
 *   reject that request's promise, the others (rate_limited, …) are emitted
 *   as "error" (a HolocronError), so no error is silently dropped;
 * - "state" {state, previous, attempt?, delay?, code?, reason?, retryAt?}:
 *   connecting → open → reconnecting → open …, or failed / closed;
 * - "open", "close" {code, reason}, "auth_error" (HolocronError);
 * - chat: "message" {roomId, message, live} (deduplicated, in order),
 *   "presence", "history_gap", "room_lost"; game: "room_update", "room_lost".
 */

export const version = "1.0.0";

/** Close codes of PROTOCOL.md. */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  GOING_AWAY: 1001,
  ABNORMAL: 1006,
  MOVED: 1012,
  TRY_AGAIN_LATER: 1013,
  AUTH_FAILED: 4001,
  POLICY: 4008,
});

/** Failure frame types: every other failure is type "error". */
const FAILURE_TYPES = new Set(["error", "join_failed", "start_game_failed"]);

/**
 * @typedef {"idle"|"connecting"|"open"|"reconnecting"|"failed"|"closed"} ConnectionState
 *
 * @typedef {Object} ChatRoom
 * @property {string} id
 * @property {string} name
 * @property {string[]} participants  live presence (player ids)
 * @property {number} maxParticipants
 * @property {boolean} isPrivate
 * @property {string} createdAt
 * @property {string} lastActivity
 *
 * @typedef {Object} ChatMessage
 * @property {string} id          fixed-width; string order is commit order
 * @property {string} roomId
 * @property {string} senderId
 * @property {string} senderName
 * @property {string} content
 * @property {string} timestamp
 * @property {"text"|"system"|"join"|"leave"} type
 * @property {string} [clientMsgId]
 *
 * @typedef {Object} GameSettings
 * @property {"easy"|"medium"|"hard"} difficulty
 * @property {number} duration          seconds
 * @property {number} maxRounds
 * @property {boolean} allowSpectators
 * @property {string} [leaderboard]     the Leaderboard the final scores go to
 *
 * @typedef {Object} GameRoom
 * @property {string} id
 * @property {string} name
 * @property {"cognitive"|"social"|"competitive"} gameType
 * @property {number} maxPlayers
 * @property {string[]} currentPlayers
 * @property {string[]} connected
 * @property {"waiting"|"playing"|"finished"} status
 * @property {string} createdAt
 * @property {string} [startedAt]
 * @property {string} [endsAt]
 * @property {string} [endedAt]
 * @property {"clock"|"rounds"|"ended"|"abandoned"} [endReason]
 * @property {GameSettings} settings
 * @property {boolean} [leaderboardPosted] the final scores are on settings.leaderboard
 *
 * @typedef {Object} PlayerState
 * @property {string} playerId
 * @property {string} playerName
 * @property {number} score
 * @property {"ready"|"playing"|"finished"} status
 * @property {string} lastActivity
 *
 * @typedef {Object} FinalScore
 * @property {string} playerId
 * @property {string} playerName
 * @property {number} finalScore
 *
 * @typedef {Object} GameState
 * @property {string} roomId
 * @property {number} currentTurn
 * @property {PlayerState[]} players
 * @property {{actions: any[], finalScores?: FinalScore[]}} gameData
 * @property {string} lastUpdate
 *
 * @typedef {Object} Frame  a server frame; `type` names it
 * @property {string} type
 * @property {string} [requestId]
 * @property {string} [roomId]
 * @property {string} [code]
 * @property {string} [message]
 *
 * @typedef {Object} ClientOptions
 * @property {string[]} [nodes]   base URLs of any nodes (http(s):// or ws(s)://); default: this page's origin
 * @property {string} [token]     auth token (sent as ?token= on sockets, Bearer on HTTP)
 * @property {string} [playerId]  default identity for joins (with a token: the token's `sub`)
 * @property {string} [playerName]
 * @property {number} [pingInterval]   ms between keepalive pings (default 20000)
 * @property {number} [pongTimeout]    ms of silence after a ping before the socket is dropped (default 10000)
 * @property {number} [requestTimeout] ms a sent request waits for its reply (default 15000)
 * @property {number} [connectTimeout] ms a socket may take to open (default 10000)
 * @property {{initial?: number, max?: number}} [backoff]  reconnect delays in ms (default 500 … 15000)
 * @property {boolean} [autoConnect]   connect at once (default true)
 * @property {any} [WebSocket]         WebSocket constructor (tests)
 * @property {typeof fetch} [fetch]    fetch implementation (tests)
 */

/** An error reported by the server (failure frame or HTTP error) or by the client. */
export class HolocronError extends Error {
  /**
   * @param {string} code      protocol code (room_not_found, …) or a client code:
   *                           connection_lost, timeout, closed, network, unauthorized, token_expired
   * @param {string} message
   * @param {{requestType?: string, roomId?: string, requestId?: string, status?: number, frame?: Frame, detail?: string}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = "HolocronError";
    this.code = code;
    this.requestType = extra.requestType;
    this.roomId = extra.roomId;
    this.requestId = extra.requestId;
    this.status = extra.status;
    this.frame = extra.frame;
    this.detail = extra.detail;
  }

  /** @param {any} f a failure frame */
  static fromFrame(f) {
    return new HolocronError(String(f.code || "internal"), String(f.message || f.code || "error"), {
      requestType: f.requestType, roomId: f.roomId, requestId: f.requestId, frame: f, detail: f.detail,
    });
  }
}

/** @param {any} f */
export function isFailureFrame(f) {
  return !!f && FAILURE_TYPES.has(f.type);
}

/** A random id for send_message's clientMsgId (≤ 64 chars). */
export function newClientMsgId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  let s = "";
  for (let i = 0; i < 4; i++) s += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, "0");
  return s;
}

/**
 * Best-effort decode of a JWT-shaped token's claims ({sub, name, exp, …}).
 * Returns null for opaque tokens. Nothing is verified: the server does that.
 * @param {string|undefined|null} token
 * @returns {Record<string, any>|null}
 */
export function decodeTokenClaims(token) {
  if (!token) return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    let b = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    while (b.length % 4) b += "=";
    const bin = atob(b);
    const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : null;
  } catch {
    return null;
  }
}

/**
 * Compares two message ids: fixed-width strings compare as strings; a
 * shorter id is smaller (robust to ids that are not zero-padded).
 * @param {string} a @param {string} b
 */
export function compareIds(a, b) {
  if (a.length !== b.length) return a.length - b.length;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One request waiting for its reply.
 * @typedef {Object} Pending
 * @property {string} id
 * @property {Record<string, any>} frame
 * @property {(v: any) => void} resolve
 * @property {(e: any) => void} reject
 * @property {"resend"|"fail"|"drop"|"custom"} retry   what happens when the connection drops after sending
 * @property {((f: Frame) => boolean)} [accept]        returns true when f completes the request (default: any frame)
 * @property {() => Record<string, any>[]} [resendFrames] for retry "custom": frames to send before the request
 * @property {number} [sentOn]  connection number the frame went out on (undefined: not sent)
 * @property {any} [timer]
 */

/**
 * The transport shared by ChatClient and GameClient: one WebSocket with
 * reconnects, keepalive, request/reply matching and events.
 */
export class HolocronClient {
  /**
   * @param {"chat"|"game"} kind
   * @param {ClientOptions & {lobby?: string}} [options]
   */
  constructor(kind, options = {}) {
    this.kind = kind;
    const origin = typeof location !== "undefined" ? location.origin : "http://localhost";
    /** @type {string[]} */
    this.nodes = (options.nodes && options.nodes.length ? options.nodes : [origin]).map((n) => n.replace(/\/+$/, ""));
    this.token = options.token || "";
    const claims = decodeTokenClaims(this.token);
    /** Identity used when a join does not give one. */
    this.playerId = options.playerId || (claims && claims.sub ? String(claims.sub) : "");
    this.playerName = options.playerName || (claims && (claims.name || claims.sub) ? String(claims.name || claims.sub) : "");
    this.options = {
      pingInterval: options.pingInterval ?? 20000,
      pongTimeout: options.pongTimeout ?? 10000,
      requestTimeout: options.requestTimeout ?? 15000,
      connectTimeout: options.connectTimeout ?? 10000,
      backoffInitial: options.backoff?.initial ?? 500,
      backoffMax: options.backoff?.max ?? 15000,
    };
    this._WS = options.WebSocket || globalThis.WebSocket;
    this._fetch = options.fetch || globalThis.fetch?.bind(globalThis);
    /** @type {ConnectionState} */
    this._state = "idle";
    /** @type {WebSocket|null} */
    this._ws = null;
    this._conn = 0; // connection number, increments per opened socket
    this._attempt = 0;
    this._nodeIndex = Math.floor(Math.random() * this.nodes.length);
    this._reqSeq = 0;
    /** @type {Map<string, Pending>} */
    this._pending = new Map();
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
    this._timers = { reconnect: null, ping: null, stable: null, connect: null };
    this._lastRx = 0;
    this._userClosed = false;
    this._socketToken = "";
    /** @type {HolocronError|null} */
    this.lastError = null;
    this._offsets = /** @type {number[]} */ ([]);
    this._onOnline = () => {
      if (this._state === "reconnecting") this._connectNow();
    };
    if (typeof window !== "undefined" && window.addEventListener) window.addEventListener("online", this._onOnline);
    if (options.autoConnect !== false) this.connect();
  }

  // ---- events ------------------------------------------------------------

  /**
   * Subscribes to an event; returns a function that unsubscribes.
   * Events: "state", "open", "close", "frame", "error", "auth_error", every
   * server frame type, and the client's own ("message", "history_gap",
   * "room_update", "room_lost", "presence").
   * @param {string} type @param {(data: any) => void} fn
   * @returns {() => void}
   */
  on(type, fn) {
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  /** @param {string} type @param {Function} fn */
  off(type, fn) {
    this._listeners.get(type)?.delete(fn);
  }

  /**
   * Resolves with the next event of type (matching pred), or rejects after timeout ms.
   * @param {string} type @param {(d: any) => boolean} [pred] @param {number} [timeout]
   */
  once(type, pred, timeout) {
    return new Promise((resolve, reject) => {
      /** @type {any} */
      let timer;
      const off = this.on(type, (d) => {
        if (pred && !pred(d)) return;
        off();
        clearTimeout(timer);
        resolve(d);
      });
      if (timeout) timer = setTimeout(() => { off(); reject(new HolocronError("timeout", `no ${type} within ${timeout} ms`)); }, timeout);
    });
  }

  /** @param {string} type @param {any} data */
  _emit(type, data) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(data);
      } catch (e) {
        console.error(`holocron: "${type}" listener threw`, e);
      }
    }
  }

  // ---- connection --------------------------------------------------------

  /** @returns {ConnectionState} */
  get state() {
    return this._state;
  }

  /** The node (base URL) in use. */
  get node() {
    return this.nodes[this._nodeIndex % this.nodes.length];
  }

  /** Starts connecting (no-op while connecting or open). */
  connect() {
    this._userClosed = false;
    if (this._ws || this._timers.reconnect) return;
    this._setState(this._conn > 0 ? "reconnecting" : "connecting");
    this._open();
  }

  /** Resolves when the socket is open (rejects if the client fails or is closed first). */
  ready() {
    if (this._state === "open") return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.on("state", ({ state, error }) => {
        if (state === "open") { off(); resolve(undefined); }
        if (state === "failed" || state === "closed") { off(); reject(error || new HolocronError("closed", "client closed")); }
      });
    });
  }

  /** Closes for good: no reconnect; pending requests are rejected. */
  close() {
    this._userClosed = true;
    this._clearTimers();
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      this._detach(ws);
      try { ws.close(1000, "client closed"); } catch { /* ignore */ }
    }
    this._failPending(new HolocronError("closed", "client closed"));
    if (typeof window !== "undefined" && window.removeEventListener) window.removeEventListener("online", this._onOnline);
    this._setState("closed");
  }

  /** Drops the current socket (if any) and connects again at once. */
  reconnect() {
    this._userClosed = false;
    this._attempt = 0;
    if (this._ws) this._drop("reconnect requested", CloseCode.NORMAL, false);
    this._connectNow();
  }

  /**
   * Replaces the auth token (for example before or after "token_expired").
   * A stopped client reconnects with it; an open socket keeps its token
   * until the server closes it (4001), then the client reconnects with the
   * new one instead of failing.
   * @param {string} token
   */
  setToken(token) {
    this.token = token || "";
    const claims = decodeTokenClaims(this.token);
    if (claims && claims.sub) {
      this.playerId = String(claims.sub);
      this.playerName = String(claims.name || claims.sub);
    }
    if (this._state === "failed") this.reconnect();
  }

  _connectNow() {
    clearTimeout(this._timers.reconnect);
    this._timers.reconnect = null;
    if (this._ws) return;
    this._setState(this._conn > 0 || this._attempt > 0 ? "reconnecting" : "connecting");
    this._open();
  }

  /** @param {ConnectionState} state @param {Record<string, any>} [detail] */
  _setState(state, detail = {}) {
    const previous = this._state;
    this._state = state;
    if (previous !== state || detail.delay !== undefined) this._emit("state", { state, previous, ...detail });
  }

  /** The WebSocket path of this client's object. @returns {string} */
  _wsPath() {
    throw new Error("abstract");
  }

  /** @param {string} base */
  _wsURL(base) {
    let u = base.replace(/^http(s?):/, "ws$1:");
    if (!/^wss?:/.test(u)) u = (typeof location !== "undefined" && location.protocol === "https:" ? "wss://" : "ws://") + u;
    u += this._wsPath();
    if (this.token) u += "?token=" + encodeURIComponent(this.token);
    return u;
  }

  /** @param {string} base */
  _httpBase(base) {
    return base.replace(/^ws(s?):/, "http$1:");
  }

  _open() {
    const url = this._wsURL(this.node);
    this._socketToken = this.token;
    let ws;
    try {
      ws = new this._WS(url);
    } catch (e) {
      this._scheduleReconnect(CloseCode.ABNORMAL, String(e), false);
      return;
    }
    this._ws = ws;
    let opened = false;
    this._timers.connect = setTimeout(() => {
      if (this._ws === ws && !opened) this._drop("connect timeout", CloseCode.ABNORMAL, false);
    }, this.options.connectTimeout);
    ws.onopen = () => {
      if (this._ws !== ws) return;
      opened = true;
      clearTimeout(this._timers.connect);
      this._onOpen();
    };
    ws.onmessage = (/** @type {MessageEvent} */ ev) => {
      if (this._ws === ws) this._onMessage(ev.data);
    };
    ws.onerror = () => { /* a close event follows */ };
    ws.onclose = (/** @type {CloseEvent} */ ev) => {
      if (this._ws !== ws) return;
      this._ws = null;
      this._onClose(ev.code, ev.reason || "", opened);
    };
  }

  /** @param {WebSocket} ws */
  _detach(ws) {
    ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
  }

  /**
   * Gives up on the current socket without waiting for the browser's close
   * event (which can take minutes on a dead connection).
   * @param {string} reason @param {number} code @param {boolean} schedule
   */
  _drop(reason, code = CloseCode.ABNORMAL, schedule = true) {
    const ws = this._ws;
    if (!ws) return;
    const wasOpen = ws.readyState === 1;
    this._ws = null;
    this._detach(ws);
    try { ws.close(1000, reason.slice(0, 100)); } catch { /* ignore */ }
    if (schedule) this._onClose(code, reason, wasOpen);
    else this._afterClose(code, reason);
  }

  _onOpen() {
    this._conn++;
    this._lastRx = Date.now();
    this.lastError = null;
    clearTimeout(this._timers.stable);
    // Reset the backoff only once the connection proved stable, so a server
    // that accepts and closes at once is not hammered.
    this._timers.stable = setTimeout(() => { this._attempt = 0; }, 5000);
    clearInterval(this._timers.ping);
    this._timers.ping = setInterval(() => this._keepalive(), this.options.pingInterval);
    this._setState("open", { node: this.node });
    this._emit("open", { node: this.node, reconnect: this._conn > 1 });
    this._resume();
    // Then every request waiting for a connection, in the order made.
    for (const p of this._pending.values()) {
      if (p.sentOn !== undefined) continue;
      if (p.retry === "custom" && p.resendFrames) {
        for (const f of p.resendFrames()) this._rawSend(f);
      }
      this._transmit(p);
    }
  }

  _keepalive() {
    if (!this._ws || this._ws.readyState !== 1) return;
    if (Date.now() - this._lastRx > this.options.pingInterval + this.options.pongTimeout) {
      this._drop("keepalive timeout");
      return;
    }
    this._rawSend({ type: "ping" });
  }

  /** @param {number} code @param {string} reason */
  _afterClose(code, reason) {
    clearInterval(this._timers.ping);
    clearTimeout(this._timers.stable);
    clearTimeout(this._timers.connect);
    // Requests sent on the lost socket: resend where safe, else fail.
    for (const p of [...this._pending.values()]) {
      clearTimeout(p.timer);
      if (p.sentOn === undefined) continue;
      p.sentOn = undefined;
      if (p.retry === "fail") {
        this._pending.delete(p.id);
        p.reject(new HolocronError("connection_lost",
          "The connection was lost before the server answered; the request may or may not have taken effect.",
          { requestType: p.frame.type, roomId: p.frame.roomId }));
      } else if (p.retry === "drop") {
        this._pending.delete(p.id);
        p.resolve(null);
      }
    }
    this._connectionLost();
    this._emit("close", { code, reason });
  }

  /** @param {number} code @param {string} reason @param {boolean} wasOpen */
  _onClose(code, reason, wasOpen) {
    this._afterClose(code, reason);
    if (this._userClosed) return;
    if (code === CloseCode.AUTH_FAILED && this.token && this.token !== this._socketToken) {
      // The token was replaced (setToken) while the old one was in use:
      // carry on with the new one.
      this._scheduleReconnect(CloseCode.MOVED, reason, wasOpen);
      return;
    }
    if (code === CloseCode.AUTH_FAILED) {
      const c = /expired/i.test(reason) ? "token_expired" : "unauthorized";
      this._fail(new HolocronError(c, reason || "authentication failed"));
      return;
    }
    if (!wasOpen) {
      // The handshake failed; a browser cannot see the HTTP status, so ask
      // over HTTP whether the server refuses our credentials (401).
      this._probeAuth().then((err) => {
        if (this._userClosed || this._ws || this._timers.reconnect || this._state === "failed") return;
        if (err) this._fail(err);
        else this._scheduleReconnect(code, reason, wasOpen);
      });
      return;
    }
    this._scheduleReconnect(code, reason, wasOpen);
  }

  /** @param {HolocronError} err */
  _fail(err) {
    this.lastError = err;
    this._failPending(err);
    this._setState("failed", { error: err, code: err.code });
    this._emit("auth_error", err);
    this._emit("error", err);
  }

  /** @returns {Promise<HolocronError|null>} */
  async _probeAuth() {
    if (!this._fetch) return null;
    try {
      const res = await this._fetch(this._httpBase(this.node) + this._restBase() + "/rooms", { headers: this._headers() });
      if (res.status !== 401) return null;
      const body = await res.json().catch(() => ({}));
      const code = body.code === "token_expired" ? "token_expired" : "unauthorized";
      return new HolocronError(code, body.message || (code === "token_expired" ? "token expired" : "authentication required"), { status: 401 });
    } catch {
      return null;
    }
  }

  /** @param {number} code @param {string} reason @param {boolean} wasOpen */
  _scheduleReconnect(code, reason, wasOpen) {
    const { backoffInitial, backoffMax } = this.options;
    let delay;
    if (code === CloseCode.MOVED) {
      // The object moved: reconnect at once, to another node if we know one.
      delay = Math.random() * 100;
      this._attempt = Math.min(this._attempt, 1);
    } else {
      // Full exponential backoff with "equal jitter": half fixed, half random.
      const cap = Math.min(backoffMax, backoffInitial * 2 ** this._attempt);
      delay = cap / 2 + Math.random() * (cap / 2);
      if (code === CloseCode.POLICY) delay = Math.max(delay, 5000); // too many sockets: later
    }
    this._attempt++;
    if (this.nodes.length > 1) this._nodeIndex = (this._nodeIndex + 1) % this.nodes.length;
    this._setState("reconnecting", { attempt: this._attempt, delay: Math.round(delay), code, reason, wasOpen, retryAt: Date.now() + delay });
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      if (!this._userClosed && !this._ws) this._open();
    }, delay);
  }

  _clearTimers() {
    clearTimeout(this._timers.reconnect);
    clearInterval(this._timers.ping);
    clearTimeout(this._timers.stable);
    clearTimeout(this._timers.connect);
    this._timers.reconnect = null;
  }

  /** @param {HolocronError} err */
  _failPending(err) {
    for (const p of this._pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this._pending.clear();
  }

  // ---- frames ------------------------------------------------------------

  /** @param {Record<string, any>} frame */
  _rawSend(frame) {
    if (!this._ws || this._ws.readyState !== 1) return false;
    this._ws.send(JSON.stringify(frame));
    return true;
  }

  /**
   * Sends a frame and resolves with the reply that echoes its requestId
   * (rejects with a HolocronError on a failure frame). Made while
   * disconnected, it waits for the connection.
   * @param {Record<string, any>} frame
   * @param {{retry?: Pending["retry"], accept?: Pending["accept"], resendFrames?: Pending["resendFrames"]}} [opts]
   * @returns {Promise<any>}
   */
  request(frame, opts = {}) {
    if (this._state === "failed" && this.lastError) return Promise.reject(this.lastError);
    if (this._state === "closed") return Promise.reject(new HolocronError("closed", "client closed"));
    const id = "r" + (++this._reqSeq).toString(36) + "-" + Math.random().toString(36).slice(2, 8);
    return new Promise((resolve, reject) => {
      /** @type {Pending} */
      const p = { id, frame: { ...frame, requestId: id }, resolve, reject, retry: opts.retry || "resend", accept: opts.accept };
      if (opts.resendFrames) p.resendFrames = opts.resendFrames;
      this._pending.set(id, p);
      if (this._ws && this._ws.readyState === 1) this._transmit(p);
    });
  }

  /** @param {Pending} p */
  _transmit(p) {
    if (!this._rawSend(p.frame)) return;
    p.sentOn = this._conn;
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      if (this._pending.get(p.id) !== p) return;
      this._pending.delete(p.id);
      p.reject(new HolocronError("timeout", `no answer to ${p.frame.type} within ${this.options.requestTimeout} ms`,
        { requestType: p.frame.type, roomId: p.frame.roomId }));
    }, this.options.requestTimeout);
  }

  /** Round trip to the server; resolves with the time in ms. */
  async ping() {
    const t0 = performance.now();
    await this.request({ type: "ping" }, { retry: "resend" });
    return performance.now() - t0;
  }

  /** @param {any} data */
  _onMessage(data) {
    this._lastRx = Date.now();
    /** @type {any} */
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      this._emit("error", new HolocronError("invalid_json", "the server sent a frame that is not JSON"));
      return;
    }
    if (!f || typeof f.type !== "string") return;
    this._emit("frame", f);
    const failure = isFailureFrame(f);
    const p = f.requestId ? this._pending.get(f.requestId) : undefined;
    // State first, so listeners and awaiting code see it updated.
    this._handleFrame(f, p);
    // A raw "error" frame is reported as the "error" event below (as a
    // HolocronError), or through the request's rejection.
    if (f.type !== "error") this._emit(f.type, f);
    if (p) {
      if (failure) {
        this._settle(p);
        p.reject(HolocronError.fromFrame(f));
      } else if (!p.accept || p.accept(f)) {
        this._settle(p);
        p.resolve(f);
      }
    } else if (failure) {
      // No request to report it to (rate_limited, a frame for a request
      // that timed out …): never drop it silently.
      const err = HolocronError.fromFrame(f);
      this.lastError = err;
      this._emit("error", err);
    }
  }

  /** @param {Pending} p */
  _settle(p) {
    clearTimeout(p.timer);
    this._pending.delete(p.id);
  }

  /** Subclass hook: keep state from a frame. @param {any} _f @param {Pending|undefined} _p */
  _handleFrame(_f, _p) {}

  /** Subclass hook: rejoin rooms on a new connection. */
  _resume() {}

  /** Subclass hook: the connection was lost. */
  _connectionLost() {}

  // ---- server time ---------------------------------------------------------

  /** @param {string|undefined} iso a server timestamp that was "now" when sent */
  _observeServerTime(iso) {
    const t = iso ? Date.parse(iso) : NaN;
    if (Number.isNaN(t)) return;
    this._offsets.push(t - Date.now());
    if (this._offsets.length > 8) this._offsets.shift();
  }

  /** Estimated server clock minus local clock, in ms. */
  get serverOffset() {
    // A stamp is taken before the frame travels, so each sample is at most
    // the true offset: the largest recent sample is the best estimate.
    return this._offsets.length ? Math.max(...this._offsets) : 0;
  }

  /** Estimated current server time in ms since the epoch. */
  serverNow() {
    return Date.now() + this.serverOffset;
  }

  // ---- HTTP ----------------------------------------------------------------

  /** @returns {string} */
  _restBase() {
    throw new Error("abstract");
  }

  _headers() {
    /** @type {Record<string, string>} */
    const h = { Accept: "application/json" };
    if (this.token) h.Authorization = "Bearer " + this.token;
    return h;
  }

  /**
   * Calls the object's HTTP API; throws HolocronError with the server's code.
   * @param {string} method @param {string} path @param {any} [body]
   */
  async http(method, path, body) {
    if (!this._fetch) throw new HolocronError("network", "fetch is not available");
    const headers = this._headers();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let lastErr;
    for (let i = 0; i < Math.min(this.nodes.length, 3); i++) {
      const base = this._httpBase(this.nodes[(this._nodeIndex + i) % this.nodes.length]);
      let res;
      try {
        res = await this._fetch(base + this._restBase() + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      } catch (e) {
        lastErr = new HolocronError("network", `cannot reach ${base}: ${e instanceof Error ? e.message : e}`);
        continue;
      }
      const text = await res.text();
      /** @type {any} */
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
      if (res.ok) return data;
      const code = (data && data.code) || (res.status === 401 ? "unauthorized" : "http_" + res.status);
      const err = new HolocronError(code, (data && data.message) || `${method} ${path}: ${res.status} ${res.statusText}`, { status: res.status });
      if (res.status === 401) {
        this.lastError = err;
        this._emit("auth_error", err);
      }
      if (res.status === 503 && i + 1 < this.nodes.length) { lastErr = err; await sleep(100); continue; }
      throw err;
    }
    throw lastErr || new HolocronError("network", "no node reachable");
  }

  /**
   * A join (or rejoin) failed. A lost connection is retried by the rejoin
   * after the reconnect; a closed client or refused credentials keep the
   * room for a later reconnect (setToken) but fail the callers; any other
   * failure (room gone, forbidden, …) drops the room.
   * @param {{roomId: string, waiters: Array<{resolve: Function, reject: Function}>}} t
   * @param {any} e
   */
  _joinFailed(t, e) {
    const err = e instanceof HolocronError ? e : new HolocronError("internal", String(e));
    if (err.code === "connection_lost") return;
    const waiters = t.waiters.splice(0);
    for (const w of waiters) w.reject(err);
    if (err.code === "closed" || err.code === "unauthorized" || err.code === "token_expired") return;
    const rooms = /** @type {Map<string, any>} */ (/** @type {any} */ (this).rooms);
    if (rooms.get(t.roomId) === t) rooms.delete(t.roomId);
    if (!waiters.length) this._emit("room_lost", { roomId: t.roomId, error: err });
  }

  /** @param {string} playerId @param {string} playerName */
  setIdentity(playerId, playerName) {
    this.playerId = playerId;
    this.playerName = playerName;
  }

  /** @param {{playerId?: string, playerName?: string}} o */
  _who(o) {
    const playerId = o.playerId || this.playerId;
    const playerName = o.playerName || this.playerName;
    if (!playerId) throw new HolocronError("missing_field", "playerId is required (pass it or set the client's identity)");
    return { playerId, playerName };
  }
}

/**
 * @typedef {Object} ChatRoomTrack  what the client keeps per joined chat room
 * @property {string} roomId
 * @property {string} playerId
 * @property {string} playerName
 * @property {boolean} joined
 * @property {ChatRoom|null} room
 * @property {string[]} participants
 * @property {string|null} lastId        newest message id delivered
 * @property {number} syncing            >0 while history is being fetched (live messages wait)
 * @property {ChatMessage[]} buffer      live messages that arrived while syncing
 * @property {boolean} joining           a join_room is outstanding
 * @property {number} history            messages to load on the first join
 * @property {Array<{resolve: Function, reject: Function}>} waiters
 */

/**
 * Client of a ChatLobby object (`/api/lobby/websocket`, or
 * `/api/lobbies/{lobby}/websocket`).
 *
 * Extra events: "message" {roomId, message, live} — every message once, in
 * order (history first); "presence" {roomId, participants, participantCount,
 * playerId, playerName, joined}; "history_gap" {roomId, since} when messages
 * were trimmed before we could resume; "room_lost" {roomId, error} when a
 * rejoin after reconnect failed.
 */
export class ChatClient extends HolocronClient {
  /** @param {ClientOptions & {lobby?: string, joinsInTimeline?: boolean}} [options] */
  constructor(options = {}) {
    super("chat", { ...options, autoConnect: false });
    this.lobby = options.lobby || "";
    /** Fetch join/leave messages into the timeline when presence changes. */
    this.joinsInTimeline = options.joinsInTimeline !== false;
    /** @type {Map<string, ChatRoomTrack>} */
    this.rooms = new Map();
    if (options.autoConnect !== false) this.connect();
  }

  _wsPath() {
    return this.lobby ? `/api/lobbies/${encodeURIComponent(this.lobby)}/websocket` : "/api/lobby/websocket";
  }

  _restBase() {
    return this.lobby ? `/api/lobbies/${encodeURIComponent(this.lobby)}` : "/api/lobby";
  }

  // ---- HTTP ----

  /** Public rooms, oldest first. @returns {Promise<ChatRoom[]>} */
  async listRooms() {
    const r = await this.http("GET", "/rooms");
    return (r && r.rooms) || [];
  }

  /**
   * @param {{roomId?: string, id?: string, name: string, maxParticipants?: number, isPrivate?: boolean, allowedPlayers?: string[]}} room
   * @returns {Promise<ChatRoom>}
   */
  createRoom(room) {
    return this.http("POST", "/rooms", room);
  }

  /** @param {string} roomId @returns {Promise<ChatRoom>} */
  getRoom(roomId) {
    return this.http("GET", `/rooms/${encodeURIComponent(roomId)}`);
  }

  /**
   * @param {string} roomId @param {{limit?: number, before?: string, after?: string}} [q]
   * @returns {Promise<{roomId: string, messages: ChatMessage[], hasMore: boolean}>}
   */
  getMessages(roomId, q = {}) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) p.set(k, String(v));
    const qs = p.toString();
    return this.http("GET", `/rooms/${encodeURIComponent(roomId)}/messages${qs ? "?" + qs : ""}`);
  }

  // ---- WebSocket ----

  /**
   * Joins a room and loads its newest `history` messages (delivered as
   * "message" events before any live one). Rejoined automatically after a
   * reconnect. Resolves with {room, participants, messages}.
   * @param {string} roomId
   * @param {{playerId?: string, playerName?: string, history?: number}} [opts]
   * @returns {Promise<{room: ChatRoom, participants: string[], messages: ChatMessage[]}>}
   */
  joinRoom(roomId, opts = {}) {
    let who;
    try { who = this._who(opts); } catch (e) { return Promise.reject(e); }
    let t = this.rooms.get(roomId);
    if (!t) {
      t = {
        roomId, ...who, joined: false, joining: false, room: null, participants: [], lastId: null, syncing: 0, buffer: [],
        history: Math.max(0, Math.min(1000, opts.history ?? 50)), waiters: [],
      };
      this.rooms.set(roomId, t);
    } else if (t.joined) {
      return Promise.resolve({ room: /** @type {ChatRoom} */ (t.room), participants: t.participants, messages: [] });
    }
    const track = t;
    const p = new Promise((resolve, reject) => track.waiters.push({ resolve, reject }));
    // A join already under way (a rejoin after a reconnect) resolves us too.
    if (track.waiters.length === 1 && !track.joining) this._join(track);
    return /** @type {any} */ (p);
  }

  /** @param {ChatRoomTrack} t */
  async _join(t) {
    const first = t.lastId === null;
    t.syncing++;
    /** @type {ChatMessage[]} */
    let delivered = [];
    try {
      /** @type {Record<string, any>} */
      const frame = { type: "join_room", roomId: t.roomId, playerId: t.playerId, playerName: t.playerName };
      if (!first) frame.since = t.lastId;
      /** @type {any} */
      let resume = null;
      t.joining = true;
      let joined;
      try {
        joined = await this.request(frame, {
          retry: "drop",
          // With `since`, the join is complete once the resume page arrived too.
          accept: (f) => {
            if (f.type === "message_history") { resume = f; return true; }
            return first && f.type === "room_joined";
          },
        });
      } finally {
        t.joining = false;
      }
      if (joined === null) return; // connection lost: _resume() joins again
      if (this.rooms.get(t.roomId) !== t) return; // left meanwhile
      t.joined = true;
      if (first) {
        const page = await this.request({ type: "get_history", roomId: t.roomId, limit: Math.max(1, t.history) }, { retry: "fail" });
        const msgs = page.messages || [];
        if (t.history === 0) t.lastId = msgs.length ? msgs[msgs.length - 1].id : "";
        else delivered = this._deliver(t, msgs, false);
      } else {
        delivered = this._deliver(t, resume.messages || [], false);
        if (resume.truncated) this._emit("history_gap", { roomId: t.roomId, since: resume.since });
        if (resume.hasMore) delivered = delivered.concat(await this._pageAfter(t));
      }
      const waiters = t.waiters.splice(0);
      for (const w of waiters) w.resolve({ room: t.room, participants: t.participants, messages: delivered });
    } catch (e) {
      this._joinFailed(t, e);
    } finally {
      t.syncing--;
      this._flush(t);
    }
  }

  /** Fetches everything after t.lastId. @param {ChatRoomTrack} t */
  async _pageAfter(t) {
    /** @type {ChatMessage[]} */
    let out = [];
    for (let guard = 0; guard < 1000; guard++) {
      // "fail": after a drop the whole sync starts again from the rejoin.
      const page = await this.request({ type: "get_history", roomId: t.roomId, after: t.lastId ?? "", limit: 1000 }, { retry: "fail" });
      out = out.concat(this._deliver(t, page.messages || [], false));
      if (!page.hasMore || !(page.messages || []).length) break;
    }
    return out;
  }

  /**
   * Brings the timeline up to date when presence changes, so join and leave
   * messages appear in order with their ids. A presence frame that arrives
   * while a history request is outstanding was sent before that request's
   * answer, which therefore covers it: nothing to do while syncing.
   * @param {ChatRoomTrack} t
   */
  async _catchUp(t) {
    if (t.syncing) return;
    t.syncing++;
    try {
      await this._pageAfter(t);
    } catch (e) {
      if (!(e instanceof HolocronError && (e.code === "connection_lost" || e.code === "closed"))) this._emit("error", e);
    } finally {
      t.syncing--;
      this._flush(t);
    }
  }

  /**
   * Emits the messages newer than the last delivered one, in id order.
   * @param {ChatRoomTrack} t @param {ChatMessage[]} msgs @param {boolean} live
   */
  _deliver(t, msgs, live) {
    const out = [];
    const sorted = msgs.length > 1 ? [...msgs].sort((a, b) => compareIds(a.id, b.id)) : msgs;
    for (const m of sorted) {
      if (!m || typeof m.id !== "string") continue;
      if (t.lastId !== null && t.lastId !== "" && compareIds(m.id, t.lastId) <= 0) continue;
      t.lastId = m.id;
      out.push(m);
      this._emit("message", { roomId: t.roomId, message: m, live });
    }
    return out;
  }

  /** @param {ChatRoomTrack} t */
  _flush(t) {
    if (t.syncing || !t.buffer.length) return;
    const b = t.buffer.splice(0);
    this._deliver(t, b, true);
  }

  /**
   * Leaves a room (stops rejoining it). Resolves when the server confirmed,
   * or at once if the connection is down (a closed socket leaves its rooms).
   * @param {string} roomId
   */
  async leaveRoom(roomId) {
    const t = this.rooms.get(roomId);
    this.rooms.delete(roomId);
    if (t) for (const w of t.waiters.splice(0)) w.reject(new HolocronError("closed", "left the room"));
    if (!t || !this._ws || this._ws.readyState !== 1) return null;
    return this.request({ type: "leave_room", roomId, playerId: t.playerId }, { retry: "drop" });
  }

  /**
   * Sends a message; resolves with the stored message. Safe to retry with
   * the same clientMsgId: the server stores it once (also done for you when
   * the connection drops mid-send).
   * @param {string} roomId @param {string} content
   * @param {{clientMsgId?: string}} [opts]
   * @returns {Promise<ChatMessage>}
   */
  async sendMessage(roomId, content, opts = {}) {
    const t = this.rooms.get(roomId);
    const playerId = t ? t.playerId : this.playerId;
    const clientMsgId = opts.clientMsgId || newClientMsgId();
    const f = await this.request({ type: "send_message", roomId, playerId, content, clientMsgId }, { retry: "resend" });
    return f.message;
  }

  /**
   * One page of history (oldest first). Does not emit "message" events: use
   * it to load older pages ("before" = the oldest id you show).
   * @param {string} roomId @param {{limit?: number, before?: string, after?: string}} [q]
   * @returns {Promise<{roomId: string, messages: ChatMessage[], hasMore: boolean}>}
   */
  getHistory(roomId, q = {}) {
    return this.request({ type: "get_history", roomId, ...q }, { retry: "resend" });
  }

  /** @param {any} f @param {Pending|undefined} p */
  _handleFrame(f, p) {
    const t = f.roomId ? this.rooms.get(f.roomId) : f.room ? this.rooms.get(f.room.id) : f.message ? this.rooms.get(f.message.roomId) : undefined;
    switch (f.type) {
      case "room_joined":
        if (t) {
          t.room = f.room;
          t.participants = f.participants || f.room?.participants || [];
          this._emit("presence", { roomId: t.roomId, participants: t.participants, participantCount: t.participants.length });
        }
        break;
      case "user_joined":
      case "user_left":
        if (t) {
          if (Array.isArray(f.participants)) t.participants = f.participants;
          else if (f.type === "user_left") t.participants = t.participants.filter((x) => x !== f.playerId);
          else if (!t.participants.includes(f.playerId)) t.participants = [...t.participants, f.playerId];
          this._emit("presence", {
            roomId: t.roomId, participants: t.participants, participantCount: f.participantCount ?? t.participants.length,
            playerId: f.playerId, playerName: f.playerName, joined: f.type === "user_joined",
          });
          if (this.joinsInTimeline && t.joined) this._catchUp(t);
        }
        break;
      case "new_message":
        if (t && f.message) {
          if (p) this._observeServerTime(f.message.timestamp);
          if (t.syncing) t.buffer.push(f.message);
          else this._deliver(t, [f.message], true);
        }
        break;
      case "room_left":
        if (t && !t.waiters.length) this.rooms.delete(t.roomId);
        break;
    }
  }

  _connectionLost() {
    for (const t of this.rooms.values()) t.joined = false;
  }

  _resume() {
    // A join still queued from before the connection opened goes out with
    // the other queued requests.
    for (const t of this.rooms.values()) if (!t.joining) this._join(t);
  }
}

/**
 * @typedef {Object} GameRoomTrack
 * @property {string} roomId
 * @property {string} playerId
 * @property {string} playerName
 * @property {boolean} spectator
 * @property {boolean} joined
 * @property {boolean} joining
 * @property {GameRoom|null} room
 * @property {GameState|null} gameState
 * @property {FinalScore[]|null} finalScores
 * @property {Array<{resolve: Function, reject: Function}>} waiters
 */

/**
 * Client of the RoomManager object (`/api/room-manager/websocket`).
 *
 * `rooms.get(id)` keeps each joined room's latest `room` and `gameState`,
 * updated from every frame; "room_update" {roomId, room, gameState,
 * finalScores, cause} fires after each change.
 */
export class GameClient extends HolocronClient {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    super("game", { ...options, autoConnect: false });
    /** @type {Map<string, GameRoomTrack>} */
    this.rooms = new Map();
    if (options.autoConnect !== false) this.connect();
  }

  _wsPath() {
    return "/api/room-manager/websocket";
  }

  _restBase() {
    return "/api/room-manager";
  }

  /** Every room, finished ones too, oldest first. @returns {Promise<GameRoom[]>} */
  async listRooms() {
    const r = await this.http("GET", "/rooms");
    return (r && r.rooms) || [];
  }

  /**
   * @param {{roomId?: string, id?: string, name: string, gameType: GameRoom["gameType"], maxPlayers?: number, settings?: Partial<GameSettings>}} room
   * @returns {Promise<GameRoom>}
   */
  createRoom(room) {
    return this.http("POST", "/rooms", room);
  }

  /** @param {string} roomId @returns {Promise<{room: GameRoom, gameState: GameState}>} */
  getRoom(roomId) {
    return this.http("GET", `/rooms/${encodeURIComponent(roomId)}`);
  }

  /**
   * Joins (or rejoins) a room as a player, or as a spectator. Rejoined
   * automatically after a reconnect. Resolves with {room, gameState, spectator}.
   * @param {string} roomId
   * @param {{playerId?: string, playerName?: string, spectator?: boolean}} [opts]
   * @returns {Promise<{room: GameRoom, gameState: GameState, spectator: boolean}>}
   */
  joinRoom(roomId, opts = {}) {
    let who;
    try { who = this._who(opts); } catch (e) { return Promise.reject(e); }
    let t = this.rooms.get(roomId);
    if (!t || (opts.spectator === false && t.spectator)) {
      t = { roomId, ...who, spectator: !!opts.spectator, joined: false, joining: false, room: t?.room || null, gameState: t?.gameState || null, finalScores: t?.finalScores || null, waiters: [] };
      this.rooms.set(roomId, t);
    } else if (t.joined) {
      return Promise.resolve({ room: /** @type {GameRoom} */ (t.room), gameState: /** @type {GameState} */ (t.gameState), spectator: t.spectator });
    }
    const track = t;
    const p = new Promise((resolve, reject) => track.waiters.push({ resolve, reject }));
    // A join already under way (a rejoin after a reconnect) resolves us too.
    if (track.waiters.length === 1 && !track.joining) this._join(track);
    return /** @type {any} */ (p);
  }

  /** @param {GameRoomTrack} t */
  async _join(t) {
    try {
      /** @type {Record<string, any>} */
      const frame = { type: "join_room", roomId: t.roomId, playerId: t.playerId, playerName: t.playerName };
      if (t.spectator) frame.spectator = true;
      t.joining = true;
      let f;
      try {
        f = await this.request(frame, { retry: "drop" });
      } finally {
        t.joining = false;
      }
      if (f === null) return; // connection lost: _resume() joins again
      const waiters = t.waiters.splice(0);
      for (const w of waiters) w.resolve({ room: f.room, gameState: f.gameState, spectator: !!f.spectator });
    } catch (e) {
      this._joinFailed(t, e);
    }
  }

  /**
   * Leaves for good (membership in a game room is durable until this).
   * @param {string} roomId
   */
  leaveRoom(roomId) {
    const t = this.rooms.get(roomId);
    this.rooms.delete(roomId);
    const playerId = t ? t.playerId : this.playerId;
    const playerName = t ? t.playerName : this.playerName;
    // After a reconnect the new socket must be in the room to leave it.
    return this.request({ type: "leave_room", roomId, playerId }, {
      retry: "custom",
      resendFrames: () => [{ type: "join_room", roomId, playerId, playerName }],
    });
  }

  /** Starts a waiting room (≥ 2 players). @param {string} roomId */
  startGame(roomId) {
    return this.request({ type: "start_game", roomId, playerId: this._pid(roomId) }, { retry: "fail" });
  }

  /**
   * Sets the player's (absolute) score; idempotent, so resent after a drop.
   * @param {string} roomId @param {number} score
   */
  updateScore(roomId, score) {
    return this.request({ type: "update_score", roomId, playerId: this._pid(roomId), score }, { retry: "resend" });
  }

  /**
   * @param {string} roomId @param {string} action 1..64 chars @param {any} [data] JSON ≤ 16 KiB
   */
  gameAction(roomId, action, data) {
    /** @type {Record<string, any>} */
    const f = { type: "game_action", roomId, playerId: this._pid(roomId), action };
    if (data !== undefined) f.data = data;
    return this.request(f, { retry: "fail" });
  }

  /** The action that advances currentTurn. @param {string} roomId */
  endTurn(roomId) {
    return this.gameAction(roomId, "end_turn");
  }

  /** Ends the game now (reason "ended"). @param {string} roomId */
  endGame(roomId) {
    return this.request({ type: "end_game", roomId, playerId: this._pid(roomId) }, { retry: "fail" });
  }

  /** Milliseconds left on the room's clock (0 when over; null when not playing). @param {string} roomId */
  timeLeft(roomId) {
    const r = this.rooms.get(roomId)?.room;
    if (!r || r.status !== "playing" || !r.endsAt) return null;
    return Math.max(0, Date.parse(r.endsAt) - this.serverNow());
  }

  /** @param {string} roomId */
  _pid(roomId) {
    return this.rooms.get(roomId)?.playerId || this.playerId;
  }

  /** @param {any} f @param {Pending|undefined} _p */
  _handleFrame(f, _p) {
    const id = f.roomId || (f.room && f.room.id);
    const t = id ? this.rooms.get(id) : undefined;
    if (!t) return;
    const gs = () => (t.gameState ||= { roomId: id, currentTurn: 0, players: [], gameData: { actions: [] }, lastUpdate: "" });
    switch (f.type) {
      case "room_joined":
        t.joined = true;
        t.room = f.room;
        t.gameState = f.gameState;
        t.spectator = !!f.spectator;
        t.finalScores = f.gameState?.gameData?.finalScores || null;
        break;
      case "player_joined":
      case "player_left":
      case "score_updated":
        gs().players = f.players || gs().players;
        if (t.room) {
          t.room.currentPlayers = gs().players.map((p) => p.playerId);
          if (f.type === "player_joined" && !t.room.connected.includes(f.playerId)) t.room.connected = [...t.room.connected, f.playerId];
          if (f.type === "player_left") t.room.connected = t.room.connected.filter((x) => x !== f.playerId);
        }
        break;
      case "game_started":
        this._observeServerTime(f.startedAt);
        if (t.room) Object.assign(t.room, { status: "playing", startedAt: f.startedAt, endsAt: f.endsAt });
        for (const p of gs().players) p.status = "playing";
        break;
      case "game_action": {
        const g = gs();
        g.currentTurn = f.currentTurn;
        g.gameData.actions = [...(g.gameData.actions || []), { seq: f.seq, playerId: f.playerId, action: f.action, data: f.data, currentTurn: f.currentTurn, timestamp: "" }].slice(-100);
        break;
      }
      case "game_ended":
        if (t.room) Object.assign(t.room, { status: "finished", endedAt: f.endedAt, endReason: f.reason });
        t.finalScores = f.finalScores || [];
        gs().gameData.finalScores = t.finalScores;
        for (const p of gs().players) p.status = "finished";
        break;
      case "room_left":
        if (!t.waiters.length) this.rooms.delete(t.roomId);
        break;
      default:
        return;
    }
    this._emit("room_update", { roomId: id, room: t.room, gameState: t.gameState, finalScores: t.finalScores, spectator: t.spectator, cause: f });
  }

  _connectionLost() {
    for (const t of this.rooms.values()) t.joined = false;
  }

  _resume() {
    for (const t of this.rooms.values()) if (!t.joining) this._join(t);
  }
}

/**
 * Connects to the ChatLobby (default: this page's origin, lobby "main").
 * Returns at once; the socket opens in the background and requests wait
 * for it.
 * @param {ClientOptions & {lobby?: string, joinsInTimeline?: boolean}} [options]
 */
export function connectChat(options = {}) {
  return new ChatClient(options);
}

/**
 * Connects to the RoomManager (default: this page's origin).
 * @param {ClientOptions} [options]
 */
export function connectGame(options = {}) {
  return new GameClient(options);
}
