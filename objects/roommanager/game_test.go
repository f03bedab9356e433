package roommanager_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/objects/roommanager"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// TestFullGameFlow plays one game from creation to end_game, checking each
// frame, who gets it, and requestId echoes.
func TestFullGameFlow(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "g1", "name": "Game one", "gameType": "competitive", "maxPlayers": 2})

	a := dial(s)
	a.Send(fields{"type": "join_room", "roomId": "g1", "playerId": "alice", "playerName": "Alice", "requestId": "j1"})
	joined := a.Expect("room_joined")
	want(t, joined, fields{"requestId": "j1", "spectator": false})
	want(t, joined.Obj("room"), fields{"id": "g1", "status": "waiting", "currentPlayers": []string{"alice"}, "connected": []string{"alice"}})
	want(t, joined.Obj("gameState"), fields{"roomId": "g1", "currentTurn": 0})
	want(t, a.Expect("player_joined"), fields{"roomId": "g1", "playerId": "alice", "playerName": "Alice", "requestId": absent})

	b := joinNew(t, s, "g1", "bob", a)

	// A spectator fits although the room is at maxPlayers, and is announced
	// to no one.
	sp := dial(s)
	joined = join(t, sp, "g1", "sam", true)
	want(t, joined, fields{"spectator": true})
	want(t, joined.Obj("room"), fields{"currentPlayers": []string{"alice", "bob"}, "connected": []string{"alice", "bob"}})
	nothingMore(t, a, b, sp)

	a.Send(fields{"type": "start_game", "roomId": "g1", "playerId": "alice", "requestId": "s1"})
	want(t, a.Expect("game_started_success"), fields{"roomId": "g1", "requestId": "s1"})
	started := a.Expect("game_started")
	for _, c := range []*runtimetest.Conn{b, sp} {
		want(t, c.Expect("game_started"), fields{"startedAt": started["startedAt"], "endsAt": started["endsAt"]})
	}
	if d := parseTime(t, started["endsAt"]).Sub(parseTime(t, started["startedAt"])); d != 420*time.Second {
		t.Fatalf("endsAt - startedAt = %v, want the default 420s", d)
	}

	b.Send(fields{"type": "update_score", "roomId": "g1", "playerId": "bob", "score": 42.5, "requestId": "u1"})
	want(t, b.Expect("score_updated"), fields{"roomId": "g1", "playerId": "bob", "score": 42.5, "requestId": "u1"})
	for _, c := range []*runtimetest.Conn{a, sp} {
		f := c.Expect("score_updated")
		want(t, f, fields{"playerId": "bob", "score": 42.5, "requestId": absent})
		if got := ids(f.List("players")); fmt.Sprint(got) != "[alice bob]" {
			t.Fatalf("players %v", got)
		}
	}
	send(a, "update_score", "g1", "alice", fields{"score": -3})
	for _, c := range []*runtimetest.Conn{a, b, sp} {
		want(t, c.Expect("score_updated"), fields{"playerId": "alice", "score": -3})
	}

	send(a, "game_action", "g1", "alice", fields{"action": "move", "data": fields{"x": 1}})
	for _, c := range []*runtimetest.Conn{a, b, sp} {
		want(t, c.Expect("game_action"), fields{"roomId": "g1", "playerId": "alice", "action": "move", "data": fields{"x": 1}, "seq": 1, "currentTurn": 0})
	}
	b.Send(fields{"type": "game_action", "roomId": "g1", "playerId": "bob", "action": "end_turn", "requestId": "t1"})
	want(t, b.Expect("game_action"), fields{"action": "end_turn", "data": nil, "seq": 2, "currentTurn": 1, "requestId": "t1"})
	for _, c := range []*runtimetest.Conn{a, sp} {
		want(t, c.Expect("game_action"), fields{"action": "end_turn", "seq": 2, "currentTurn": 1, "requestId": absent})
	}

	room, gs := getRoom(t, s, "g1")
	want(t, room, fields{"status": "playing", "startedAt": started["startedAt"], "endsAt": started["endsAt"], "endedAt": absent})
	want(t, gs, fields{"currentTurn": 1})
	players := gs.List("players")
	want(t, players[0].(map[string]any), fields{"playerId": "alice", "playerName": "Alice", "score": -3, "status": "playing"})
	want(t, players[1].(map[string]any), fields{"playerId": "bob", "playerName": "Bob", "score": 42.5, "status": "playing"})
	if n := len(gs.Obj("gameData").List("actions")); n != 2 {
		t.Fatalf("gameData.actions has %d actions, want 2", n)
	}

	a.Send(fields{"type": "end_game", "roomId": "g1", "playerId": "alice", "requestId": "e1"})
	final := []fields{{"playerId": "alice", "playerName": "Alice", "finalScore": -3}, {"playerId": "bob", "playerName": "Bob", "finalScore": 42.5}}
	ended := a.Expect("game_ended")
	want(t, ended, fields{"roomId": "g1", "reason": "ended", "finalScores": final, "requestId": "e1"})
	for _, c := range []*runtimetest.Conn{b, sp} {
		want(t, c.Expect("game_ended"), fields{"reason": "ended", "endedAt": ended["endedAt"], "finalScores": final, "requestId": absent})
	}

	room, gs = getRoom(t, s, "g1")
	want(t, room, fields{"status": "finished", "endedAt": ended["endedAt"], "endReason": "ended", "currentPlayers": []string{"alice", "bob"}})
	want(t, gs.Obj("gameData"), fields{"finalScores": final})
	for _, p := range gs.List("players") {
		want(t, p.(map[string]any), fields{"status": "finished"})
	}

	// A spectator leaving gets room_left and nobody hears of it.
	sp.Send(fields{"type": "leave_room", "roomId": "g1", "playerId": "sam", "requestId": "l1"})
	want(t, sp.Expect("room_left"), fields{"roomId": "g1", "requestId": "l1"})
	nothingMore(t, a, b, sp)

	a.Send(fields{"type": "ping", "requestId": "p1"})
	want(t, a.Expect("pong"), fields{"requestId": "p1"})
}

