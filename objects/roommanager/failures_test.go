package roommanager_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/objects/roommanager"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// fixture is a node with rooms in every state and sockets in every role,
// for the failure tables:
//
//	lobby  waiting   players alice, bob; carol spectates
//	solo   waiting   player alice (alone)
//	arena  playing   players dave, erin; carol spectates
//	full   waiting   players frank, gina; maxPlayers 2, no spectators
//	done   finished  players frank, gina; maxPlayers 2
//
// Each player has one socket named after them; the socket fresh never
// joined anything.
type fixture struct {
	s     *runtimetest.Server
	conns map[string]*runtimetest.Conn
}

var fixtureRooms = []string{"lobby", "solo", "arena", "full", "done"}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := start(t, runtime.Options{})
	for _, id := range fixtureRooms {
		body := map[string]any{"roomId": id, "name": "Room " + id, "gameType": "cognitive"}
		switch id {
		case "full":
			body["maxPlayers"] = 2
			body["settings"] = map[string]any{"allowSpectators": false}
		case "done":
			body["maxPlayers"] = 2
		}
		createRoom(t, s, body)
	}
	c := map[string]*runtimetest.Conn{}
	for _, p := range []string{"alice", "bob", "carol", "dave", "erin", "frank", "gina", "fresh"} {
		c[p] = dial(s)
	}
	enter := func(who, room string, spectator bool) {
		c[who].Sync() // drain what earlier joins sent it
		join(t, c[who], room, who, spectator)
	}
	enter("alice", "lobby", false)
	enter("bob", "lobby", false)
	enter("carol", "lobby", true)
	enter("alice", "solo", false)
	enter("dave", "arena", false)
	enter("erin", "arena", false)
	enter("carol", "arena", true)
	for _, room := range []string{"full", "done"} {
		enter("frank", room, false)
		enter("gina", room, false)
	}
	send(c["dave"], "start_game", "arena", "dave", nil)
	send(c["frank"], "start_game", "done", "frank", nil)
	send(c["frank"], "end_game", "done", "frank", nil)
	// Once the senders' pings are answered, every frame their messages
	// caused is queued ahead of any later pong: drain everything.
	c["dave"].Sync()
	c["frank"].Sync()
	for _, conn := range c {
		conn.Sync()
	}
	if room, _ := getRoom(t, s, "done"); room.Str("status") != "finished" {
		t.Fatalf("fixture: done is %v", room)
	}
	return &fixture{s: s, conns: c}
}

// snapshot is everything a client can see of the rooms over HTTP.
func (fx *fixture) snapshot(t *testing.T) string {
	t.Helper()
	_, list := fx.s.Do("GET", api+"/rooms", nil)
	out := []any{list}
	for _, id := range fixtureRooms {
		_, f := fx.s.Do("GET", api+"/rooms/"+id, nil)
		out = append(out, f)
	}
	return jsonOf(t, out)
}

// failureCase is one bad frame and the failure it must get.
type failureCase struct {
	name string
	from string         // socket in the fixture
	msg  map[string]any // sent as JSON with a requestId added unless it has one
	raw  string         // sent as is when msg is nil
	bin  bool           // raw as a binary message
	room string         // the roomId raw names, if any

	want        string // failure frame type
	code        string
	requestType string
}

