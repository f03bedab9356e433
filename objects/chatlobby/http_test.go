package chatlobby_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// TestCreateRoom: POST /rooms validates its body and answers 201 with the
// ChatRoom, or the {code, message} of the first failure.
func TestCreateRoom(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("taken", nil)
	for _, tc := range []struct {
		name string
		body any
		code int
		want string // error code
	}{
		{"roomId", map[string]any{"roomId": "a", "name": "A"}, 201, ""},
		{"id instead of roomId", map[string]any{"id": "b", "name": "B"}, 201, ""},
		{"roomId and id agreeing", map[string]any{"roomId": "b2", "id": "b2", "name": "B"}, 201, ""},
		{"all fields", map[string]any{"roomId": "c", "name": strings.Repeat("é", 100), "maxParticipants": 10000, "isPrivate": true, "allowedPlayers": []string{"x", "y", "x"}}, 201, ""},
		{"maxParticipants 1", map[string]any{"roomId": "d", "name": "D", "maxParticipants": 1}, 201, ""},
		{"existing room", map[string]any{"roomId": "taken", "name": "T"}, 409, "room_exists"},
		{"invalid JSON", []byte(`{"roomId":`), 400, "invalid_json"},
		{"JSON array", []byte(`[]`), 400, "invalid_json"},
		{"empty body", []byte(``), 400, "invalid_json"},
		{"body over 64 KiB", map[string]any{"roomId": "e", "name": "E", "pad": strings.Repeat("x", 64<<10)}, 413, "too_large"},
		{"missing roomId", map[string]any{"name": "E"}, 400, "missing_field"},
		{"numeric roomId", map[string]any{"roomId": 5, "name": "E"}, 400, "invalid_field"},
		{"bad roomId", map[string]any{"roomId": "e e", "name": "E"}, 400, "invalid_field"},
		{"roomId over 64 chars", map[string]any{"roomId": strings.Repeat("e", 65), "name": "E"}, 400, "invalid_field"},
		{"roomId and id differing", map[string]any{"roomId": "e", "id": "f", "name": "E"}, 400, "invalid_field"},
		{"missing name", map[string]any{"roomId": "e"}, 400, "missing_field"},
		{"empty name", map[string]any{"roomId": "e", "name": ""}, 400, "invalid_field"},
		{"name over 100 code points", map[string]any{"roomId": "e", "name": strings.Repeat("é", 101)}, 400, "invalid_field"},
		{"maxParticipants 0", map[string]any{"roomId": "e", "name": "E", "maxParticipants": 0}, 400, "invalid_field"},
		{"maxParticipants 10001", map[string]any{"roomId": "e", "name": "E", "maxParticipants": 10001}, 400, "invalid_field"},
		{"fractional maxParticipants", map[string]any{"roomId": "e", "name": "E", "maxParticipants": 2.5}, 400, "invalid_field"},
		{"string isPrivate", map[string]any{"roomId": "e", "name": "E", "isPrivate": "yes"}, 400, "invalid_field"},
		{"allowedPlayers on a public room", map[string]any{"roomId": "e", "name": "E", "allowedPlayers": []string{"x"}}, 400, "invalid_field"},
		{"allowedPlayers not an array", map[string]any{"roomId": "e", "name": "E", "isPrivate": true, "allowedPlayers": "x"}, 400, "invalid_field"},
		{"allowedPlayers empty", map[string]any{"roomId": "e", "name": "E", "isPrivate": true, "allowedPlayers": []string{}}, 400, "invalid_field"},
		{"allowedPlayers with an empty id", map[string]any{"roomId": "e", "name": "E", "isPrivate": true, "allowedPlayers": []string{""}}, 400, "invalid_field"},
		{"bad field wins over existing room", map[string]any{"roomId": "taken", "name": ""}, 400, "invalid_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, f := e.s.Do(http.MethodPost, "/api/lobby/rooms", tc.body)
			if code != tc.code || f.Str("code") != tc.want {
				t.Fatalf("got %d %v, want %d %q", code, f, tc.code, tc.want)
			}
			if tc.want != "" && f.Str("message") == "" {
				t.Fatalf("error without message: %v", f)
			}
			if code == 201 {
				if f.Str("createdAt") == "" || f.Str("lastActivity") != f.Str("createdAt") || f["participants"] == nil {
					t.Fatalf("created %v", f)
				}
				if _, leaked := f["allowedPlayers"]; leaked {
					t.Fatalf("allowedPlayers shown: %v", f)
				}
			}
		})
	}
	if r := e.room("a"); r["maxParticipants"] != float64(50) || r["isPrivate"] != false || len(r.List("participants")) != 0 {
		t.Fatalf("defaults: %v", r)
	}
	if r := e.room("c"); r["maxParticipants"] != float64(10000) || r["isPrivate"] != true {
		t.Fatalf("room c: %v", r)
	}
	if code, f := e.s.Do(http.MethodGet, "/api/lobby/rooms/e", nil); code != 404 || f.Str("code") != "room_not_found" {
		t.Fatalf("a refused room was created: %d %v", code, f)
	}
}