// TestEndTurnEndsGameAtMaxRounds: the end_turn that reaches maxRounds is
// announced, then the game ends with reason rounds.
func TestEndTurnEndsGameAtMaxRounds(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "r", "name": "Rounds", "gameType": "social", "settings": fields{"maxRounds": 2}})
	a := joinNew(t, s, "r", "alice")
	b := joinNew(t, s, "r", "bob", a)
	startGame(t, a, "r", "alice", b)

	send(a, "game_action", "r", "alice", fields{"action": "end_turn"})
	for _, c := range []*runtimetest.Conn{a, b} {
		want(t, c.Expect("game_action"), fields{"seq": 1, "currentTurn": 1})
	}
	b.Send(fields{"type": "game_action", "roomId": "r", "playerId": "bob", "action": "end_turn", "requestId": "last"})
	want(t, b.Expect("game_action"), fields{"seq": 2, "currentTurn": 2, "requestId": "last"})
	want(t, b.Expect("game_ended"), fields{"reason": "rounds", "requestId": "last"})
	want(t, a.Expect("game_action"), fields{"seq": 2, "currentTurn": 2})
	want(t, a.Expect("game_ended"), fields{"reason": "rounds", "requestId": absent})
	nothingMore(t, a, b)

	room, gs := getRoom(t, s, "r")
	want(t, room, fields{"status": "finished", "endReason": "rounds"})
	want(t, gs, fields{"currentTurn": 2})
}

// TestLastPlayerLeavingAbandonsGame: players leave for good; when the last
// one leaves a playing game it ends as abandoned, keeping them in the final
// scores.
func TestLastPlayerLeavingAbandonsGame(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "ab", "name": "Abandoned", "gameType": "social"})
	a := joinNew(t, s, "ab", "alice")
	b := joinNew(t, s, "ab", "bob", a)
	sp := dial(s)
	join(t, sp, "ab", "sam", true)
	startGame(t, a, "ab", "alice", b, sp)
	send(b, "update_score", "ab", "bob", fields{"score": 7})
	for _, c := range []*runtimetest.Conn{a, b, sp} {
		c.Expect("score_updated")
	}

	a.Send(fields{"type": "leave_room", "roomId": "ab", "playerId": "alice", "requestId": "bye"})
	want(t, a.Expect("room_left"), fields{"roomId": "ab", "requestId": "bye"})
	for _, c := range []*runtimetest.Conn{b, sp} {
		f := c.Expect("player_left")
		want(t, f, fields{"roomId": "ab", "playerId": "alice", "playerName": "Alice"})
		if got := ids(f.List("players")); fmt.Sprint(got) != "[bob]" {
			t.Fatalf("players after alice left: %v", got)
		}
	}
	room, _ := getRoom(t, s, "ab")
	want(t, room, fields{"status": "playing", "currentPlayers": []string{"bob"}})

	send(b, "leave_room", "ab", "bob", nil)
	want(t, b.Expect("room_left"), fields{"roomId": "ab"})
	want(t, sp.Expect("player_left"), fields{"playerId": "bob", "players": []any{}})
	want(t, sp.Expect("game_ended"), fields{"reason": "abandoned", "finalScores": []fields{{"playerId": "bob", "playerName": "Bob", "finalScore": 7}}})
	nothingMore(t, a, b, sp)

	room, gs := getRoom(t, s, "ab")
	want(t, room, fields{"status": "finished", "endReason": "abandoned", "currentPlayers": []string{}, "connected": []string{}})
	want(t, gs.Obj("gameData"), fields{"finalScores": []fields{{"playerId": "bob", "playerName": "Bob", "finalScore": 7}}})

	// Having left, they are new players again, and the game is over.
	send(a, "join_room", "ab", "alice", fields{"playerName": "Alice"})
	want(t, a.Expect("join_failed"), fields{"code": "game_in_progress"})
}