// run checks each case: the exact failure frame (echoing requestId and
// naming the room when known), nothing else on any socket, the socket still
// open (it answers ping), and no visible change of state.
func (fx *fixture) run(t *testing.T, cases []failureCase) {
	t.Helper()
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fx.snapshot(t)
			c := fx.conns[tc.from]
			wantRequestID, wantRoomID := any(absent), any(absent)
			if tc.room != "" {
				wantRoomID = tc.room
			}
			switch {
			case tc.msg != nil:
				msg := maps.Clone(tc.msg)
				if _, ok := msg["requestId"]; !ok {
					msg["requestId"] = fmt.Sprintf("req-%d", i)
					wantRequestID = msg["requestId"]
				}
				// A failure names the room once the handler validated it:
				// not for frames refused before (unknown type).
				if id, ok := msg["roomId"].(string); ok && frame.ValidRoomID(id) && tc.code != protocol.CodeUnknownType {
					wantRoomID = id
				}
				c.Send(msg)
			case tc.bin:
				c.SendRaw(websocket.BinaryMessage, []byte(tc.raw))
			default:
				c.SendRaw(websocket.TextMessage, []byte(tc.raw))
			}
			wantRequestType := any(tc.requestType)
			if tc.requestType == "" {
				wantRequestType = absent
			}
			f := c.Read()
			want(t, f, fields{"type": tc.want, "code": tc.code, "requestType": wantRequestType, "roomId": wantRoomID, "requestId": wantRequestID})
			switch {
			case tc.want == "start_game_failed":
				want(t, f, fields{"message": protocol.MessageStartFailed})
			case tc.want == "join_failed":
				if !strings.HasPrefix(f.Str("message"), protocol.MessageJoinFailed+": ") {
					t.Fatalf("join_failed message %q", f.Str("message"))
				}
			case tc.code == protocol.CodeInvalidJSON:
				want(t, f, fields{"message": protocol.MessageInvalidFormat})
			case tc.code == protocol.CodeUnknownType:
				want(t, f, fields{"message": protocol.MessageUnknownType})
			case f.Str("message") == "":
				t.Fatalf("failure without message: %v", f)
			}
			names := slices.Sorted(maps.Keys(fx.conns))
			for _, name := range names {
				if extra := fx.conns[name].Sync(); len(extra) > 0 {
					t.Fatalf("socket %s got more frames: %v", name, extra)
				}
			}
			if after := fx.snapshot(t); after != before {
				t.Fatalf("state changed\nbefore: %s\nafter:  %s", before, after)
			}
		})
	}
}

func TestMalformedFramesAreRejected(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	long := strings.Repeat("x", 65)
	oversize := `{"type":"ping","pad":"` + strings.Repeat("x", frame.MaxMessageBytes) + `"}`
	fx.run(t, []failureCase{
		{name: "invalid JSON is invalid_json", from: "alice", raw: `{"type":`, want: "error", code: "invalid_json"},
		{name: "empty message is invalid_json", from: "alice", raw: ``, want: "error", code: "invalid_json"},
		{name: "JSON array is invalid_json", from: "alice", raw: `[{"type":"ping"}]`, want: "error", code: "invalid_json"},
		{name: "JSON string is invalid_json", from: "alice", raw: `"ping"`, want: "error", code: "invalid_json"},
		{name: "JSON number is invalid_json", from: "alice", raw: `42`, want: "error", code: "invalid_json"},
		{name: "JSON null is invalid_json", from: "alice", raw: `null`, want: "error", code: "invalid_json"},
		{name: "binary message is invalid_json", from: "alice", raw: `{"type":"ping"}`, bin: true, want: "error", code: "invalid_json"},
		{name: "missing type is unknown_type", from: "alice", msg: fields{"roomId": "lobby"}, want: "error", code: "unknown_type"},
		{name: "non-string type is unknown_type", from: "alice", msg: fields{"type": 7}, want: "error", code: "unknown_type"},
		{name: "null type is unknown_type", from: "alice", msg: fields{"type": nil}, want: "error", code: "unknown_type"},
		{name: "empty type is unknown_type", from: "alice", msg: fields{"type": ""}, want: "error", code: "unknown_type"},
		{name: "unknown type is unknown_type naming it", from: "alice", msg: fields{"type": "dance"}, want: "error", code: "unknown_type", requestType: "dance"},
		{name: "chat type is unknown here", from: "alice", msg: fields{"type": "send_message", "roomId": "lobby"}, want: "error", code: "unknown_type", requestType: "send_message"},
		{name: "non-string requestId is invalid_field", from: "alice", msg: fields{"type": "ping", "requestId": 5}, want: "error", code: "invalid_field", requestType: "ping"},
		{name: "requestId over 64 characters is invalid_field", from: "alice", msg: fields{"type": "leave_room", "requestId": long}, want: "error", code: "invalid_field", requestType: "leave_room"},
		{name: "bad requestId on join_room is join_failed", from: "fresh", msg: fields{"type": "join_room", "requestId": true}, want: "join_failed", code: "invalid_field", requestType: "join_room"},
		{name: "bad requestId on start_game is start_game_failed", from: "alice", msg: fields{"type": "start_game", "requestId": long}, want: "start_game_failed", code: "invalid_field", requestType: "start_game"},
		{name: "message over 65536 bytes is too_large", from: "dave", raw: oversize, want: "error", code: "too_large"},
	})
}

// TestFrameAtSizeLimitIsAccepted: 65,536 bytes is the largest message.
func TestFrameAtSizeLimitIsAccepted(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	c := dial(s)
	head, tail := `{"type":"ping","requestId":"big","pad":"`, `"}`
	msg := head + strings.Repeat("x", frame.MaxMessageBytes-len(head)-len(tail)) + tail
	c.SendRaw(websocket.TextMessage, []byte(msg))
	want(t, c.Expect("pong"), fields{"requestId": "big"})
}

