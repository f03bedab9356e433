package poll_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/holocron-run/holocron/docs/example/poll"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// region: test-start

// start runs Polls behind the route /polls/{name}/ on a real runtime over
// Pebble in a temporary directory, with a clock the test moves by hand.
func start(t *testing.T, ro runtime.Options) (*runtimetest.Server, *runtimetest.Clock) {
	t.Helper()
	clock := runtimetest.NewClock(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	s := runtimetest.Start(t, runtimetest.Options{
		Clock:    clock,
		Runtime:  ro,
		Register: func(r *runtime.Registry) { r.Register(poll.ClassName, poll.New) },
		Routes:   []gateway.Route{{Prefix: "/polls/", Class: poll.ClassName}},
	})
	return s, clock
}

// endregion

// create makes poll name with the options "pizza" and "sushi", closing in
// an hour, and fails the test unless it got 201.
func create(t *testing.T, s *runtimetest.Server, name string) runtimetest.Frame {
	t.Helper()
	code, f := s.Do(http.MethodPut, "/polls/"+name, map[string]any{
		"question": "Lunch?", "options": []string{"pizza", "sushi"}, "durationSeconds": 3600,
	})
	if code != http.StatusCreated {
		t.Fatalf("create %s: %d %v", name, code, f)
	}
	return f
}

// vote votes over HTTP and fails the test unless it got 200.
func vote(t *testing.T, s *runtimetest.Server, name, voter, option string) runtimetest.Frame {
	t.Helper()
	code, f := s.Do(http.MethodPost, "/polls/"+name+"/votes", map[string]any{"voter": voter, "option": option})
	if code != http.StatusOK {
		t.Fatalf("%s votes %s: %d %v", voter, option, code, f)
	}
	return f
}

// votes returns the votes of each option in a Snapshot.
func votes(snap runtimetest.Frame) map[string]float64 {
	out := map[string]float64{}
	for k, v := range snap.Obj("votes") {
		n, _ := v.(float64)
		out[k] = n
	}
	return out
}

func wantVotes(t *testing.T, what string, snap runtimetest.Frame, pizza, sushi float64) {
	t.Helper()
	if got := votes(snap); got["pizza"] != pizza || got["sushi"] != sushi || len(got) != 2 {
		t.Fatalf("%s: votes %v, want pizza %v, sushi %v", what, got, pizza, sushi)
	}
}

func TestCreatedPollStartsEmptyAndCannotBeCreatedTwice(t *testing.T) {
	s, _ := start(t, runtime.Options{})
	snap := create(t, s, "lunch")
	wantVotes(t, "new poll", snap, 0, 0)
	if snap["closed"] != false || snap.Str("closesAt") != "2026-01-01T13:00:00Z" {
		t.Fatalf("new poll: %v, want open, closing at 13:00", snap)
	}
	code, f := s.Do(http.MethodPut, "/polls/lunch", map[string]any{
		"question": "Again?", "options": []string{"a", "b"}, "durationSeconds": 60,
	})
	if code != http.StatusConflict || f.Str("code") != "poll_exists" {
		t.Fatalf("second create: %d %v, want 409 poll_exists", code, f)
	}
	if _, f := s.Do(http.MethodGet, "/polls/lunch", nil); f.Str("question") != "Lunch?" {
		t.Fatalf("second create changed the poll: %v", f)
	}
}

// region: test-live

func TestVotesAreTalliedAndBroadcastToWatchers(t *testing.T) {
	s, _ := start(t, runtime.Options{})
	create(t, s, "lunch")
	watcher := s.Dial("/polls/lunch/websocket")
	wantVotes(t, "on connect", watcher.Expect("tally").Obj("poll"), 0, 0)
	voter := s.Dial("/polls/lunch/websocket?voter=ann")
	voter.Expect("tally")

	vote(t, s, "lunch", "bob", "pizza") // over HTTP
	for _, c := range []*runtimetest.Conn{watcher, voter} {
		wantVotes(t, "after bob", c.Expect("tally").Obj("poll"), 1, 0)
	}
	voter.Send(map[string]any{"type": "vote", "option": "sushi"}) // over the socket
	if f := voter.Expect("voted"); f.Str("option") != "sushi" {
		t.Fatalf("voted: %v", f)
	}
	for _, c := range []*runtimetest.Conn{voter, watcher} {
		wantVotes(t, "after ann", c.Expect("tally").Obj("poll"), 1, 1)
	}
	// A watch-only socket may not vote, and its refusal reaches nobody else.
	watcher.Send(map[string]any{"type": "vote", "option": "pizza"})
	if f := watcher.Expect("error"); f.Str("code") != "not_a_voter" {
		t.Fatalf("watcher vote: %v", f)
	}
	voter.ExpectNothing()
}

// endregion

func TestChangingAVoteMovesIt(t *testing.T) {
	s, _ := start(t, runtime.Options{})
	create(t, s, "lunch")
	vote(t, s, "lunch", "ann", "pizza")
	wantVotes(t, "changed vote", vote(t, s, "lunch", "ann", "sushi"), 0, 1)
	// Voting again for the same option is a harmless retry.
	wantVotes(t, "repeated vote", vote(t, s, "lunch", "ann", "sushi"), 0, 1)
	wantVotes(t, "second voter", vote(t, s, "lunch", "bob", "sushi"), 0, 2)
}

func TestBadRequestsAreRefusedAndChangeNothing(t *testing.T) {
	s, _ := start(t, runtime.Options{})
	create(t, s, "lunch")
	vote(t, s, "lunch", "ann", "pizza")
	tests := []struct {
		name     string
		method   string
		path     string
		body     any
		wantCode int
		wantErr  string
	}{
		{"unknown option", "POST", "/polls/lunch/votes", map[string]any{"voter": "bob", "option": "tacos"}, 400, "invalid_option"},
		{"no voter", "POST", "/polls/lunch/votes", map[string]any{"option": "pizza"}, 400, "invalid_voter"},
		{"body not JSON", "POST", "/polls/lunch/votes", []byte("pizza please"), 400, "invalid_json"},
		{"unknown field", "POST", "/polls/lunch/votes", map[string]any{"voter": "bob", "option": "pizza", "weight": 10}, 400, "invalid_json"},
		{"vote in missing poll", "POST", "/polls/nope/votes", map[string]any{"voter": "bob", "option": "pizza"}, 404, "not_found"},
		{"get missing poll", "GET", "/polls/nope", nil, 404, "not_found"},
		{"watch missing poll", "GET", "/polls/nope/websocket", nil, 404, "not_found"},
		{"websocket without upgrade", "GET", "/polls/lunch/websocket", nil, 426, "websocket_required"},
		{"one option", "PUT", "/polls/solo", map[string]any{"question": "?", "options": []string{"a"}, "durationSeconds": 60}, 400, "invalid_options"},
		{"same option twice", "PUT", "/polls/twice", map[string]any{"question": "?", "options": []string{"a", "a"}, "durationSeconds": 60}, 400, "invalid_options"},
		{"no question", "PUT", "/polls/blank", map[string]any{"options": []string{"a", "b"}, "durationSeconds": 60}, 400, "invalid_question"},
		{"no duration", "PUT", "/polls/forever", map[string]any{"question": "?", "options": []string{"a", "b"}}, 400, "invalid_duration"},
		{"unknown route", "DELETE", "/polls/lunch", nil, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, f := s.Do(tc.method, tc.path, tc.body)
			if code != tc.wantCode || f.Str("code") != tc.wantErr {
				t.Fatalf("%d %v, want %d %s", code, f, tc.wantCode, tc.wantErr)
			}
		})
	}
	_, snap := s.Do(http.MethodGet, "/polls/lunch", nil)
	wantVotes(t, "after bad requests", snap, 1, 0)
	for _, name := range []string{"solo", "twice", "blank", "forever"} {
		if code, _ := s.Do(http.MethodGet, "/polls/"+name, nil); code != http.StatusNotFound {
			t.Errorf("refused poll %s was created anyway: %d", name, code)
		}
	}
}