// TestLeavingWaitingRoomKeepsItOpen: a waiting room without players waits
// for new ones.
func TestLeavingWaitingRoomKeepsItOpen(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "w", "name": "Waiting", "gameType": "social"})
	a := joinNew(t, s, "w", "alice")
	send(a, "leave_room", "w", "alice", nil)
	a.Expect("room_left")
	nothingMore(t, a)
	room, _ := getRoom(t, s, "w")
	want(t, room, fields{"status": "waiting", "currentPlayers": []string{}})
	joinNew(t, s, "w", "bob")
}

// TestClockEndsGame: settings.duration after startedAt the game ends with
// reason clock, never earlier. The runtime's clock is the test kit's, so a
// ten-minute game takes no time and "not a millisecond early" is exact.
func TestClockEndsGame(t *testing.T) {
	t.Parallel()
	clock := runtimetest.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	s := startClock(t, clock)
	createRoom(t, s, fields{"roomId": "c", "name": "Clock", "gameType": "cognitive", "settings": fields{"duration": 600}})
	a := joinNew(t, s, "c", "alice")
	b := joinNew(t, s, "c", "bob", a)
	started := startGame(t, a, "c", "alice", b)
	endsAt := parseTime(t, started["endsAt"])
	if d := endsAt.Sub(parseTime(t, started["startedAt"])); d != 10*time.Minute {
		t.Fatalf("endsAt - startedAt = %v, want 10m", d)
	}
	clock.Advance(endsAt.Sub(clock.Now()) - time.Millisecond)
	a.ExpectNothing()
	if room, _ := getRoom(t, s, "c"); room.Str("status") != "playing" {
		t.Fatalf("a millisecond before its end the game is %v", room)
	}
	clock.Advance(time.Millisecond)
	for _, c := range []*runtimetest.Conn{a, b} {
		ended := c.Expect("game_ended") // within runtimetest.Timeout
		want(t, ended, fields{"roomId": "c", "reason": "clock"})
		if endedAt := parseTime(t, ended["endedAt"]); !endedAt.Equal(endsAt) {
			t.Fatalf("game ended at %v, want exactly its end %v", endedAt, endsAt)
		}
	}
	room, _ := getRoom(t, s, "c")
	want(t, room, fields{"status": "finished", "endReason": "clock"})
}

