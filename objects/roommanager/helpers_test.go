package roommanager_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/objects/roommanager"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// api is where the gateway mounts the RoomManager object "main".
const api = "/api/room-manager"

// start runs a node serving RoomManager at api.
func start(t *testing.T, opts runtime.Options) *runtimetest.Server {
	t.Helper()
	return startWith(t, opts, roommanager.Options{})
}

// startWith is start with RoomManager options.
func startWith(t *testing.T, opts runtime.Options, rm roommanager.Options) *runtimetest.Server {
	t.Helper()
	return runtimetest.Start(t, runtimetest.Options{
		Register: func(r *runtime.Registry) {
			r.Register(roommanager.ClassName, roommanager.New(rm))
		},
		Routes:  []gateway.Route{{Prefix: api, Class: roommanager.ClassName, Name: "main"}},
		Runtime: opts,
	})
}

// startClock is start with the test kit's controllable clock.
func startClock(t *testing.T, clock *runtimetest.Clock) *runtimetest.Server {
	t.Helper()
	return runtimetest.Start(t, runtimetest.Options{
		Register: func(r *runtime.Registry) {
			r.Register(roommanager.ClassName, roommanager.New(roommanager.Options{}))
		},
		Routes: []gateway.Route{{Prefix: api, Class: roommanager.ClassName, Name: "main"}},
		Clock:  clock,
	})
}

// createRoom creates a room, failing the test unless it gets 201.
func createRoom(t *testing.T, s *runtimetest.Server, body map[string]any) runtimetest.Frame {
	t.Helper()
	code, f := s.Do("POST", api+"/rooms", body)
	if code != 201 {
		t.Fatalf("create room %v: %d %v", body, code, f)
	}
	return f
}

// getRoom returns GET /rooms/{id}'s room and gameState.
func getRoom(t *testing.T, s *runtimetest.Server, id string) (room, gameState runtimetest.Frame) {
	t.Helper()
	code, f := s.Do("GET", api+"/rooms/"+id, nil)
	if code != 200 {
		t.Fatalf("GET room %s: %d %v", id, code, f)
	}
	return f.Obj("room"), f.Obj("gameState")
}

// waitRoom polls GET /rooms/{id} until ok accepts it.
func waitRoom(t *testing.T, s *runtimetest.Server, id string, what string, ok func(room, gameState runtimetest.Frame) bool) (room, gameState runtimetest.Frame) {
	t.Helper()
	deadline := time.Now().Add(runtimetest.Timeout)
	for {
		room, gs := getRoom(t, s, id)
		if ok(room, gs) {
			return room, gs
		}
		if time.Now().After(deadline) {
			t.Fatalf("room %s: %s never happened; room %v", id, what, room)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func dial(s *runtimetest.Server) *runtimetest.Conn { return s.Dial(api + "/websocket") }

// nameOf is the playerName tests use for playerID.
func nameOf(playerID string) string { return strings.ToUpper(playerID[:1]) + playerID[1:] }

// join sends join_room and returns room_joined; it reads nothing else.
func join(t *testing.T, c *runtimetest.Conn, roomID, playerID string, spectator bool) runtimetest.Frame {
	t.Helper()
	msg := map[string]any{"type": "join_room", "roomId": roomID, "playerId": playerID, "playerName": nameOf(playerID)}
	if spectator {
		msg["spectator"] = true
	}
	c.Send(msg)
	return c.Expect("room_joined")
}

// joinNew dials a socket for a new player of roomID and joins; the new
// player and everyone in others see player_joined.
func joinNew(t *testing.T, s *runtimetest.Server, roomID, playerID string, others ...*runtimetest.Conn) *runtimetest.Conn {
	t.Helper()
	c := dial(s)
	join(t, c, roomID, playerID, false)
	for _, o := range append([]*runtimetest.Conn{c}, others...) {
		want(t, o.Expect("player_joined"), fields{"roomId": roomID, "playerId": playerID, "playerName": nameOf(playerID)})
	}
	return c
}

// send sends a room message of typ from playerID; extra adds fields.
func send(c *runtimetest.Conn, typ, roomID, playerID string, extra fields) {
	msg := map[string]any{"type": typ, "roomId": roomID, "playerId": playerID}
	for k, v := range extra {
		msg[k] = v
	}
	c.Send(msg)
}

// startGame starts roomID as playerID on c and returns game_started as
// each of the room's sockets (c first) sees it.
func startGame(t *testing.T, c *runtimetest.Conn, roomID, playerID string, others ...*runtimetest.Conn) runtimetest.Frame {
	t.Helper()
	send(c, "start_game", roomID, playerID, nil)
	want(t, c.Expect("game_started_success"), fields{"roomId": roomID})
	started := c.Expect("game_started")
	for _, o := range others {
		want(t, o.Expect("game_started"), fields{"roomId": roomID, "startedAt": started["startedAt"], "endsAt": started["endsAt"]})
	}
	return started
}

// fields are expected frame fields; absent means "not in the frame".
type fields map[string]any

type absentField struct{}

var absent absentField

// want checks that f has every field in w, compared as JSON.
func want(t *testing.T, f runtimetest.Frame, w fields) {
	t.Helper()
	for k, v := range w {
		got, present := f[k]
		if v == absent {
			if present {
				t.Fatalf("frame %v: field %s = %v, want it absent", f, k, got)
			}
			continue
		}
		if !present {
			t.Fatalf("frame %v: field %s missing, want %v", f, k, v)
		}
		if g, e := jsonOf(t, got), jsonOf(t, v); g != e {
			t.Fatalf("frame type %q: field %s = %s, want %s\nframe: %v", f.Type(), k, g, e, f)
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return string(raw)
}

// ids returns the playerId of each PlayerState in a list.
func ids(list []any) []string {
	out := []string{}
	for _, p := range list {
		out = append(out, runtimetest.Frame(p.(map[string]any)).Str("playerId"))
	}
	return out
}

// parseTime parses a protocol timestamp.
func parseTime(t *testing.T, s any) time.Time {
	t.Helper()
	str, _ := s.(string)
	ts, err := time.Parse(time.RFC3339Nano, str)
	if err != nil {
		t.Fatalf("bad timestamp %v: %v", s, err)
	}
	return ts
}

// nothingMore asserts that no socket has a frame waiting.
func nothingMore(t *testing.T, conns ...*runtimetest.Conn) {
	t.Helper()
	for _, c := range conns {
		c.ExpectNothing()
	}
}