func TestJoinRoomFailures(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	j := func(roomID, playerID any, extra fields) map[string]any {
		m := map[string]any{"type": "join_room", "roomId": roomID, "playerId": playerID, "playerName": "X"}
		maps.Copy(m, extra)
		for k, v := range m {
			if v == absent {
				delete(m, k)
			}
		}
		return m
	}
	const jf, jr = "join_failed", "join_room"
	fx.run(t, []failureCase{
		{name: "missing roomId", from: "fresh", msg: j(absent, "x", nil), want: jf, code: "missing_field", requestType: jr},
		{name: "null roomId is missing", from: "fresh", msg: j(nil, "x", nil), want: jf, code: "missing_field", requestType: jr},
		{name: "non-string roomId", from: "fresh", msg: j(5, "x", nil), want: jf, code: "invalid_field", requestType: jr},
		{name: "empty roomId", from: "fresh", msg: j("", "x", nil), want: jf, code: "invalid_field", requestType: jr},
		{name: "roomId with a space", from: "fresh", msg: j("lob by", "x", nil), want: jf, code: "invalid_field", requestType: jr},
		{name: "roomId over 64 characters", from: "fresh", msg: j(strings.Repeat("r", 65), "x", nil), want: jf, code: "invalid_field", requestType: jr},
		{name: "missing playerId", from: "fresh", msg: j("lobby", absent, nil), want: jf, code: "missing_field", requestType: jr},
		{name: "non-string playerId", from: "fresh", msg: j("lobby", 7, nil), want: jf, code: "invalid_field", requestType: jr},
		{name: "empty playerId", from: "fresh", msg: j("lobby", "", nil), want: jf, code: "invalid_field", requestType: jr},
		{name: "playerId over 64 characters", from: "fresh", msg: j("lobby", strings.Repeat("p", 65), nil), want: jf, code: "invalid_field", requestType: jr},
		{name: "missing playerName", from: "fresh", msg: j("lobby", "x", fields{"playerName": absent}), want: jf, code: "missing_field", requestType: jr},
		{name: "non-string playerName", from: "fresh", msg: j("lobby", "x", fields{"playerName": []int{1}}), want: jf, code: "invalid_field", requestType: jr},
		{name: "empty playerName", from: "fresh", msg: j("lobby", "x", fields{"playerName": ""}), want: jf, code: "invalid_field", requestType: jr},
		{name: "playerName over 100 characters", from: "fresh", msg: j("lobby", "x", fields{"playerName": strings.Repeat("é", 101)}), want: jf, code: "invalid_field", requestType: jr},
		{name: "non-boolean spectator", from: "fresh", msg: j("lobby", "x", fields{"spectator": "yes"}), want: jf, code: "invalid_field", requestType: jr},
		{name: "a field error wins over an unknown room", from: "fresh", msg: j("nowhere", "x", fields{"playerName": absent}), want: jf, code: "missing_field", requestType: jr},
		{name: "unknown room", from: "fresh", msg: j("nowhere", "x", nil), want: jf, code: "room_not_found", requestType: jr},
		{name: "full room refuses a new player", from: "fresh", msg: j("full", "xavier", nil), want: jf, code: "room_full", requestType: jr},
		{name: "playing room refuses a new player", from: "fresh", msg: j("arena", "xavier", nil), want: jf, code: "game_in_progress", requestType: jr},
		{name: "room without spectators refuses a spectator", from: "fresh", msg: j("full", "xavier", fields{"spectator": true}), want: jf, code: "forbidden", requestType: jr},
		{name: "finished room refuses a spectator", from: "fresh", msg: j("done", "xavier", fields{"spectator": true}), want: jf, code: "invalid_state", requestType: jr},
		{name: "identified socket joining a full room", from: "dave", msg: j("full", "dave", nil), want: jf, code: "room_full", requestType: jr},
	})
}