// TestClockEndsGameAfterRestart: the game clock is a durable alarm; it
// fires on the restarted node.
func TestClockEndsGameAfterRestart(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "c", "name": "Clock", "gameType": "cognitive", "settings": fields{"duration": 2}})
	// A second game with a later clock must still end after the first.
	createRoom(t, s, fields{"roomId": "c2", "name": "Later", "gameType": "cognitive", "settings": fields{"duration": 3}})
	a := joinNew(t, s, "c", "alice")
	b := joinNew(t, s, "c", "bob", a)
	join(t, a, "c2", "alice", false)
	join(t, b, "c2", "bob", false)
	a.Sync()
	b.Sync()
	started := startGame(t, a, "c", "alice")
	send(a, "start_game", "c2", "alice", nil)
	a.Expect("game_started_success")
	endsAt := parseTime(t, started["endsAt"])

	// Clients that hang up promptly let the server close without waiting
	// for their close handshakes.
	_ = a.WS.Close()
	_ = b.WS.Close()
	s.Restart()
	room, _ := getRoom(t, s, "c")
	switch {
	case room.Str("status") == "playing":
		// The deadline is still ahead: the new node must fire the alarm.
	case time.Now().Before(endsAt):
		t.Fatalf("game ended before its deadline %v: %v", endsAt, room)
	default:
		t.Logf("restart outlasted the 2s game; the clock may have fired before it")
	}
	for _, id := range []string{"c", "c2"} {
		room, _ := waitRoom(t, s, id, "clock end", func(room, _ runtimetest.Frame) bool { return room.Str("status") == "finished" })
		want(t, room, fields{"endReason": "clock"})
		if endedAt, endsAt := parseTime(t, room["endedAt"]), parseTime(t, room["endsAt"]); endedAt.Before(endsAt) {
			t.Fatalf("room %s ended at %v, before its end %v", id, endedAt, endsAt)
		}
	}
	// A fresh client of a returning player sees the result.
	c := dial(s)
	joined := join(t, c, "c", "alice", false)
	want(t, joined.Obj("room"), fields{"status": "finished", "connected": []string{"alice"}})
	want(t, joined.Obj("gameState").Obj("gameData"), fields{"finalScores": []fields{{"playerId": "alice", "playerName": "Alice", "finalScore": 0}, {"playerId": "bob", "playerName": "Bob", "finalScore": 0}}})
	nothingMore(t, c)
}

// TestReturningPlayerRejoinsWithoutAnnouncement: a dropped socket leaves
// the player in the room; rejoining (even a playing room) announces nothing.
func TestReturningPlayerRejoinsWithoutAnnouncement(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "rj", "name": "Rejoin", "gameType": "social"})
	a := joinNew(t, s, "rj", "alice")
	b := joinNew(t, s, "rj", "bob", a)
	startGame(t, a, "rj", "alice", b)

	_ = a.WS.Close()
	room, _ := waitRoom(t, s, "rj", "alice disconnected", func(room, _ runtimetest.Frame) bool {
		return len(room.List("connected")) == 1
	})
	want(t, room, fields{"currentPlayers": []string{"alice", "bob"}, "connected": []string{"bob"}})
	nothingMore(t, b)

	a2 := dial(s)
	joined := join(t, a2, "rj", "alice", false)
	want(t, joined.Obj("room"), fields{"status": "playing", "currentPlayers": []string{"alice", "bob"}, "connected": []string{"alice", "bob"}})
	nothingMore(t, a2, b)

	send(a2, "update_score", "rj", "alice", fields{"score": 5})
	want(t, a2.Expect("score_updated"), fields{"playerId": "alice", "score": 5})
	want(t, b.Expect("score_updated"), fields{"playerId": "alice", "score": 5})
}

// TestPlayerMayUseSeveralSockets: a second socket of a player joins without
// counting toward maxPlayers or being announced, and leave_room takes every
// socket of the player out of the room.
func TestPlayerMayUseSeveralSockets(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "tabs", "name": "Tabs", "gameType": "social", "maxPlayers": 2})
	a1 := joinNew(t, s, "tabs", "alice")
	b := joinNew(t, s, "tabs", "bob", a1)
	a2 := dial(s)
	joined := join(t, a2, "tabs", "alice", false)
	want(t, joined.Obj("room"), fields{"currentPlayers": []string{"alice", "bob"}})
	nothingMore(t, a1, a2, b)

	startGame(t, a1, "tabs", "alice", b, a2)
	send(a2, "update_score", "tabs", "alice", fields{"score": 1})
	for _, c := range []*runtimetest.Conn{a1, a2, b} {
		c.Expect("score_updated")
	}

	a2.Send(fields{"type": "leave_room", "roomId": "tabs", "playerId": "alice", "requestId": "x"})
	want(t, a2.Expect("room_left"), fields{"roomId": "tabs", "requestId": "x"})
	want(t, a1.Expect("room_left"), fields{"roomId": "tabs", "requestId": absent})
	want(t, b.Expect("player_left"), fields{"playerId": "alice"})
	nothingMore(t, a1, a2, b)
	room, _ := getRoom(t, s, "tabs")
	want(t, room, fields{"currentPlayers": []string{"bob"}, "connected": []string{"bob"}})

	// Neither socket is in the room any more.
	send(a1, "update_score", "tabs", "alice", fields{"score": 2})
	want(t, a1.Expect("error"), fields{"code": "not_in_room"})
}

