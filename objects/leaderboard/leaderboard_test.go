package leaderboard_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/objects/leaderboard"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// start runs Leaderboards (route /api/leaderboards/{name}/) with a test clock.
func start(t *testing.T, opts leaderboard.Options) (*runtimetest.Server, *runtimetest.Clock) {
	t.Helper()
	clock := runtimetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := runtimetest.Start(t, runtimetest.Options{
		Clock: clock,
		Register: func(r *runtime.Registry) {
			r.Register(leaderboard.ClassName, leaderboard.New(opts))
		},
		Routes: []gateway.Route{{Prefix: "/api/leaderboards/", Class: leaderboard.ClassName}},
	})
	return s, clock
}

func submit(t *testing.T, s *runtimetest.Server, board, player string, score float64) runtimetest.Frame {
	t.Helper()
	code, f := s.Do("POST", "/api/leaderboards/"+board+"/scores", map[string]any{"playerId": player, "playerName": "P " + player, "score": score})
	if code != 200 {
		t.Fatalf("submit %s %v: %d %v", player, score, code, f)
	}
	return f
}

func topIDs(t *testing.T, s *runtimetest.Server, board string) []string {
	t.Helper()
	code, f := s.Do("GET", "/api/leaderboards/"+board+"/top?n=10", nil)
	if code != 200 {
		t.Fatalf("top: %d %v", code, f)
	}
	var ids []string
	for _, e := range f.Frames("entries") {
		ids = append(ids, e.Str("playerId"))
	}
	return ids
}

func TestScoresRanksAndTop(t *testing.T) {
	s, _ := start(t, leaderboard.Options{})
	submit(t, s, "b", "ann", 10)
	submit(t, s, "b", "bob", 30)
	submit(t, s, "b", "cat", -5)
	submit(t, s, "b", "dan", 20.5)
	// A lower score than a player's best changes nothing; a higher replaces it.
	if f := submit(t, s, "b", "bob", 1); f["score"] != 30.0 || f["rank"] != 1.0 {
		t.Fatalf("lower score for bob: %v, want his best 30 at rank 1", f)
	}
	if f := submit(t, s, "b", "ann", 40); f["rank"] != 1.0 {
		t.Fatalf("ann's new best: %v, want rank 1", f)
	}
	want := []string{"ann", "bob", "dan", "cat"}
	if got := topIDs(t, s, "b"); len(got) != 4 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Fatalf("top = %v, want %v", got, want)
	}
	for player, rank := range map[string]float64{"ann": 1, "bob": 2, "dan": 3, "cat": 4} {
		if code, f := s.Do("GET", "/api/leaderboards/b/rank/"+player, nil); code != 200 || f["rank"] != rank {
			t.Errorf("rank of %s: %d %v, want %v", player, code, f, rank)
		}
	}
	// Boards are separate objects.
	if got := topIDs(t, s, "other"); len(got) != 0 {
		t.Fatalf("another board has %v", got)
	}
	// Everything is durable.
	s.Restart()
	if got := topIDs(t, s, "b"); len(got) != 4 || got[0] != "ann" {
		t.Fatalf("after restart top = %v", got)
	}
}

func TestBadInput(t *testing.T) {
	s, _ := start(t, leaderboard.Options{})
	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		wantCode int
		wantErr  string
	}{
		{"no playerId", "POST", "/scores", map[string]any{"playerName": "x", "score": 1}, 400, "missing_field"},
		{"score not a number", "POST", "/scores", map[string]any{"playerId": "p", "playerName": "x", "score": "high"}, 400, "invalid_field"},
		{"no name", "POST", "/scores", map[string]any{"playerId": "p", "score": 1}, 400, "missing_field"},
		{"bad n", "GET", "/top?n=0", nil, 400, "invalid_field"},
		{"unknown player", "GET", "/rank/nobody", nil, 404, "not_found"},
		{"unknown season", "GET", "/seasons/7", nil, 404, "not_found"},
		{"season without duration", "POST", "/season", map[string]any{}, 400, "missing_field"},
		{"unknown route", "GET", "/nope", nil, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, f := s.Do(tc.method, "/api/leaderboards/b"+tc.path, tc.body)
			if code != tc.wantCode || f.Str("code") != tc.wantErr {
				t.Fatalf("%d %v, want %d %s", code, f, tc.wantCode, tc.wantErr)
			}
		})
	}
	// The board still works.
	submit(t, s, "b", "p", 3)
}