func TestBadFramesGetErrorsAndKeepTheSocketOpen(t *testing.T) {
	s, _ := start(t, runtime.Options{MaxMessageSize: 1024})
	create(t, s, "lunch")
	c := s.Dial("/polls/lunch/websocket?voter=ann")
	c.Expect("tally")
	for _, tc := range []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"not JSON", []byte("hello"), "invalid_json"},
		{"unknown type", []byte(`{"type":"dance"}`), "unknown_type"},
		{"unknown option", []byte(`{"type":"vote","option":"tacos"}`), "invalid_option"},
		{"too large", make([]byte, 2048), "too_large"},
	} {
		c.SendRaw(1, tc.data)
		if f := c.Expect("error"); f.Str("code") != tc.wantErr {
			t.Fatalf("%s: %v, want error %s", tc.name, f, tc.wantErr)
		}
	}
	c.Send(map[string]any{"type": "vote", "option": "pizza"})
	c.Expect("voted")
	wantVotes(t, "after bad frames", c.Expect("tally").Obj("poll"), 1, 0)
}

// region: test-alarm

func TestPollClosesWhenItsAlarmFires(t *testing.T) {
	s, clock := start(t, runtime.Options{})
	create(t, s, "lunch") // closes in an hour
	watcher := s.Dial("/polls/lunch/websocket")
	watcher.Expect("tally")
	vote(t, s, "lunch", "ann", "pizza")
	watcher.Expect("tally")

	clock.Advance(59 * time.Minute)
	watcher.ExpectNothing() // not due yet: no "closed" frame
	clock.Advance(time.Minute)
	closed := watcher.Expect("closed").Obj("poll")
	if closed["closed"] != true {
		t.Fatalf("closed frame: %v", closed)
	}
	wantVotes(t, "final", closed, 1, 0)

	code, f := s.Do(http.MethodPost, "/polls/lunch/votes", map[string]any{"voter": "bob", "option": "sushi"})
	if code != http.StatusConflict || f.Str("code") != "poll_closed" {
		t.Fatalf("vote after close: %d %v, want 409 poll_closed", code, f)
	}
}