func TestLeaveRoomFailures(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.run(t, []failureCase{
		{name: "missing roomId", from: "alice", msg: fields{"type": "leave_room", "playerId": "alice"}, want: "error", code: "missing_field", requestType: "leave_room"},
		{name: "bad roomId", from: "alice", msg: fields{"type": "leave_room", "roomId": "lobby/1", "playerId": "alice"}, want: "error", code: "invalid_field", requestType: "leave_room"},
		{name: "missing playerId", from: "alice", msg: fields{"type": "leave_room", "roomId": "lobby"}, want: "error", code: "missing_field", requestType: "leave_room"},
		{name: "non-string playerId", from: "alice", msg: fields{"type": "leave_room", "roomId": "lobby", "playerId": true}, want: "error", code: "invalid_field", requestType: "leave_room"},
		{name: "unknown room", from: "alice", msg: fields{"type": "leave_room", "roomId": "nowhere", "playerId": "alice"}, want: "error", code: "room_not_found", requestType: "leave_room"},
		{name: "room the socket never joined", from: "alice", msg: fields{"type": "leave_room", "roomId": "arena", "playerId": "alice"}, want: "error", code: "not_in_room", requestType: "leave_room"},
	})
}

func TestStartGameFailures(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const sf, sg = "start_game_failed", "start_game"
	fx.run(t, []failureCase{
		{name: "missing roomId", from: "alice", msg: fields{"type": sg, "playerId": "alice"}, want: sf, code: "missing_field", requestType: sg},
		{name: "non-string roomId", from: "alice", msg: fields{"type": sg, "roomId": 1, "playerId": "alice"}, want: sf, code: "invalid_field", requestType: sg},
		{name: "missing playerId", from: "alice", msg: fields{"type": sg, "roomId": "lobby"}, want: sf, code: "missing_field", requestType: sg},
		{name: "non-string playerId", from: "alice", msg: fields{"type": sg, "roomId": "lobby", "playerId": 1}, want: sf, code: "invalid_field", requestType: sg},
		{name: "unknown room", from: "alice", msg: fields{"type": sg, "roomId": "nowhere", "playerId": "alice"}, want: sf, code: "room_not_found", requestType: sg},
		{name: "one player is not enough", from: "alice", msg: fields{"type": sg, "roomId": "solo", "playerId": "alice"}, want: sf, code: "not_enough_players", requestType: sg},
		{name: "playing room is game_in_progress", from: "erin", msg: fields{"type": sg, "roomId": "arena", "playerId": "erin"}, want: sf, code: "game_in_progress", requestType: sg},
		{name: "finished room cannot restart", from: "gina", msg: fields{"type": sg, "roomId": "done", "playerId": "gina"}, want: sf, code: "invalid_state", requestType: sg},
	})
}

func TestUpdateScoreFailures(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const us = "update_score"
	score := func(v any) map[string]any {
		return fields{"type": us, "roomId": "arena", "playerId": "dave", "score": v}
	}
	fx.run(t, []failureCase{
		{name: "missing roomId", from: "dave", msg: fields{"type": us, "playerId": "dave", "score": 1}, want: "error", code: "missing_field", requestType: us},
		{name: "missing playerId", from: "dave", msg: fields{"type": us, "roomId": "arena", "score": 1}, want: "error", code: "missing_field", requestType: us},
		{name: "missing score", from: "dave", msg: fields{"type": us, "roomId": "arena", "playerId": "dave"}, want: "error", code: "missing_field", requestType: us},
		{name: "null score is missing", from: "dave", msg: score(nil), want: "error", code: "missing_field", requestType: us},
		{name: "string score", from: "dave", msg: score("10"), want: "error", code: "invalid_field", requestType: us},
		{name: "boolean score", from: "dave", msg: score(true), want: "error", code: "invalid_field", requestType: us},
		{name: "object score", from: "dave", msg: score(fields{"n": 1}), want: "error", code: "invalid_field", requestType: us},
		{name: "non-finite score", from: "dave", raw: `{"type":"update_score","roomId":"arena","playerId":"dave","score":1e999}`, room: "arena", want: "error", code: "invalid_field", requestType: us},
		{name: "unknown room", from: "dave", msg: fields{"type": us, "roomId": "nowhere", "playerId": "dave", "score": 1}, want: "error", code: "room_not_found", requestType: us},
		{name: "waiting room is invalid_state", from: "alice", msg: fields{"type": us, "roomId": "lobby", "playerId": "alice", "score": 1}, want: "error", code: "invalid_state", requestType: us},
		{name: "finished room is invalid_state", from: "frank", msg: fields{"type": us, "roomId": "done", "playerId": "frank", "score": 1}, want: "error", code: "invalid_state", requestType: us},
	})
}

