package roommanager_test

import (
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/runtime"
)

// TestCreateRoom: POST /rooms applies the defaults and merges partial
// settings over them.
func TestCreateRoom(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	for _, tc := range []struct {
		name string
		body fields
		want fields
	}{
		{
			name: "defaults",
			body: fields{"roomId": "a", "name": "A", "gameType": "cognitive"},
			want: fields{"id": "a", "name": "A", "gameType": "cognitive", "maxPlayers": 4, "status": "waiting",
				"currentPlayers": []string{}, "connected": []string{}, "startedAt": absent, "endedAt": absent,
				"settings": fields{"difficulty": "medium", "duration": 420, "maxRounds": 10, "allowSpectators": true}},
		},
		{
			name: "id is an alias of roomId",
			body: fields{"id": "b", "name": "B", "gameType": "social", "maxPlayers": 100},
			want: fields{"id": "b", "maxPlayers": 100},
		},
		{
			name: "roomId and id may both be given if equal",
			body: fields{"roomId": "b2", "id": "b2", "name": "B2", "gameType": "social"},
			want: fields{"id": "b2"},
		},
		{
			name: "partial settings merge over the defaults",
			body: fields{"roomId": "c", "name": "C", "gameType": "competitive", "maxPlayers": 2, "settings": fields{"difficulty": "hard", "maxRounds": 1000, "allowSpectators": false}},
			want: fields{"maxPlayers": 2, "settings": fields{"difficulty": "hard", "duration": 420, "maxRounds": 1000, "allowSpectators": false}},
		},
		{
			name: "whole-number floats and null settings are accepted",
			body: fields{"roomId": "d", "name": strings.Repeat("名", 100), "gameType": "social", "maxPlayers": 3.0, "settings": fields{"duration": 86400.0, "difficulty": nil}},
			want: fields{"maxPlayers": 3, "settings": fields{"difficulty": "medium", "duration": 86400, "maxRounds": 10, "allowSpectators": true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Add(-time.Second)
			room := createRoom(t, s, tc.body)
			want(t, room, tc.want)
			if created := parseTime(t, room["createdAt"]); created.Before(before) || created.After(time.Now()) {
				t.Fatalf("createdAt %v is not now", created)
			}
			got, _ := getRoom(t, s, room.Str("id"))
			if jsonOf(t, got) != jsonOf(t, room) {
				t.Fatalf("GET %v\nPOST answered %v", got, room)
			}
		})
	}
}

// TestCreateRoomFailures: bad bodies get 400 (413 beyond 64 KiB, 409 for a
// taken id) with {code, message} and create nothing.
func TestCreateRoomFailures(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "taken", "name": "Taken", "gameType": "social"})
	ok := func(extra fields) fields {
		b := fields{"roomId": "new", "name": "New", "gameType": "social"}
		for k, v := range extra {
			if v == absent {
				delete(b, k)
			} else {
				b[k] = v
			}
		}
		return b
	}
	settings := func(k string, v any) fields { return ok(fields{"settings": fields{k: v}}) }
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"invalid JSON", []byte(`{"roomId":`), 400, "invalid_json"},
		{"JSON array", []byte(`[]`), 400, "invalid_json"},
		{"empty body", []byte(``), 400, "invalid_json"},
		{"body over 64 KiB", ok(fields{"pad": strings.Repeat("x", 64<<10)}), 413, "too_large"},
		{"missing roomId", ok(fields{"roomId": absent}), 400, "missing_field"},
		{"non-string roomId", ok(fields{"roomId": 5}), 400, "invalid_field"},
		{"bad roomId", ok(fields{"roomId": "no spaces"}), 400, "invalid_field"},
		{"bad id alias", ok(fields{"roomId": absent, "id": strings.Repeat("i", 65)}), 400, "invalid_field"},
		{"roomId and id differ", ok(fields{"id": "other"}), 400, "invalid_field"},
		{"malformed body beats a taken id", ok(fields{"roomId": "taken", "name": ""}), 400, "invalid_field"},
		{"missing name", ok(fields{"name": absent}), 400, "missing_field"},
		{"empty name", ok(fields{"name": ""}), 400, "invalid_field"},
		{"name over 100 characters", ok(fields{"name": strings.Repeat("n", 101)}), 400, "invalid_field"},
		{"missing gameType", ok(fields{"gameType": absent}), 400, "missing_field"},
		{"unknown gameType", ok(fields{"gameType": "chess"}), 400, "invalid_field"},
		{"maxPlayers below 2", ok(fields{"maxPlayers": 1}), 400, "invalid_field"},
		{"maxPlayers above 100", ok(fields{"maxPlayers": 101}), 400, "invalid_field"},
		{"fractional maxPlayers", ok(fields{"maxPlayers": 2.5}), 400, "invalid_field"},
		{"string maxPlayers", ok(fields{"maxPlayers": "4"}), 400, "invalid_field"},
		{"settings not an object", ok(fields{"settings": []int{}}), 400, "invalid_field"},
		{"unknown difficulty", settings("difficulty", "brutal"), 400, "invalid_field"},
		{"duration 0", settings("duration", 0), 400, "invalid_field"},
		{"duration over a day", settings("duration", 86401), 400, "invalid_field"},
		{"fractional duration", settings("duration", 1.5), 400, "invalid_field"},
		{"maxRounds 0", settings("maxRounds", 0), 400, "invalid_field"},
		{"maxRounds over 1000", settings("maxRounds", 1001), 400, "invalid_field"},
		{"non-boolean allowSpectators", settings("allowSpectators", "yes"), 400, "invalid_field"},
		{"taken id", ok(fields{"roomId": "taken"}), 409, "room_exists"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, before := s.Do("GET", api+"/rooms", nil)
			code, f := s.Do("POST", api+"/rooms", tc.body)
			if code != tc.status || f.Str("code") != tc.code || f.Str("message") == "" {
				t.Fatalf("got %d %v, want %d %s", code, f, tc.status, tc.code)
			}
			if _, after := s.Do("GET", api+"/rooms", nil); jsonOf(t, after) != jsonOf(t, before) {
				t.Fatalf("rooms changed: %v", after)
			}
		})
	}
}