// endregion

// region: test-restart

func TestVotesAndAlarmSurviveRestart(t *testing.T) {
	s, clock := start(t, runtime.Options{})
	create(t, s, "lunch")
	vote(t, s, "lunch", "ann", "pizza")
	vote(t, s, "lunch", "bob", "sushi")
	s.Restart() // same data directory, new runtime: nothing lives in memory

	_, snap := s.Do(http.MethodGet, "/polls/lunch", nil)
	wantVotes(t, "after restart", snap, 1, 1)
	watcher := s.Dial("/polls/lunch/websocket")
	watcher.Expect("tally")
	clock.Advance(time.Hour) // the alarm was stored, not kept in memory
	watcher.Expect("closed")
}

// endregion

// region: test-hibernation

func TestSocketKeepsItsVoterWhileThePollHibernates(t *testing.T) {
	s, _ := start(t, runtime.Options{IdleTimeout: 10 * time.Millisecond})
	create(t, s, "lunch")
	c := s.Dial("/polls/lunch/websocket?voter=ann")
	c.Expect("tally")
	deadline := time.Now().Add(runtimetest.Timeout)
	for s.Runtime.LiveInstances() > 0 { // wait for the eviction
		if time.Now().After(deadline) {
			t.Fatal("poll instance never evicted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A new instance, built by New from storage, handles this frame; the
	// socket's attachment still says who it votes as.
	c.Send(map[string]any{"type": "vote", "option": "sushi"})
	c.Expect("voted")
	wantVotes(t, "after wake-up", c.Expect("tally").Obj("poll"), 0, 1)
	_, snap := s.Do(http.MethodGet, "/polls/lunch", nil)
	wantVotes(t, "stored", snap, 0, 1)
}

// endregion