func TestGameActionFailures(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const ga = "game_action"
	act := func(extra fields) map[string]any {
		m := fields{"type": ga, "roomId": "arena", "playerId": "dave", "action": "move"}
		maps.Copy(m, extra)
		return m
	}
	big := map[string]any{"blob": strings.Repeat("x", 16<<10)}
	fx.run(t, []failureCase{
		{name: "missing roomId", from: "dave", msg: fields{"type": ga, "playerId": "dave", "action": "move"}, want: "error", code: "missing_field", requestType: ga},
		{name: "missing playerId", from: "dave", msg: fields{"type": ga, "roomId": "arena", "action": "move"}, want: "error", code: "missing_field", requestType: ga},
		{name: "missing action", from: "dave", msg: act(fields{"action": nil}), want: "error", code: "missing_field", requestType: ga},
		{name: "non-string action", from: "dave", msg: act(fields{"action": 5}), want: "error", code: "invalid_field", requestType: ga},
		{name: "empty action", from: "dave", msg: act(fields{"action": ""}), want: "error", code: "invalid_field", requestType: ga},
		{name: "action over 64 characters", from: "dave", msg: act(fields{"action": strings.Repeat("ä", 65)}), want: "error", code: "invalid_field", requestType: ga},
		{name: "data over 16 KiB", from: "dave", msg: act(fields{"data": big}), want: "error", code: "invalid_field", requestType: ga},
		{name: "unknown room", from: "dave", msg: fields{"type": ga, "roomId": "nowhere", "playerId": "dave", "action": "move"}, want: "error", code: "room_not_found", requestType: ga},
		{name: "waiting room is invalid_state", from: "alice", msg: fields{"type": ga, "roomId": "lobby", "playerId": "alice", "action": "move"}, want: "error", code: "invalid_state", requestType: ga},
		{name: "finished room is invalid_state", from: "frank", msg: fields{"type": ga, "roomId": "done", "playerId": "frank", "action": "end_turn"}, want: "error", code: "invalid_state", requestType: ga},
	})
}

func TestEndGameFailures(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	const eg = "end_game"
	fx.run(t, []failureCase{
		{name: "missing roomId", from: "dave", msg: fields{"type": eg, "playerId": "dave"}, want: "error", code: "missing_field", requestType: eg},
		{name: "missing playerId", from: "dave", msg: fields{"type": eg, "roomId": "arena"}, want: "error", code: "missing_field", requestType: eg},
		{name: "non-string playerId", from: "dave", msg: fields{"type": eg, "roomId": "arena", "playerId": []string{"dave"}}, want: "error", code: "invalid_field", requestType: eg},
		{name: "unknown room", from: "dave", msg: fields{"type": eg, "roomId": "nowhere", "playerId": "dave"}, want: "error", code: "room_not_found", requestType: eg},
		{name: "waiting room is invalid_state", from: "alice", msg: fields{"type": eg, "roomId": "lobby", "playerId": "alice"}, want: "error", code: "invalid_state", requestType: eg},
		{name: "finished room is invalid_state", from: "frank", msg: fields{"type": eg, "roomId": "done", "playerId": "frank"}, want: "error", code: "invalid_state", requestType: eg},
	})
}

// failureOf is the failure frame type and requestType of each message.
func failureOf(typ string) string {
	switch typ {
	case "join_room":
		return "join_failed"
	case "start_game":
		return "start_game_failed"
	}
	return "error"
}

// everyMessage builds one valid-looking frame of each room message type.
func everyMessage(roomID, playerID string) []map[string]any {
	out := []map[string]any{}
	for _, typ := range []string{"join_room", "leave_room", "start_game", "update_score", "game_action", "end_game"} {
		m := fields{"type": typ, "roomId": roomID, "playerId": playerID}
		switch typ {
		case "join_room":
			m["playerName"] = nameOf(playerID)
		case "update_score":
			m["score"] = 99
		case "game_action":
			m["action"] = "end_turn"
		}
		out = append(out, m)
	}
	return out
}

// TestSpoofedPlayerIDIsForbidden: a socket speaks only for the player its
// first join_room fixed, in its rooms and in any other.
func TestSpoofedPlayerIDIsForbidden(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	var cases []failureCase
	for _, target := range []struct{ room, as string }{{"arena", "erin"}, {"arena", "mallory"}, {"lobby", "alice"}} {
		for _, m := range everyMessage(target.room, target.as) {
			typ := m["type"].(string)
			cases = append(cases, failureCase{
				name: fmt.Sprintf("dave cannot %s in %s as %s", typ, target.room, target.as),
				from: "dave", msg: m, want: failureOf(typ), code: "forbidden", requestType: typ,
			})
		}
	}
	fx.run(t, cases)
}