// TestListRoomsOldestFirst: GET /rooms lists public rooms in creation order
// with their live participants.
func TestListRoomsOldestFirst(t *testing.T) {
	e := start(t, chatlobby.Options{})
	for _, id := range []string{"zeta", "alpha", "mid"} {
		e.createRoom(id, nil)
	}
	e.createRoom("hidden", map[string]any{"isPrivate": true})
	c := e.dial()
	join(t, c, "alpha", "alice")
	code, f := e.s.Do(http.MethodGet, "/api/lobby/rooms", nil)
	if code != 200 {
		t.Fatalf("%d %v", code, f)
	}
	var got []string
	for _, r := range f.List("rooms") {
		room := runtimetest.Frame(r.(map[string]any))
		got = append(got, room.Str("id"))
		want := []string{}
		if room.Str("id") == "alpha" {
			want = []string{"alice"}
		}
		wantStrings(t, "participants of "+room.Str("id"), strs(room.List("participants")), want)
	}
	wantStrings(t, "rooms", got, []string{"zeta", "alpha", "mid"})

	empty := start(t, chatlobby.Options{})
	if _, f := empty.s.Do(http.MethodGet, "/api/lobby/rooms", nil); f["rooms"] == nil || len(f.List("rooms")) != 0 {
		t.Fatalf("empty lobby: %v, want rooms: []", f)
	}
}

// TestHTTPRoutes: unknown paths are 404 not_found, known paths with the
// wrong method 405 method_not_allowed, unknown rooms 404 room_not_found.
func TestHTTPRoutes(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	for _, tc := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/api/lobby/rooms/r", 200, ""},
		{"GET", "/api/lobby/rooms/r/", 200, ""},
		{"GET", "/api/lobby/rooms/", 200, ""},
		{"GET", "/api/lobby/rooms/r/messages", 200, ""},
		{"GET", "/api/lobby/rooms/nope", 404, "room_not_found"},
		{"GET", "/api/lobby/rooms/nope/messages", 404, "room_not_found"},
		{"GET", "/api/lobby/rooms/b%20d", 400, "invalid_field"},
		{"GET", "/api/lobby/rooms/r/messages?limit=0", 400, "invalid_field"},
		{"GET", "/api/lobby/rooms/r/messages?limit=1001", 400, "invalid_field"},
		{"GET", "/api/lobby/rooms/r/messages?limit=x", 400, "invalid_field"},
		{"GET", "/api/lobby/rooms/r/messages?before=1&after=2", 400, "invalid_field"},
		{"GET", "/api/lobby/rooms/nope/messages?limit=0", 400, "invalid_field"},
		{"GET", "/api/lobby", 404, "not_found"},
		{"GET", "/api/lobby/", 404, "not_found"},
		{"GET", "/api/lobby/nothing", 404, "not_found"},
		{"GET", "/api/lobby/rooms/r/other", 404, "not_found"},
		{"GET", "/api/lobby/rooms/r/messages/x", 404, "not_found"},
		{"DELETE", "/api/lobby/rooms", 405, "method_not_allowed"},
		{"PUT", "/api/lobby/rooms/r", 405, "method_not_allowed"},
		{"POST", "/api/lobby/rooms/r/messages", 405, "method_not_allowed"},
		{"POST", "/api/lobby/websocket", 405, "method_not_allowed"},
		{"GET", "/api/lobby/websocket", 426, "invalid_field"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, f := e.s.Do(tc.method, tc.path, nil)
			if code != tc.code || f.Str("code") != tc.want {
				t.Fatalf("got %d %v, want %d %q", code, f, tc.code, tc.want)
			}
		})
	}
}

// TestLobbiesAreSharded: /api/lobbies/{name}/ reaches lobby {name}, with its
// own rooms, history and presence; /api/lobby is lobby "main".
func TestLobbiesAreSharded(t *testing.T) {
	e := start(t, chatlobby.Options{})
	a := &env{t: t, s: e.s, base: "/api/lobbies/a"}
	b := &env{t: t, s: e.s, base: "/api/lobbies/b"}
	mainAlias := &env{t: t, s: e.s, base: "/api/lobbies/main"}

	a.createRoom("r", nil)
	if code, f := e.s.Do(http.MethodGet, "/api/lobbies/b/rooms/r", nil); code != 404 || f.Str("code") != "room_not_found" {
		t.Fatalf("lobby b sees lobby a's room: %d %v", code, f)
	}
	b.createRoom("r", map[string]any{"name": "B's r"}) // the same id is free in b
	e.createRoom("m", nil)
	if mainAlias.room("m").Str("id") != "m" {
		t.Fatal("/api/lobbies/main is not the main lobby")
	}

	ca := a.dial()
	join(t, ca, "r", "alice")
	cb := b.dial()
	join(t, cb, "r", "bob")
	say(ca, "r", "alice", "in a")
	ca.Expect("new_message")
	cb.ExpectNothing()
	wantStrings(t, "participants in a", strs(a.room("r").List("participants")), []string{"alice"})
	wantStrings(t, "participants in b", strs(b.room("r").List("participants")), []string{"bob"})
	wantStrings(t, "history in b", contents(b.history("r", "").List("messages")), []string{nameOf("bob") + " joined the room"})
	if b.room("r").Str("name") != "B's r" {
		t.Fatal("lobby b's room has the wrong name")
	}
	for _, l := range []*env{a, b} {
		if _, f := e.s.Do(http.MethodGet, l.base+"/rooms", nil); len(f.List("rooms")) != 1 {
			t.Fatalf("%s lists %v", l.base, f)
		}
	}
}

// TestGetRoomShowsLivePresence: GET /rooms/{id} shows who is connected now.
func TestGetRoomShowsLivePresence(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	c := e.dial()
	join(t, c, "r", "alice")
	wantStrings(t, "participants", strs(e.room("r").List("participants")), []string{"alice"})
	_ = c.WS.Close()
	// The close is handled asynchronously: wait for the leave message.
	eventually(t, "alice's leave message", func() bool { return len(e.history("r", "").List("messages")) == 2 })
	wantStrings(t, "participants", strs(e.room("r").List("participants")), nil)
}