// TestHibernatedRoomKeepsPlaying: an evicted instance loses its memory; the
// next one carries on from storage and the sockets' identities and rooms.
func TestHibernatedRoomKeepsPlaying(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{IdleTimeout: 20 * time.Millisecond})
	createRoom(t, s, fields{"roomId": "h", "name": "Hibernate", "gameType": "social"})
	a := joinNew(t, s, "h", "alice")
	b := joinNew(t, s, "h", "bob", a)
	sp := dial(s)
	join(t, sp, "h", "sam", true)

	hibernate := func() {
		t.Helper()
		deadline := time.Now().Add(runtimetest.Timeout)
		for s.Runtime.LiveInstances() > 0 {
			if time.Now().After(deadline) {
				t.Fatal("instance never evicted")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	hibernate()
	startGame(t, b, "h", "bob", a, sp)
	hibernate()
	send(a, "update_score", "h", "alice", fields{"score": 3})
	for _, c := range []*runtimetest.Conn{a, b, sp} {
		want(t, c.Expect("score_updated"), fields{"playerId": "alice", "score": 3})
	}
	hibernate()
	// Identity and role survived: no spoofing, spectators still only watch.
	send(a, "update_score", "h", "bob", fields{"score": 100})
	want(t, a.Expect("error"), fields{"code": "forbidden"})
	send(sp, "game_action", "h", "sam", fields{"action": "move"})
	want(t, sp.Expect("error"), fields{"code": "forbidden"})
	hibernate()
	room, _ := getRoom(t, s, "h")
	want(t, room, fields{"status": "playing", "connected": []string{"alice", "bob"}})
	hibernate()
	send(b, "end_game", "h", "bob", nil)
	for _, c := range []*runtimetest.Conn{a, b, sp} {
		want(t, c.Expect("game_ended"), fields{"reason": "ended", "finalScores": []fields{{"playerId": "alice", "playerName": "Alice", "finalScore": 3}, {"playerId": "bob", "playerName": "Bob", "finalScore": 0}}})
	}
}

// TestScoresAndStatusSurviveRestart: everything revealed is there after a
// restart; players rejoin and play on.
func TestScoresAndStatusSurviveRestart(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "d", "name": "Durable", "gameType": "competitive"})
	a := joinNew(t, s, "d", "alice")
	b := joinNew(t, s, "d", "bob", a)
	startGame(t, a, "d", "alice", b)
	for _, step := range []struct {
		c         *runtimetest.Conn
		typ, who  string
		extra     fields
		broadcast string
	}{
		{a, "update_score", "alice", fields{"score": 10}, "score_updated"},
		{b, "update_score", "bob", fields{"score": 20}, "score_updated"},
		{b, "game_action", "bob", fields{"action": "end_turn", "data": []int{1, 2}}, "game_action"},
	} {
		send(step.c, step.typ, "d", step.who, step.extra)
		a.Expect(step.broadcast)
		b.Expect(step.broadcast)
	}
	beforeRoom, beforeState := getRoom(t, s, "d")

	_ = a.WS.Close()
	_ = b.WS.Close()
	s.Restart()
	room, gs := getRoom(t, s, "d")
	beforeRoom["connected"] = []any{} // presence is live: nobody reconnected yet
	if jsonOf(t, room) != jsonOf(t, beforeRoom) || jsonOf(t, gs) != jsonOf(t, beforeState) {
		t.Fatalf("state changed across restart\nbefore: %v %v\nafter:  %v %v", beforeRoom, beforeState, room, gs)
	}

	a2 := dial(s)
	joined := join(t, a2, "d", "alice", false)
	want(t, joined.Obj("room"), fields{"status": "playing", "connected": []string{"alice"}})
	want(t, joined.Obj("gameState"), fields{"currentTurn": 1})
	send(a2, "game_action", "d", "alice", fields{"action": "end_turn"})
	want(t, a2.Expect("game_action"), fields{"seq": 2, "currentTurn": 2})
	nothingMore(t, a2)
}

