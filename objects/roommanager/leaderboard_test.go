package roommanager_test

import (
	"strings"
	"testing"

	"github.com/holocron-run/holocron/objects/leaderboard"
	"github.com/holocron-run/holocron/objects/roommanager"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// A room whose settings name a leaderboard posts its game's final scores
// there when the game ends (a call from the manager to the board): the
// board's live sockets see them and its top lists them; a client cannot
// post results itself.
func TestFinishedGamePostsToItsLeaderboard(t *testing.T) {
	t.Parallel()
	s := runtimetest.Start(t, runtimetest.Options{
		Register: func(r *runtime.Registry) {
			r.Register(roommanager.ClassName, roommanager.New(roommanager.Options{}))
			r.Register(leaderboard.ClassName, leaderboard.New(leaderboard.Options{}))
		},
		Routes: []gateway.Route{
			{Prefix: api, Class: roommanager.ClassName, Name: "main"},
			{Prefix: "/api/leaderboards/", Class: leaderboard.ClassName},
		},
	})
	live := s.Dial("/api/leaderboards/weekly/websocket")
	live.Send(fields{"type": "get_top"})
	if got := live.Expect("top").List("entries"); len(got) != 0 {
		t.Fatalf("a new board's top: %v", got)
	}

	room := createRoom(t, s, fields{"roomId": "g1", "name": "Game", "gameType": "competitive", "maxPlayers": 2, "settings": fields{"leaderboard": "weekly"}})
	want(t, room.Obj("settings"), fields{"leaderboard": "weekly"})
	a := joinNew(t, s, "g1", "alice")
	b := joinNew(t, s, "g1", "bob", a)
	startGame(t, a, "g1", "alice", b)
	send(b, "update_score", "g1", "bob", fields{"score": 42.5})
	for _, c := range []*runtimetest.Conn{a, b} {
		c.Expect("score_updated")
	}
	send(a, "end_game", "g1", "alice", nil)
	for _, c := range []*runtimetest.Conn{a, b} {
		c.Expect("game_ended")
	}
	seen := map[string]float64{}
	for range 2 {
		e := live.Expect("leaderboard_updated").Obj("entry")
		seen[e.Str("playerId")] = e["score"].(float64)
	}
	if seen["alice"] != 0 || seen["bob"] != 42.5 || len(seen) != 2 {
		t.Fatalf("the board's live socket saw %v, want alice 0 and bob 42.5", seen)
	}
	code, top := s.Do("GET", "/api/leaderboards/weekly/top", nil)
	if code != 200 {
		t.Fatalf("top: %d %v", code, top)
	}
	entries := top.Frames("entries")
	if len(entries) != 2 || entries[0].Str("playerId") != "bob" || entries[0].Str("playerName") != "Bob" {
		t.Fatalf("top after the game: %v", entries)
	}

	waitRoom(t, s, "g1", "leaderboardPosted", func(room, _ runtimetest.Frame) bool { return room["leaderboardPosted"] == true })
	if code, f := s.Do("GET", "/api/leaderboards/weekly/games", nil); code != 200 || f["recorded"] != 1.0 {
		t.Fatalf("games recorded: %d %v, want 1", code, f)
	}

	// A client cannot post game results: only objects can.
	code, f := s.Do("POST", "/api/leaderboards/weekly/game-results", fields{"game": "forged", "scores": []fields{{"playerId": "eve", "playerName": "Eve", "score": 1e9}}})
	if code != 403 || f.Str("code") != "forbidden" {
		t.Fatalf("a client's game results: %d %v, want 403 forbidden", code, f)
	}
	nothingMore(t, live)
}

// settings.leaderboard must be a valid object name.
func TestRoomLeaderboardSettingIsValidated(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	for _, bad := range []any{"", 7, "a\x00b", strings.Repeat("x", gateway.MaxNameBytes+1)} {
		code, f := s.Do("POST", api+"/rooms", fields{"roomId": "r", "name": "R", "gameType": "competitive", "settings": fields{"leaderboard": bad}})
		if code != 400 || f.Str("code") != "invalid_field" {
			t.Errorf("settings.leaderboard %q: %d %v, want 400 invalid_field", bad, code, f)
		}
	}
}