func TestLiveUpdatesAndSocketErrors(t *testing.T) {
	s, _ := start(t, leaderboard.Options{})
	c := s.Dial("/api/leaderboards/live/websocket")
	submit(t, s, "live", "ann", 5)
	if f := c.Expect("leaderboard_updated"); f.Obj("entry").Str("playerId") != "ann" || len(f.List("top")) != 1 {
		t.Fatalf("update: %v", f)
	}
	c.Send(map[string]any{"type": "submit_score", "playerId": "bob", "playerName": "Bob", "score": 9})
	if f := c.Expect("leaderboard_updated"); f.Obj("entry").Str("playerId") != "bob" || f.Obj("entry")["rank"] != 1.0 {
		t.Fatalf("update after socket submit: %v", f)
	}
	c.Expect("score_submitted")
	c.Send(map[string]any{"type": "get_top", "n": 1})
	if f := c.Expect("top"); len(f.List("entries")) != 1 || f.Frames("entries")[0].Str("playerId") != "bob" {
		t.Fatalf("top 1: %v", f)
	}
	c.Send(map[string]any{"type": "dance"})
	if f := c.Expect("error"); f.Str("code") != "unknown_type" {
		t.Fatalf("unknown type: %v", f)
	}
	c.SendRaw(1, []byte("not json"))
	if f := c.Expect("error"); f.Str("code") != "invalid_json" {
		t.Fatalf("bad json: %v", f)
	}
	c.Send(map[string]any{"type": "submit_score", "playerId": "bob", "playerName": "Bob", "score": "x"})
	if f := c.Expect("error"); f.Str("code") != "invalid_field" || f.Str("requestType") != "submit_score" {
		t.Fatalf("bad score: %v", f)
	}
	c.Sync() // the socket still works
}

func TestSeasonEndsByAlarm(t *testing.T) {
	s, clock := start(t, leaderboard.Options{SeasonLength: time.Hour})
	c := s.Dial("/api/leaderboards/s/websocket")
	submit(t, s, "s", "ann", 7)
	submit(t, s, "s", "bob", 3)
	c.Expect("leaderboard_updated")
	c.Expect("leaderboard_updated")
	clock.Advance(59 * time.Minute)
	c.ExpectNothing() // not yet
	clock.Advance(2 * time.Minute)
	ended := c.Expect("season_ended")
	if ended["season"] != 1.0 || len(ended.List("final")) != 2 || ended.Frames("final")[0].Str("playerId") != "ann" {
		t.Fatalf("season end: %v", ended)
	}
	if got := topIDs(t, s, "s"); len(got) != 0 {
		t.Fatalf("scores not reset: %v", got)
	}
	if code, f := s.Do("GET", "/api/leaderboards/s/seasons/1", nil); code != 200 || len(f.List("entries")) != 2 {
		t.Fatalf("archived season 1: %d %v", code, f)
	}
	// The next season runs on its own clock.
	submit(t, s, "s", "cat", 1)
	if code, f := s.Do("GET", "/api/leaderboards/s/top", nil); code != 200 || f["season"] != 2.0 {
		t.Fatalf("season 2: %d %v", code, f)
	}
}

// poster posts the game results in its request's body to the board named
// by the query, as an object would (a call), and answers the board's
// answer.
type poster struct{ state *runtime.State }

func (p *poster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req, _ := http.NewRequest(http.MethodPost, leaderboard.GameResultsPath, r.Body)
	resp, err := p.state.Namespace(leaderboard.ClassName).GetByName(r.URL.Query().Get("board")).Fetch(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// A game's results count once however often they are posted (a poster
// retries when it did not hear the answer): the second post is answered
// "not recorded" and changes nothing, not even for the live sockets.
func TestGameResultsAreRecordedOnce(t *testing.T) {
	clock := runtimetest.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := runtimetest.Start(t, runtimetest.Options{
		Clock: clock,
		Register: func(r *runtime.Registry) {
			r.Register(leaderboard.ClassName, leaderboard.New(leaderboard.Options{}))
			r.Register("Poster", func(st *runtime.State) (runtime.Object, error) { return &poster{state: st}, nil })
		},
		Routes: []gateway.Route{{Prefix: "/api/leaderboards/", Class: leaderboard.ClassName}},
	})
	live := s.Dial("/api/leaderboards/b/websocket")
	live.Send(map[string]any{"type": "ping"})
	live.Expect("pong")
	game := map[string]any{"game": "rm/g1/1", "scores": []map[string]any{
		{"playerId": "ann", "playerName": "Ann", "score": 10},
		{"playerId": "bob", "playerName": "Bob", "score": 20},
	}}
	for i, wantRecorded := range []bool{true, false, false} {
		code, f := s.Do("POST", "/objects/Poster/p?board=b", game)
		if code != 200 || f["recorded"] != wantRecorded {
			t.Fatalf("post %d: %d %v, want recorded=%v", i+1, code, f, wantRecorded)
		}
	}
	for range 2 {
		live.Expect("leaderboard_updated")
	}
	live.Send(map[string]any{"type": "ping"})
	live.Expect("pong") // nothing before it: the repeats changed nothing
	if code, f := s.Do("GET", "/api/leaderboards/b/games", nil); code != 200 || f["recorded"] != 1.0 {
		t.Fatalf("games recorded: %d %v, want 1", code, f)
	}
	// A score submitted later beats the game's only if higher.
	submit(t, s, "b", "ann", 5)
	if got := topIDs(t, s, "b"); strings.Join(got, ",") != "bob,ann" {
		t.Fatalf("top %v, want bob, ann", got)
	}
	for _, bad := range []map[string]any{
		{"game": "", "scores": []map[string]any{}},
		{"game": "x", "scores": []map[string]any{{"playerId": "", "playerName": "A", "score": 1}}},
	} {
		if code, f := s.Do("POST", "/objects/Poster/p?board=b", bad); code != 400 {
			t.Errorf("malformed results %v: %d %v, want 400", bad, code, f)
		}
	}
}