// TestActionsKeepNewest100: gameData.actions holds the newest 100 actions,
// oldest first.
func TestActionsKeepNewest100(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	createRoom(t, s, fields{"roomId": "many", "name": "Many", "gameType": "social"})
	a := joinNew(t, s, "many", "alice")
	b := joinNew(t, s, "many", "bob", a)
	startGame(t, a, "many", "alice", b)
	const n = 105
	for i := 1; i <= n; i++ {
		send(a, "game_action", "many", "alice", fields{"action": "move", "data": i})
	}
	for i := 1; i <= n; i++ {
		want(t, a.Expect("game_action"), fields{"seq": i, "data": i})
		b.Expect("game_action")
	}
	_, gs := getRoom(t, s, "many")
	actions := gs.Obj("gameData").List("actions")
	if len(actions) != 100 {
		t.Fatalf("%d actions kept, want 100", len(actions))
	}
	want(t, actions[0].(map[string]any), fields{"seq": n - 99, "playerId": "alice", "action": "move", "data": n - 99, "currentTurn": 0})
	want(t, actions[99].(map[string]any), fields{"seq": n, "data": n})
}

// TestPlayerNameIsFixedByFirstJoin: a socket's name is the one its first
// join gave; later playerName fields are ignored (and may be left out).
func TestPlayerNameIsFixedByFirstJoin(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	for _, id := range []string{"n1", "n2", "n3"} {
		createRoom(t, s, fields{"roomId": id, "name": id, "gameType": "social"})
	}
	a := joinNew(t, s, "n1", "alice")
	send(a, "join_room", "n2", "alice", fields{"playerName": "Impostor"})
	a.Expect("room_joined")
	want(t, a.Expect("player_joined"), fields{"playerId": "alice", "playerName": "Alice"})
	send(a, "join_room", "n3", "alice", fields{"playerName": 42})
	a.Expect("room_joined")
	want(t, a.Expect("player_joined"), fields{"playerId": "alice", "playerName": "Alice"})
	_, gs := getRoom(t, s, "n3")
	want(t, gs.List("players")[0].(map[string]any), fields{"playerName": "Alice"})
}

// TestSocketMayJoinAtMost100Rooms: the 101st room of one socket is
// join_failed forbidden; rejoining one of its rooms is not.
func TestSocketMayJoinAtMost100Rooms(t *testing.T) {
	t.Parallel()
	s := start(t, runtime.Options{})
	c := dial(s)
	for i := range 101 {
		id := fmt.Sprintf("room%03d", i)
		createRoom(t, s, fields{"roomId": id, "name": id, "gameType": "social"})
		if i < 100 {
			send(c, "join_room", id, "alice", fields{"playerName": "Alice"})
		}
	}
	for range 100 {
		c.Expect("room_joined")
		c.Expect("player_joined")
	}
	send(c, "join_room", "room100", "alice", nil)
	want(t, c.Expect("join_failed"), fields{"code": "forbidden", "roomId": "room100"})
	send(c, "join_room", "room000", "alice", nil)
	c.Expect("room_joined")
	nothingMore(t, c)
	if room, _ := getRoom(t, s, "room100"); len(room.List("currentPlayers")) != 0 {
		t.Fatalf("refused join changed the room: %v", room)
	}
}

// TestRateLimitedFramesAreDropped: beyond the burst a socket's frames get
// rate_limited and do nothing; other sockets are not affected. The limit is
// the runtime's, with the protocol's reply, as holocron serve runs it.
func TestRateLimitedFramesAreDropped(t *testing.T) {
	t.Parallel()
	s := startWith(t, runtime.Options{SocketRate: 0.001, SocketBurst: 3, RateLimitedReply: protocol.RateLimitedFrame()}, roommanager.Options{})
	createRoom(t, s, fields{"roomId": "rl", "name": "Rate", "gameType": "social"})
	c := dial(s)
	c.Send(fields{"type": "ping"})
	c.Send(fields{"type": "ping"})
	c.Send(fields{"type": "ping", "requestId": "3"})
	c.Send(fields{"type": "join_room", "roomId": "rl", "playerId": "alice", "playerName": "Alice", "requestId": "4"})
	c.SendRaw(websocket.TextMessage, []byte("not json"))
	// The runtime answers a dropped frame at once, from its socket reader,
	// so a rate_limited may overtake the pongs of the frames before it.
	pongs := 0
	for range 5 {
		switch f := c.Read(); f.Type() {
		case "pong":
			pongs++
		default:
			want(t, f, fields{"type": "error", "code": "rate_limited", "requestType": absent, "requestId": absent, "roomId": absent})
		}
	}
	if pongs != 3 {
		t.Fatalf("%d pongs, want 3 (the burst)", pongs)
	}
	if room, _ := getRoom(t, s, "rl"); len(room.List("currentPlayers")) != 0 {
		t.Fatalf("rate-limited join changed the room: %v", room)
	}
	other := dial(s)
	other.ExpectNothing()
}