// TestSpectatorCannotPlay: spectators may not start, score, act or end.
func TestSpectatorCannotPlay(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	var cases []failureCase
	for _, room := range []string{"lobby", "arena"} {
		for _, m := range everyMessage(room, "carol")[2:] {
			typ := m["type"].(string)
			cases = append(cases, failureCase{
				name: fmt.Sprintf("spectator cannot %s in %s room", typ, room),
				from: "carol", msg: m, want: failureOf(typ), code: "forbidden", requestType: typ,
			})
		}
	}
	fx.run(t, cases)
}

// TestActingBeforeJoiningIsNotInRoom: a socket must join a room (even as a
// player of it) before it acts there.
func TestActingBeforeJoiningIsNotInRoom(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	var cases []failureCase
	for _, who := range []struct{ from, as string }{{"fresh", "dave"}, {"fresh", "xavier"}, {"alice", "alice"}} {
		for _, m := range everyMessage("arena", who.as)[1:] {
			typ := m["type"].(string)
			cases = append(cases, failureCase{
				name: fmt.Sprintf("%s socket cannot %s as %s before joining", who.from, typ, who.as),
				from: who.from, msg: m, want: failureOf(typ), code: "not_in_room", requestType: typ,
			})
		}
	}
	fx.run(t, cases)
}

// TestFailurePrecedence: missing/invalid field, then room_not_found, then
// forbidden, then not_in_room, then the state codes.
func TestFailurePrecedence(t *testing.T) {
	t.Parallel()
	fx := newFixture(t)
	fx.run(t, []failureCase{
		{name: "invalid field beats unknown room", from: "dave", msg: fields{"type": "update_score", "roomId": "nowhere", "playerId": "erin", "score": "x"}, want: "error", code: "invalid_field", requestType: "update_score"},
		{name: "unknown room beats forbidden", from: "dave", msg: fields{"type": "end_game", "roomId": "nowhere", "playerId": "erin"}, want: "error", code: "room_not_found", requestType: "end_game"},
		{name: "unknown room beats forbidden on join", from: "alice", msg: fields{"type": "join_room", "roomId": "nowhere", "playerId": "mallory", "playerName": "M"}, want: "join_failed", code: "room_not_found", requestType: "join_room"},
		{name: "forbidden beats not_in_room", from: "alice", msg: fields{"type": "start_game", "roomId": "arena", "playerId": "dave"}, want: "start_game_failed", code: "forbidden", requestType: "start_game"},
		{name: "forbidden beats room_full", from: "alice", msg: fields{"type": "join_room", "roomId": "full", "playerId": "mallory", "playerName": "M"}, want: "join_failed", code: "forbidden", requestType: "join_room"},
		{name: "spectator forbidden beats invalid_state", from: "carol", msg: fields{"type": "end_game", "roomId": "lobby", "playerId": "carol"}, want: "error", code: "forbidden", requestType: "end_game"},
		{name: "not_in_room beats invalid_state", from: "dave", msg: fields{"type": "end_game", "roomId": "done", "playerId": "dave"}, want: "error", code: "not_in_room", requestType: "end_game"},
		{name: "room_full beats game_in_progress", from: "fresh", msg: fields{"type": "join_room", "roomId": "done", "playerId": "x", "playerName": "X"}, want: "join_failed", code: "room_full", requestType: "join_room"},
	})
}

// TestRoomLimit: rooms beyond MaxRooms are refused with limit_exceeded
// (429), whatever their names; the rooms made before stay served.
func TestRoomLimit(t *testing.T) {
	s := startWith(t, runtime.Options{}, roommanager.Options{MaxRooms: 2})
	for _, id := range []string{"a", "b"} {
		createRoom(t, s, map[string]any{"roomId": id, "name": id, "gameType": "cognitive"})
	}
	code, f := s.Do("POST", api+"/rooms", map[string]any{"roomId": "c", "name": "c", "gameType": "cognitive"})
	if code != 429 || f.Str("code") != "limit_exceeded" {
		t.Fatalf("a third room: %d %v, want 429 limit_exceeded", code, f)
	}
	if code, f := s.Do("POST", api+"/rooms", map[string]any{"roomId": "a", "name": "a", "gameType": "cognitive"}); code != 409 {
		t.Fatalf("an existing room at the limit: %d %v, want 409 room_exists", code, f)
	}
	getRoom(t, s, "b")
}
