// Unit tests of /holocron.js against a scripted fake server (no network).
// browser_test.go evaluates this file in a page of the real server and calls
// runClientTests(module); it returns a list of {name, ok, error}.
// (Also runnable with node: see the bottom of the file.)

/* eslint-disable no-unused-vars */
async function runClientTests(m) {
  const results = [];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  async function until(what, pred, timeout = 3000) {
    const end = Date.now() + timeout;
    while (!pred()) {
      if (Date.now() > end) throw new Error("timed out waiting for " + what);
      await sleep(5);
    }
  }
  function eq(got, want, what) {
    const g = JSON.stringify(got), w = JSON.stringify(want);
    if (g !== w) throw new Error(`${what}: got ${g}, want ${w}`);
  }
  function ok(cond, what) {
    if (!cond) throw new Error(what);
  }

  /**
   * A fake ChatLobby + RoomManager speaking the wire protocol, with hooks to
   * drop sockets at chosen moments.
   */
  function makeServer() {
    const srv = {
      sockets: [],
      urls: [],
      rooms: new Map(), // roomId → {msgs: [], seq}
      game: { status: "waiting", players: [], startedAt: "", endsAt: "" },
      frames: [], // every client frame, in order
      refuse: 0, // connections to refuse before accepting
      refuseCode: 1006,
      hooks: {}, // type → fn(ws, frame) returning true to swallow the frame
      silent: false, // do not answer pings
    };
    const room = (id) => {
      if (!srv.rooms.has(id)) srv.rooms.set(id, { msgs: [], seq: 0, present: new Set() });
      return srv.rooms.get(id);
    };
    const pad = (n) => String(n).padStart(20, "0");
    srv.add = (roomId, msg) => {
      const r = room(roomId);
      const stored = { id: pad(++r.seq), roomId, timestamp: new Date().toISOString(), type: "text", ...msg };
      r.msgs.push(stored);
      return stored;
    };
    srv.broadcast = (roomId, frame) => {
      for (const ws of srv.sockets) if (ws.readyState === 1 && ws.rooms.has(roomId)) ws.push(frame);
    };
    srv.handle = (ws, f) => {
      srv.frames.push(f);
      if (srv.hooks[f.type] && srv.hooks[f.type](ws, f)) return;
      const echo = f.requestId ? { requestId: f.requestId } : {};
      switch (f.type) {
        case "ping":
          if (!srv.silent) ws.push({ type: "pong", ...echo });
          break;
        case "join_room": {
          if (f.roomId === "missing") { ws.push({ type: "join_failed", code: "room_not_found", message: "Failed to join room: not found", roomId: f.roomId, requestType: "join_room", ...echo }); break; }
          if (ws.url.includes("room-manager")) {
            if (!srv.game.players.some((p) => p.playerId === f.playerId)) srv.game.players.push({ playerId: f.playerId, playerName: f.playerName, score: 0, status: "ready" });
            ws.rooms.add(f.roomId);
            ws.push({ type: "room_joined", room: { id: f.roomId, name: "G", status: srv.game.status, currentPlayers: srv.game.players.map((p) => p.playerId), connected: [], settings: { duration: 60 }, endsAt: srv.game.endsAt }, gameState: { roomId: f.roomId, currentTurn: 0, players: srv.game.players, gameData: { actions: [] } }, spectator: false, ...echo });
            break;
          }
          const r = room(f.roomId);
          ws.rooms.add(f.roomId);
          ws.push({ type: "room_joined", room: { id: f.roomId, name: f.roomId }, participants: [f.playerId], ...echo });
          if (f.since !== undefined) {
            const newer = r.msgs.filter((x) => x.id > f.since);
            // Resend an overlap on purpose: the client must deduplicate.
            const overlap = r.msgs.filter((x) => x.id <= f.since).slice(-2);
            ws.push({ type: "message_history", roomId: f.roomId, since: f.since, messages: [...overlap, ...newer], hasMore: false, truncated: false, ...echo });
          }
          break;
        }
        case "get_history": {
          const r = room(f.roomId);
          let msgs = r.msgs;
          if (f.after !== undefined) msgs = msgs.filter((x) => x.id > f.after).slice(0, f.limit || 50);
          else msgs = msgs.slice(-(f.limit || 50));
          ws.push({ type: "message_history", roomId: f.roomId, messages: msgs, hasMore: false, ...echo });
          break;
        }
        case "send_message": {
          const r = room(f.roomId);
          const dup = r.msgs.find((x) => x.senderId === f.playerId && x.clientMsgId === f.clientMsgId);
          if (dup) { ws.push({ type: "new_message", message: dup, ...echo }); break; }
          const stored = srv.add(f.roomId, { senderId: f.playerId, senderName: f.playerId, content: f.content, clientMsgId: f.clientMsgId });
          for (const s of srv.sockets) if (s.readyState === 1 && s.rooms.has(f.roomId)) s.push({ type: "new_message", message: stored, ...(s === ws ? echo : {}) });
          break;
        }
        case "leave_room":
          ws.rooms.delete(f.roomId);
          ws.push({ type: "room_left", roomId: f.roomId, ...echo });
          break;
        case "start_game":
          srv.game.status = "playing";
          srv.game.startedAt = new Date().toISOString();
          srv.game.endsAt = new Date(Date.now() + 60000).toISOString();
          ws.push({ type: "game_started_success", roomId: f.roomId, ...echo });
          srv.broadcast(f.roomId, { type: "game_started", roomId: f.roomId, startedAt: srv.game.startedAt, endsAt: srv.game.endsAt });
          break;
        case "update_score": {
          const p = srv.game.players.find((x) => x.playerId === f.playerId);
          p.score = f.score;
          for (const s of srv.sockets) if (s.readyState === 1 && s.rooms.has(f.roomId)) s.push({ type: "score_updated", roomId: f.roomId, playerId: f.playerId, score: f.score, players: srv.game.players, ...(s === ws ? echo : {}) });
          break;
        }
        default:
          ws.push({ type: "error", code: "unknown_type", message: "Unknown message type", requestType: f.type, ...echo });
      }
    };
    class FakeWebSocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        this.rooms = new Set();
        srv.urls.push(url);
        srv.sockets.push(this);
        setTimeout(() => {
          if (this.readyState !== 0) return;
          if (srv.refuse > 0) { srv.refuse--; this.serverClose(srv.refuseCode, ""); return; }
          this.readyState = 1;
          this.onopen && this.onopen({});
        }, 1);
      }
      send(data) {
        if (this.readyState !== 1) throw new Error("send on a socket that is not open");
        const f = JSON.parse(data);
        setTimeout(() => { if (this.readyState === 1) srv.handle(this, f); }, 0);
      }
      close() { this.readyState = 3; }
      push(frame) {
        if (this.readyState !== 1) return;
        setTimeout(() => { if (this.readyState === 1) this.onmessage && this.onmessage({ data: JSON.stringify(frame) }); }, 0);
      }
      serverClose(code, reason) {
        this.readyState = 3;
        setTimeout(() => this.onclose && this.onclose({ code, reason: reason || "" }), 0);
      }
    }
    srv.WebSocket = FakeWebSocket;
    srv.live = () => srv.sockets.filter((s) => s.readyState === 1);
    srv.dropAll = (code, reason) => { for (const s of srv.live()) s.serverClose(code, reason); };
    return srv;
  }

  const fast = { backoff: { initial: 10, max: 40 }, requestTimeout: 2000, connectTimeout: 500 };
  const noFetch = async () => ({ status: 200, ok: true, text: async () => "{}", json: async () => ({}) });

  async function test(name, fn) {
    const clients = [];
    try {
      await fn((c) => { clients.push(c); return c; });
      results.push({ name, ok: true });
    } catch (e) {
      results.push({ name, ok: false, error: String(e && e.stack ? e.stack : e) });
    } finally {
      for (const c of clients) c.close();
    }
  }

  await test("exports", async () => {
    for (const k of ["connectChat", "connectGame", "ChatClient", "GameClient", "HolocronClient", "HolocronError", "CloseCode", "newClientMsgId", "decodeTokenClaims", "compareIds"]) ok(k in m, "missing export " + k);
    eq(m.CloseCode.MOVED, 1012, "MOVED");
    ok(m.compareIds("00000000000000000009", "00000000000000000010") < 0, "compareIds order");
    ok(m.compareIds("9", "10") < 0, "compareIds width");
  });

  await test("token in URL, identity from token claims, Bearer on HTTP", async (track) => {
    const srv = makeServer();
    const payload = btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify({ sub: "u-42", name: "Zoë" })))).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const tok = "h." + payload + ".s";
    let seenAuth = "";
    const fetch = async (url, init) => { seenAuth = init.headers.Authorization; return { ok: true, status: 200, text: async () => '{"rooms":[]}' }; };
    const c = track(m.connectChat({ ...fast, token: tok, nodes: ["http://example.test:8080"], WebSocket: srv.WebSocket, fetch }));
    await c.ready();
    eq(srv.urls[0], "ws://example.test:8080/api/lobby/websocket?token=" + encodeURIComponent(tok), "url");
    eq([c.playerId, c.playerName], ["u-42", "Zoë"], "identity");
    await c.listRooms();
    eq(seenAuth, "Bearer " + tok, "authorization header");
    const g = track(m.connectGame({ ...fast, nodes: ["https://h.test"], WebSocket: srv.WebSocket, fetch }));
    await g.ready();
    eq(srv.urls[1], "wss://h.test/api/room-manager/websocket", "game url");
  });

  await test("join loads history once and in order, live messages after", async (track) => {
    const srv = makeServer();
    for (let i = 1; i <= 5; i++) srv.add("r1", { senderId: "x", senderName: "X", content: "old " + i });
    const c = track(m.connectChat({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    const seen = [];
    c.on("message", (e) => seen.push(e.message.content));
    const res = await c.joinRoom("r1", { history: 3 });
    eq(res.messages.map((x) => x.content), ["old 3", "old 4", "old 5"], "join result");
    await c.sendMessage("r1", "hello");
    eq(seen, ["old 3", "old 4", "old 5", "hello"], "messages");
  });

  await test("reconnect on 1012 resumes with since, dedups, keeps order", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    const seen = [];
    const states = [];
    c.on("message", (e) => seen.push(e.message.id));
    c.on("state", (s) => states.push(s.state));
    await c.joinRoom("r1");
    await c.sendMessage("r1", "a");
    await c.sendMessage("r1", "b");
    const lastBefore = seen[seen.length - 1];
    srv.dropAll(1012, "moved");
    // Two messages committed while the client is away.
    srv.add("r1", { senderId: "q", senderName: "Q", content: "c" });
    srv.add("r1", { senderId: "q", senderName: "Q", content: "d" });
    await until("resume", () => seen.length === 4);
    const join = srv.frames.filter((f) => f.type === "join_room").pop();
    eq(join.since, lastBefore, "since");
    ok(states.includes("reconnecting"), "went through reconnecting: " + states);
    eq(c.state, "open", "state");
    await c.sendMessage("r1", "e");
    eq(seen.length, 5, "count");
    eq([...seen].sort(), seen, "in order");
    eq(new Set(seen).size, seen.length, "no duplicates");
  });

  await test("send in flight is re-sent with the same clientMsgId and stored once", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    const seen = [];
    c.on("message", (e) => seen.push(e.message));
    await c.joinRoom("r1");
    let dropped = false;
    // The server stores the message, then the socket dies before the reply.
    srv.hooks.send_message = (ws, f) => {
      if (dropped) return false;
      dropped = true;
      srv.add("r1", { senderId: f.playerId, senderName: f.playerId, content: f.content, clientMsgId: f.clientMsgId });
      ws.serverClose(1001, "going away");
      return true;
    };
    const msg = await c.sendMessage("r1", "once", { clientMsgId: "cm-1" });
    eq(msg.clientMsgId, "cm-1", "resolved with the stored message");
    const sends = srv.frames.filter((f) => f.type === "send_message");
    eq(sends.map((f) => f.clientMsgId), ["cm-1", "cm-1"], "re-sent with same clientMsgId");
    eq(srv.rooms.get("r1").msgs.filter((x) => x.clientMsgId === "cm-1").length, 1, "stored once");
    await sleep(20);
    eq(seen.filter((x) => x.clientMsgId === "cm-1").length, 1, "delivered once");
  });

  await test("messages queued while disconnected go out after the rejoin", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    await c.joinRoom("r1");
    srv.refuse = 2;
    srv.dropAll(1006, "");
    await until("reconnecting", () => c.state === "reconnecting");
    const p = c.sendMessage("r1", "queued");
    const msg = await p;
    eq(msg.content, "queued", "content");
    const types = srv.frames.map((f) => f.type);
    ok(types.lastIndexOf("join_room") < types.lastIndexOf("send_message"), "rejoin before send: " + types);
  });

  await test("4001 does not reconnect and surfaces auth_error", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, token: "t", playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    await c.ready();
    let authErr = null;
    c.on("auth_error", (e) => { authErr = e; });
    const n = srv.urls.length;
    srv.dropAll(4001, "token expired");
    await until("failed", () => c.state === "failed");
    await sleep(80);
    eq(srv.urls.length, n, "no new connection");
    eq(authErr && authErr.code, "token_expired", "auth_error code");
    let rejected = null;
    await c.sendMessage("r1", "x").catch((e) => { rejected = e; });
    eq(rejected && rejected.code, "token_expired", "requests rejected");
  });

  await test("handshake refused with 401 stops reconnecting", async (track) => {
    const srv = makeServer();
    srv.refuse = 100;
    const fetch = async () => ({ ok: false, status: 401, json: async () => ({ code: "unauthorized", message: "bad token" }), text: async () => "" });
    const c = track(m.connectChat({ ...fast, token: "bad", WebSocket: srv.WebSocket, fetch }));
    await until("failed", () => c.state === "failed");
    eq(c.lastError.code, "unauthorized", "code");
    const n = srv.urls.length;
    await sleep(80);
    eq(srv.urls.length, n, "no retries");
  });

  await test("backoff grows with jitter; 1013, 1001, 1006 and 4008 reconnect", async (track) => {
    const srv = makeServer();
    srv.refuse = 4;
    const delays = [];
    const c = track(m.connectChat({ ...fast, backoff: { initial: 8, max: 1000 }, WebSocket: srv.WebSocket, fetch: noFetch }));
    c.on("state", (s) => { if (s.delay !== undefined) delays.push(s.delay); });
    await until("open", () => c.state === "open", 5000);
    eq(delays.length, 4, "four retries");
    for (let i = 0; i < 4; i++) {
      const cap = 8 * 2 ** i;
      ok(delays[i] >= Math.floor(cap / 2) && delays[i] <= cap, `delay ${i} = ${delays[i]} not in [${cap / 2}, ${cap}]`);
    }
    for (const code of [1013, 1001, 1006]) {
      const n = srv.urls.length;
      srv.dropAll(code, "");
      await until("reconnect after " + code, () => srv.urls.length > n && c.state === "open", 5000);
    }
    let policyDelay = 0;
    c.on("state", (s) => { if (s.code === 4008) policyDelay = s.delay; });
    srv.dropAll(4008, "too many sockets");
    await until("4008 scheduled", () => policyDelay > 0);
    ok(policyDelay >= 5000, "4008 waits at least 5 s, got " + policyDelay);
  });

  await test("keepalive drops a silent connection and reconnects", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, pingInterval: 30, pongTimeout: 30, WebSocket: srv.WebSocket, fetch: noFetch }));
    await c.ready();
    ok(await c.ping() >= 0, "ping answered");
    srv.silent = true;
    const n = srv.urls.length;
    await until("reconnect", () => srv.urls.length > n, 3000);
    ok(srv.frames.some((f) => f.type === "ping" && !f.requestId), "sent keepalive pings");
  });

  await test("moved (1012) reconnects at once to the next node", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, backoff: { initial: 5000, max: 5000 }, nodes: ["http://a.test", "http://b.test"], WebSocket: srv.WebSocket, fetch: noFetch }));
    await c.ready();
    const first = srv.urls[0];
    srv.dropAll(1012, "moved");
    await until("reconnected", () => srv.urls.length === 2 && c.state === "open", 1000);
    ok(srv.urls[1] !== first, "switched node: " + srv.urls);
  });

  await test("game: rejoin after drop; start_game in flight fails, update_score is re-sent", async (track) => {
    const srv = makeServer();
    const g = track(m.connectGame({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    const updates = [];
    g.on("room_update", (u) => updates.push(u.cause.type));
    await g.joinRoom("g1");
    srv.hooks.start_game = (ws) => { ws.serverClose(1001, ""); return true; };
    let err = null;
    await g.startGame("g1").catch((e) => { err = e; });
    eq(err && err.code, "connection_lost", "start_game outcome unknown");
    delete srv.hooks.start_game;
    await until("rejoined", () => g.state === "open" && g.rooms.get("g1").joined);
    await g.startGame("g1");
    let dropped = false;
    srv.hooks.update_score = (ws) => { if (dropped) return false; dropped = true; ws.serverClose(1012, "moved"); return true; };
    const f = await g.updateScore("g1", 7);
    eq(f.score, 7, "score");
    eq(srv.frames.filter((x) => x.type === "update_score").length, 2, "re-sent once");
    eq(g.rooms.get("g1").room.status, "playing", "state kept");
    ok(g.timeLeft("g1") > 50000, "clock");
    ok(updates.includes("game_started") && updates.includes("score_updated"), "room_update events: " + updates);
  });

  await test("failure frames reject the request and unsolicited ones are emitted", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    let err = null;
    await c.joinRoom("missing").catch((e) => { err = e; });
    eq([err && err.name, err && err.code, err && err.requestType], ["HolocronError", "room_not_found", "join_room"], "join_failed");
    ok(!c.rooms.has("missing"), "not tracked");
    const errors = [];
    c.on("error", (e) => errors.push(e.code));
    srv.live()[0].push({ type: "error", code: "rate_limited", message: "slow down" });
    await until("error event", () => errors.length === 1);
    eq(errors, ["rate_limited"], "emitted");
  });

  await test("a token replaced before it lapses carries the session over a 4001", async (track) => {
    const srv = makeServer();
    const c = track(m.connectChat({ ...fast, token: "old", playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    await c.joinRoom("r1");
    c.setToken("new");
    srv.dropAll(4001, "token expired");
    await until("reconnected with the new token", () => srv.urls.length === 2 && c.state === "open" && c.rooms.get("r1").joined);
    ok(srv.urls[1].endsWith("?token=new"), "url " + srv.urls[1]);
  });

  await test("close() rejects waiting joins; a refused rejoin emits room_lost", async (track) => {
    const srv = makeServer();
    srv.refuse = 100;
    const c = track(m.connectChat({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv.WebSocket, fetch: noFetch }));
    const pending = c.joinRoom("r1").then(() => "resolved", (e) => e.code);
    c.close();
    eq(await pending, "closed", "join after close");
    const srv2 = makeServer();
    const d = track(m.connectChat({ ...fast, playerId: "p1", playerName: "P1", WebSocket: srv2.WebSocket, fetch: noFetch }));
    await d.joinRoom("r1");
    const lost = [];
    d.on("room_lost", (x) => lost.push(x.roomId + ":" + x.error.code));
    srv2.hooks.join_room = (ws, f) => { ws.push({ type: "join_failed", code: "forbidden", message: "no", roomId: f.roomId, requestId: f.requestId }); return true; };
    srv2.dropAll(1012, "moved");
    await until("room_lost", () => lost.length === 1);
    eq(lost, ["r1:forbidden"], "room_lost");
    ok(!d.rooms.has("r1"), "room dropped");
  });

  return results;
}

if (typeof process !== "undefined" && process.argv && process.argv[1] && process.argv[1].endsWith("client_test.js")) {
  // node web/testdata/client_test.js — for quick runs while editing.
  globalThis.location = { origin: "http://localhost", protocol: "http:" };
  import(new URL("../static/holocron.js", "file://" + process.argv[1]).href).then(runClientTests).then((r) => {
    for (const x of r) console.log(x.ok ? "ok  " : "FAIL", x.name, x.error || "");
    process.exit(r.every((x) => x.ok) ? 0 : 1);
  });
}
