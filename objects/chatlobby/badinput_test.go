package chatlobby_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// badCase is one malformed or refused frame. Frame cases are sent as JSON
// with requestId "rid" added unless they set requestId themselves; the reply
// must echo it. Raw cases are sent as they are.
type badCase struct {
	name string
	// as: "fresh" — a socket that never joined; "alice" — a socket of alice,
	// who is in room r (through another socket too, so nothing the case
	// does can make her leave).
	as     string
	frame  map[string]any
	raw    []byte
	binary bool

	typ, code, requestType, roomID string
	// message, when set, is the exact text the spec fixes.
	message string
	// noRequestID: the reply carries no requestId (raw frames, or a bad one).
	noRequestID bool
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

// TestBadFramesAreRefusedWithoutSideEffects sends every kind of malformed or
// refused frame and checks the exact failure frame, that the socket stays
// open (the next ping gets its pong with nothing before it), that no other
// socket hears of it, and that no state changed.
func TestBadFramesAreRefusedWithoutSideEffects(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	e.createRoom("other", nil)
	e.createRoom("full", map[string]any{"maxParticipants": 1})
	e.createRoom("priv", map[string]any{"isPrivate": true, "allowedPlayers": []string{"alice", "bob"}})

	bob := e.dial()
	join(t, bob, "r", "bob")
	alice := e.dial()
	join(t, alice, "r", "alice")
	bob.Expect("user_joined")
	carol := e.dial()
	join(t, carol, "full", "carol")
	say(bob, "r", "bob", "hello")
	bob.Expect("new_message")
	alice.Expect("new_message")

	snapshot := func() map[string]any {
		out := map[string]any{}
		_, out["rooms"] = e.s.Do(http.MethodGet, "/api/lobby/rooms", nil)
		for _, id := range []string{"r", "other", "full", "priv"} {
			out["room "+id] = e.room(id)
		}
		for _, id := range []string{"r", "other", "full"} {
			out["history "+id] = e.history(id, "limit=1000")
		}
		return out
	}
	before := snapshot()

	const (
		jf  = "join_failed"
		er  = "error"
		jr  = "join_room"
		lr  = "leave_room"
		sm  = "send_message"
		gh  = "get_history"
		bad = "invalid_field"
		mis = "missing_field"
	)
	join := func(kv ...any) map[string]any {
		f := map[string]any{"type": jr, "roomId": "r", "playerId": "alice", "playerName": "Alice"}
		return with(f, kv...)
	}
	leave := func(kv ...any) map[string]any {
		return with(map[string]any{"type": lr, "roomId": "r", "playerId": "alice"}, kv...)
	}
	send := func(kv ...any) map[string]any {
		return with(map[string]any{"type": sm, "roomId": "r", "playerId": "alice", "content": "hi"}, kv...)
	}
	hist := func(kv ...any) map[string]any {
		return with(map[string]any{"type": gh, "roomId": "r"}, kv...)
	}
	oversize := []byte(`{"type":"send_message","roomId":"r","playerId":"alice","content":"` + rep("x", 65536) + `"}`)

	cases := []badCase{
		// Framing.
		{name: "invalid JSON", as: "alice", raw: []byte(`{"type":`), typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "JSON array", as: "alice", raw: []byte(`[1]`), typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "JSON string", as: "alice", raw: []byte(`"x"`), typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "JSON number", as: "alice", raw: []byte(`42`), typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "JSON null", as: "alice", raw: []byte(`null`), typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "empty message", as: "alice", raw: []byte(``), typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "object then garbage", as: "alice", raw: []byte(`{"type":"ping"} x`), typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "binary message", as: "alice", raw: []byte(`{"type":"ping"}`), binary: true, typ: er, code: "invalid_json", message: "Invalid message format", noRequestID: true},
		{name: "missing type", as: "alice", raw: []byte(`{"roomId":"r"}`), typ: er, code: "unknown_type", message: "Unknown message type", noRequestID: true},
		{name: "non-string type", as: "alice", raw: []byte(`{"type":7}`), typ: er, code: "unknown_type", message: "Unknown message type", noRequestID: true},
		{name: "null type", as: "alice", raw: []byte(`{"type":null}`), typ: er, code: "unknown_type", message: "Unknown message type", noRequestID: true},
		{name: "unknown type", as: "alice", frame: map[string]any{"type": "dance"}, typ: er, code: "unknown_type", message: "Unknown message type", requestType: "dance"},
		{name: "numeric requestId", as: "alice", frame: map[string]any{"type": "ping", "requestId": 5}, typ: er, code: bad, requestType: "ping", noRequestID: true},
		{name: "requestId over 64 chars", as: "alice", frame: map[string]any{"type": "ping", "requestId": rep("é", 65)}, typ: er, code: bad, requestType: "ping", noRequestID: true},
		{name: "bad requestId on join_room", as: "fresh", frame: join("requestId", true), typ: jf, code: bad, requestType: jr, noRequestID: true},
		{name: "bad requestId on send_message", as: "alice", frame: send("requestId", []any{}), typ: er, code: bad, requestType: sm, noRequestID: true},
		{name: "oversize message", as: "alice", raw: oversize, typ: er, code: "too_large", noRequestID: true},

		// join_room.
		{name: "join: missing roomId", as: "fresh", frame: join("roomId", nil), typ: jf, code: mis, requestType: jr},
		{name: "join: numeric roomId", as: "fresh", frame: join("roomId", 1), typ: jf, code: bad, requestType: jr},
		{name: "join: roomId with a space", as: "fresh", frame: join("roomId", "a b"), typ: jf, code: bad, requestType: jr},
		{name: "join: roomId with a slash", as: "fresh", frame: join("roomId", "r/x"), typ: jf, code: bad, requestType: jr},
		{name: "join: empty roomId", as: "fresh", frame: join("roomId", ""), typ: jf, code: bad, requestType: jr},
		{name: "join: roomId over 64 chars", as: "fresh", frame: join("roomId", rep("a", 65)), typ: jf, code: bad, requestType: jr},
		{name: "join: missing playerId", as: "fresh", frame: join("playerId", nil), typ: jf, code: mis, requestType: jr, roomID: "r"},
		{name: "join: numeric playerId", as: "fresh", frame: join("playerId", 9), typ: jf, code: bad, requestType: jr, roomID: "r"},
		{name: "join: empty playerId", as: "fresh", frame: join("playerId", ""), typ: jf, code: bad, requestType: jr, roomID: "r"},
		{name: "join: playerId over 64 chars", as: "fresh", frame: join("playerId", rep("p", 65)), typ: jf, code: bad, requestType: jr, roomID: "r"},
		{name: "join: missing playerName", as: "fresh", frame: join("playerName", nil), typ: jf, code: mis, requestType: jr, roomID: "r"},
		{name: "join: numeric playerName", as: "fresh", frame: join("playerName", 3), typ: jf, code: bad, requestType: jr, roomID: "r"},
		{name: "join: empty playerName", as: "fresh", frame: join("playerName", ""), typ: jf, code: bad, requestType: jr, roomID: "r"},
		{name: "join: playerName over 100 code points", as: "fresh", frame: join("playerName", rep("é", 101)), typ: jf, code: bad, requestType: jr, roomID: "r"},
		{name: "join: numeric since", as: "fresh", frame: join("since", 5), typ: jf, code: bad, requestType: jr, roomID: "r"},
		{name: "join: unknown room", as: "fresh", frame: join("roomId", "nope"), typ: jf, code: "room_not_found", requestType: jr, roomID: "nope"},
		{name: "join: full room", as: "fresh", frame: join("roomId", "full"), typ: jf, code: "room_full", requestType: jr, roomID: "full"},
		{name: "join: private room, player not allowed", as: "fresh", frame: join("roomId", "priv", "playerId", "mallory"), typ: jf, code: "forbidden", requestType: jr, roomID: "priv"},
		{name: "join: spoofed playerId", as: "alice", frame: join("roomId", "other", "playerId", "bob"), typ: jf, code: "forbidden", requestType: jr, roomID: "other"},
		{name: "join: spoofed playerId of an allowed player", as: "alice", frame: join("roomId", "priv", "playerId", "bob"), typ: jf, code: "forbidden", requestType: jr, roomID: "priv"},
		{name: "join: missing field wins over unknown room", as: "fresh", frame: join("roomId", "nope", "playerName", nil), typ: jf, code: mis, requestType: jr, roomID: "nope"},
		{name: "join: unknown room wins over spoofing", as: "alice", frame: join("roomId", "nope", "playerId", "bob"), typ: jf, code: "room_not_found", requestType: jr, roomID: "nope"},
		{name: "join: spoofing wins over full room", as: "alice", frame: join("roomId", "full", "playerId", "bob"), typ: jf, code: "forbidden", requestType: jr, roomID: "full"},

		// leave_room.
		{name: "leave: missing roomId", as: "alice", frame: leave("roomId", nil), typ: er, code: mis, requestType: lr},
		{name: "leave: bad roomId", as: "alice", frame: leave("roomId", "r!"), typ: er, code: bad, requestType: lr},
		{name: "leave: missing playerId", as: "alice", frame: leave("playerId", nil), typ: er, code: mis, requestType: lr, roomID: "r"},
		{name: "leave: numeric playerId", as: "alice", frame: leave("playerId", 1), typ: er, code: bad, requestType: lr, roomID: "r"},
		{name: "leave: unknown room", as: "alice", frame: leave("roomId", "nope"), typ: er, code: "room_not_found", requestType: lr, roomID: "nope"},
		{name: "leave: before joining", as: "fresh", frame: leave(), typ: er, code: "not_in_room", requestType: lr, roomID: "r"},
		{name: "leave: room not joined", as: "alice", frame: leave("roomId", "other"), typ: er, code: "not_in_room", requestType: lr, roomID: "other"},
		{name: "leave: spoofed playerId", as: "alice", frame: leave("playerId", "bob"), typ: er, code: "forbidden", requestType: lr, roomID: "r"},
		{name: "leave: spoofing wins over not in room", as: "alice", frame: leave("roomId", "other", "playerId", "bob"), typ: er, code: "forbidden", requestType: lr, roomID: "other"},

		// send_message.
		{name: "send: missing roomId", as: "alice", frame: send("roomId", nil), typ: er, code: mis, requestType: sm},
		{name: "send: bad roomId", as: "alice", frame: send("roomId", "ü"), typ: er, code: bad, requestType: sm},
		{name: "send: missing playerId", as: "alice", frame: send("playerId", nil), typ: er, code: mis, requestType: sm, roomID: "r"},
		{name: "send: missing content", as: "alice", frame: send("content", nil), typ: er, code: mis, requestType: sm, roomID: "r"},
		{name: "send: numeric content", as: "alice", frame: send("content", 12), typ: er, code: bad, requestType: sm, roomID: "r"},
		{name: "send: empty content", as: "alice", frame: send("content", ""), typ: er, code: bad, requestType: sm, roomID: "r"},
		{name: "send: white-space-only content", as: "alice", frame: send("content", " \t\n\u00a0\u3000"), typ: er, code: bad, requestType: sm, roomID: "r"},
		{name: "send: content over 4000 code points", as: "alice", frame: send("content", rep("é", 4001)), typ: er, code: bad, requestType: sm, roomID: "r"},
		{name: "send: numeric clientMsgId", as: "alice", frame: send("clientMsgId", 1), typ: er, code: bad, requestType: sm, roomID: "r"},
		{name: "send: empty clientMsgId", as: "alice", frame: send("clientMsgId", ""), typ: er, code: bad, requestType: sm, roomID: "r"},
		{name: "send: clientMsgId over 64 chars", as: "alice", frame: send("clientMsgId", rep("c", 65)), typ: er, code: bad, requestType: sm, roomID: "r"},
		{name: "send: unknown room", as: "alice", frame: send("roomId", "nope"), typ: er, code: "room_not_found", requestType: sm, roomID: "nope"},
		{name: "send: spoofed playerId", as: "alice", frame: send("playerId", "bob"), typ: er, code: "forbidden", requestType: sm, roomID: "r"},
		{name: "send: before joining", as: "fresh", frame: send(), typ: er, code: "not_in_room", requestType: sm, roomID: "r"},
		{name: "send: room not joined", as: "alice", frame: send("roomId", "other"), typ: er, code: "not_in_room", requestType: sm, roomID: "other"},
		{name: "send: bad content wins over unknown room", as: "alice", frame: send("roomId", "nope", "content", " "), typ: er, code: bad, requestType: sm, roomID: "nope"},
		{name: "send: unknown room wins over spoofing", as: "alice", frame: send("roomId", "nope", "playerId", "bob"), typ: er, code: "room_not_found", requestType: sm, roomID: "nope"},
		{name: "send: spoofing wins over not in room", as: "alice", frame: send("roomId", "other", "playerId", "bob"), typ: er, code: "forbidden", requestType: sm, roomID: "other"},

		// get_history.
		{name: "history: missing roomId", as: "alice", frame: hist("roomId", nil), typ: er, code: mis, requestType: gh},
		{name: "history: bad roomId", as: "alice", frame: hist("roomId", "a.b"), typ: er, code: bad, requestType: gh},
		{name: "history: limit 0", as: "alice", frame: hist("limit", 0), typ: er, code: bad, requestType: gh, roomID: "r"},
		{name: "history: limit 1001", as: "alice", frame: hist("limit", 1001), typ: er, code: bad, requestType: gh, roomID: "r"},
		{name: "history: string limit", as: "alice", frame: hist("limit", "5"), typ: er, code: bad, requestType: gh, roomID: "r"},
		{name: "history: fractional limit", as: "alice", frame: hist("limit", 1.5), typ: er, code: bad, requestType: gh, roomID: "r"},
		{name: "history: numeric before", as: "alice", frame: hist("before", 3), typ: er, code: bad, requestType: gh, roomID: "r"},
		{name: "history: numeric after", as: "alice", frame: hist("after", 3), typ: er, code: bad, requestType: gh, roomID: "r"},
		{name: "history: before and after", as: "alice", frame: hist("before", msgID(9), "after", msgID(1)), typ: er, code: bad, requestType: gh, roomID: "r"},
		{name: "history: unknown room", as: "alice", frame: hist("roomId", "nope"), typ: er, code: "room_not_found", requestType: gh, roomID: "nope"},
		{name: "history: private room not joined", as: "alice", frame: hist("roomId", "priv"), typ: er, code: "not_in_room", requestType: gh, roomID: "priv"},
		{name: "history: private room, fresh socket", as: "fresh", frame: hist("roomId", "priv"), typ: er, code: "not_in_room", requestType: gh, roomID: "priv"},
		{name: "history: spoofed playerId", as: "alice", frame: hist("playerId", "bob"), typ: er, code: "forbidden", requestType: gh, roomID: "r"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			defer c.WS.Close()
			if tc.as == "alice" {
				joinAgain(t, c, "r", "alice")
			}
			wantRequestID := ""
			switch {
			case tc.raw != nil:
				typ := websocket.TextMessage
				if tc.binary {
					typ = websocket.BinaryMessage
				}
				c.SendRaw(typ, tc.raw)
			default:
				frame := tc.frame
				if _, set := frame["requestId"]; !set {
					frame = with(frame, "requestId", "rid")
					wantRequestID = "rid"
				}
				c.SendRaw(websocket.TextMessage, mustJSON(dropNil(frame)))
			}
			if tc.noRequestID {
				wantRequestID = ""
			}
			got := c.Read()
			wantFailure(t, got, tc.typ, tc.code, tc.requestType, tc.roomID, wantRequestID)
			if tc.message != "" && got.Str("message") != tc.message {
				t.Fatalf("message %q, want %q", got.Str("message"), tc.message)
			}
			if tc.typ == "join_failed" && !strings.HasPrefix(got.Str("message"), "Failed to join room") {
				t.Fatalf("join_failed message %q does not start with the seed's text", got.Str("message"))
			}
			c.ExpectNothing() // the socket is open and nothing else came
			alice.ExpectNothing()
			bob.ExpectNothing()
			carol.ExpectNothing()
			if after := snapshot(); !reflect.DeepEqual(after, before) {
				t.Fatalf("state changed:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}

// with returns a copy of f with the key/value pairs set; a nil value marks
// the field for removal (see dropNil).
func with(f map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(f)+len(kv)/2)
	for k, v := range f {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i].(string)] = kv[i+1]
	}
	return out
}

// dropNil removes the fields set to nil, so a case can omit a field.
func dropNil(f map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range f {
		if v != nil {
			out[k] = v
		}
	}
	return out
}

// TestSpoofedPlayerIDIsForbidden: once a socket's player is fixed, every
// frame naming another player is refused with forbidden.
func TestSpoofedPlayerIDIsForbidden(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	e.createRoom("s", nil)
	c := e.dial()
	join(t, c, "r", "alice")
	for _, tc := range []struct {
		frame map[string]any
		typ   string
	}{
		{joinFrame("s", "mallory"), "join_failed"},
		{joinFrame("r", "mallory"), "join_failed"},
		{map[string]any{"type": "send_message", "roomId": "r", "playerId": "mallory", "content": "hi"}, "error"},
		{map[string]any{"type": "leave_room", "roomId": "r", "playerId": "mallory"}, "error"},
		{map[string]any{"type": "get_history", "roomId": "r", "playerId": "mallory"}, "error"},
	} {
		t.Run(tc.frame["type"].(string), func(t *testing.T) {
			c.Send(tc.frame)
			f := c.Expect(tc.typ)
			if f.Str("code") != "forbidden" {
				t.Fatalf("got %v, want forbidden", f)
			}
			c.ExpectNothing()
		})
	}
	wantStrings(t, "participants", strs(e.room("r").List("participants")), []string{"alice"})
	wantStrings(t, "participants of s", strs(e.room("s").List("participants")), nil)
}

// TestTooLargeMessageKeepsSocketOpen: a message over 64 KiB is refused with
// too_large and the socket keeps working.
func TestTooLargeMessageKeepsSocketOpen(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	c := e.dial()
	join(t, c, "r", "alice")
	// A message of exactly 65,536 bytes is handled; one byte more is not.
	padding := 65536 - len(`{"type":"send_message","roomId":"r","playerId":"alice","content":"hi","pad":""}`)
	c.SendRaw(websocket.TextMessage, []byte(`{"type":"send_message","roomId":"r","playerId":"alice","content":"hi","pad":"`+rep("x", padding)+`"}`))
	if f := c.Expect("new_message"); runtimetest.Frame(f.Obj("message")).Str("content") != "hi" {
		t.Fatalf("65,536-byte message: %v", f)
	}
	c.SendRaw(websocket.TextMessage, []byte(`{"type":"send_message","roomId":"r","playerId":"alice","content":"hi","pad":"`+rep("x", padding+1)+`"}`))
	if f := c.Expect("error"); f.Str("code") != "too_large" {
		t.Fatalf("65,537-byte message: %v", f)
	}
	c.ExpectNothing()
	if n := len(e.history("r", "").List("messages")); n != 2 {
		t.Fatalf("history has %d messages, want 2 (join, hi)", n)
	}
}

// TestRateLimitDropsExcessFrames: beyond the burst, frames get rate_limited
// and are not handled. The limit is the runtime's (before the lobby's
// mailbox), with the protocol's reply, as holocron serve runs it.
func TestRateLimitDropsExcessFrames(t *testing.T) {
	e := startWith(t, chatlobby.Options{}, runtime.Options{SocketRate: 0.001, SocketBurst: 4, RateLimitedReply: protocol.RateLimitedFrame()}, "")
	e.createRoom("r", nil)
	c := e.dial()
	c.Send(joinFrame("r", "alice")) // 1
	c.Expect("room_joined")
	c.Expect("user_joined")
	say(c, "r", "alice", "one") // 2
	c.Expect("new_message")
	say(c, "r", "alice", "two") // 3
	c.Expect("new_message")
	c.Send(map[string]any{"type": "ping"}) // 4
	c.Expect("pong")
	say(c, "r", "alice", "three")
	if f := c.Expect("error"); f.Str("code") != "rate_limited" {
		t.Fatalf("got %v, want rate_limited", f)
	}
	c.Send(map[string]any{"type": "ping"})
	if f := c.Expect("error"); f.Str("code") != "rate_limited" {
		t.Fatalf("got %v, want rate_limited", f)
	}
	wantStrings(t, "history", contents(e.history("r", "").List("messages")), []string{nameOf("alice") + " joined the room", "one", "two"})
	// Another socket has its own budget.
	d := e.dial()
	d.ExpectNothing()
}