// TestListRoomsOldestFirst: GET /rooms lists in creation order, not id
// order, and after a restart too.
func TestListRoomsOldestFirst(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	order := []string{"zeta", "alpha", "mid", "alpha2"}
	for _, id := range order {
		createRoom(t, s, fields{"roomId": id, "name": id, "gameType": "social"})
	}
	check := func() {
		t.Helper()
		code, f := s.Do("GET", api+"/rooms", nil)
		if code != 200 {
			t.Fatalf("GET /rooms: %d %v", code, f)
		}
		var got []string
		for _, r := range f.List("rooms") {
			got = append(got, r.(map[string]any)["id"].(string))
		}
		if strings.Join(got, ",") != strings.Join(order, ",") {
			t.Fatalf("rooms %v, want %v", got, order)
		}
	}
	check()
	s.Restart()
	createRoom(t, s, fields{"roomId": "after", "name": "After", "gameType": "social"})
	order = append(order, "after")
	check()
}

// TestHTTPRoutes: unknown paths, rooms and methods.
func TestHTTPRoutes(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "r", "name": "R", "gameType": "social"})
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/rooms/nope", 404, "room_not_found"},
		{"GET", "/rooms/nope/", 404, "room_not_found"},
		{"GET", "/rooms/bad%20id", 400, "invalid_field"},
		{"GET", "/rooms/r/extra", 404, "not_found"},
		{"GET", "/", 404, "not_found"},
		{"GET", "/lobby", 404, "not_found"},
		{"DELETE", "/rooms", 405, "method_not_allowed"},
		{"PUT", "/rooms/r", 405, "method_not_allowed"},
		{"POST", "/websocket", 405, "method_not_allowed"},
		{"GET", "/websocket", 426, "invalid_field"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			code, f := s.Do(tc.method, api+tc.path, nil)
			if code != tc.status || f.Str("code") != tc.code || f.Str("message") == "" {
				t.Fatalf("got %d %v, want %d %s", code, f, tc.status, tc.code)
			}
		})
	}
	code, f := s.Do("GET", api+"/rooms/r/", nil)
	if code != 200 {
		t.Fatalf("GET /rooms/r/: %d %v", code, f)
	}
	want(t, f.Obj("gameState"), fields{"roomId": "r", "currentTurn": 0, "players": []any{}, "gameData": fields{"actions": []any{}}})
	if code, f := s.Do("GET", api+"/rooms/", nil); code != 200 || len(f.List("rooms")) != 1 {
		t.Fatalf("GET /rooms/: %d %v", code, f)
	}
}
