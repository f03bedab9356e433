package client

import (
	"slices"
	"testing"
	"time"

	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/protocol"
)

// addrsFrom lists the cluster's node addresses starting at node first, for
// clients that try them in order.
func addrsFrom(c *proctest.Cluster, first int) []string {
	var out []string
	for i := range c.Nodes {
		out = append(out, c.Nodes[(first+i)%len(c.Nodes)].Addr)
	}
	return out
}

// TestChatClusterFailover is the acceptance test of resilient chat: two
// clients know every node of a 3-node cluster, one connected to the leader
// of ChatLobby "main" and one to a follower (which forwards it). Both chat
// without pause while the leader is killed with -9. Afterwards each
// application's received sequence equals the room's whole history (read
// through a surviving node): no gap, no repeat, same order; and every
// message each client sent was acknowledged exactly once and stored once.
func TestChatClusterFailover(t *testing.T) {
	checkLeaks(t)
	c := proctest.StartCluster(t, holocronBin, 3, "-history-limit", "100000")
	leader := c.LeaderOf("ChatLobby", "main")
	follower := (leader + 1) % 3
	o := testOptions()
	o.InOrder = true
	alice, aliceEv := dialChat(t, addrsFrom(c, leader), o)
	bob, bobEv := dialChat(t, addrsFrom(c, follower), o)
	if alice.Addr() != c.Nodes[leader].Addr || bob.Addr() != c.Nodes[follower].Addr {
		t.Fatalf("alice on %s, bob on %s: want the leader %s and a follower %s", alice.Addr(), bob.Addr(), c.Nodes[leader].Addr, c.Nodes[follower].Addr)
	}
	ctx := ctxT(t, 90*time.Second)
	if _, err := bob.CreateRoom(ctx, NewChatRoom{RoomID: "war-room", Name: "War room"}); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if _, err := alice.JoinRoomSince(ctx, "war-room", "alice", "Alice", ""); err != nil {
		t.Fatalf("alice JoinRoomSince: %v", err)
	}
	if _, err := bob.JoinRoomSince(ctx, "war-room", "bob", "Bob", ""); err != nil {
		t.Fatalf("bob JoinRoomSince: %v", err)
	}

	stop := make(chan struct{})
	a := chat(alice, "war-room", "alice", 2*time.Millisecond, stop)
	b := chat(bob, "war-room", "bob", 2*time.Millisecond, stop)
	progress(t, 30*time.Second, 50, a, b)
	killedAt := time.Now()
	c.Nodes[leader].Kill9()

	// Alice's node died under her; Bob's forwarding node told him the
	// object moved.
	waitEvent(t, aliceEv, 20*time.Second, func(e *Disconnected) bool { return e.Retrying })
	moved := waitEvent(t, bobEv, 20*time.Second, func(e *Disconnected) bool { return e.Retrying })
	if moved.Code != protocol.CloseMoved {
		t.Errorf("bob's connection closed with %d %q, want %d moved", moved.Code, moved.Reason, protocol.CloseMoved)
	}
	ra := waitEvent[*Reconnected](t, aliceEv, 30*time.Second, nil)
	rb := waitEvent[*Reconnected](t, bobEv, 30*time.Second, nil)
	if ra.Addr == c.Nodes[leader].Addr {
		t.Errorf("alice reconnected to the dead node %s", ra.Addr)
	}
	progress(t, 30*time.Second, 50, a, b)
	close(stop)
	t.Logf("failover: alice back after %v (%d attempts), bob after %v (%d attempts); 50 more messages each acknowledged %v after the kill",
		ra.Downtime.Round(time.Millisecond), ra.Attempts, rb.Downtime.Round(time.Millisecond), rb.Attempts, time.Since(killedAt).Round(time.Millisecond))
	a.stopped(t)
	b.stopped(t)

	history := settled(t, bob, "war-room", map[string]*recorder{"alice": aliceEv, "bob": bobEv})
	a.check(t, history)
	b.check(t, history)
	t.Logf("%d messages in history; alice sent %d, bob %d", len(history), a.count(), b.count())
}

// TestGameRejoinsAfterMove plays a game on a cluster through two clients
// connected to followers, kills the RoomManager's leader mid-game, and
// checks that both clients were told 1012 moved, rejoined by themselves,
// got room_joined with the current game state, and finished the game.
func TestGameRejoinsAfterMove(t *testing.T) {
	checkLeaks(t)
	c := proctest.StartCluster(t, holocronBin, 3)
	leader := c.LeaderOf("RoomManager", "main")
	var followers []string
	for i, n := range c.Nodes {
		if i != leader {
			followers = append(followers, n.Addr)
		}
	}
	p1, ev1 := dialGame(t, followers, testOptions())
	p2, ev2 := dialGame(t, followers, testOptions())
	ctx := ctxT(t, 60*time.Second)

	if _, err := p1.CreateRoom(ctx, NewGameRoom{RoomID: "final", Name: "Final", GameType: "competitive"}); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if _, err := p1.JoinRoom(ctx, "final", "p1", "Ann"); err != nil {
		t.Fatalf("p1 JoinRoom: %v", err)
	}
	if _, err := p2.JoinRoom(ctx, "final", "p2", "Ben"); err != nil {
		t.Fatalf("p2 JoinRoom: %v", err)
	}
	if err := p2.StartGame(ctx, "final"); err != nil {
		t.Fatalf("StartGame: %v", err)
	}
	if _, err := p1.UpdateScore(ctx, "final", 10); err != nil {
		t.Fatalf("p1 UpdateScore: %v", err)
	}
	if _, err := p2.UpdateScore(ctx, "final", 20); err != nil {
		t.Fatalf("p2 UpdateScore: %v", err)
	}
	if _, err := p1.GameAction(ctx, "final", ActionEndTurn, nil); err != nil {
		t.Fatalf("GameAction: %v", err)
	}

	c.Nodes[leader].Kill9()
	for _, ev := range []*recorder{ev1, ev2} {
		d := waitEvent[*Disconnected](t, ev, 20*time.Second, nil)
		if d.Code != protocol.CloseMoved || !d.Retrying {
			t.Errorf("disconnected with %d %q (retrying %v), want %d moved", d.Code, d.Reason, d.Retrying, protocol.CloseMoved)
		}
		r := waitEvent[*GameRejoined](t, ev, 30*time.Second, nil)
		gs := r.GameState
		if r.Room.Status != StatusPlaying || r.Spectator || gs.CurrentTurn != 1 || len(gs.Players) != 2 ||
			gs.Players[0].Score != 10 || gs.Players[1].Score != 20 || len(gs.GameData.Actions) != 1 {
			t.Fatalf("rejoined with %+v", r)
		}
	}

	if _, err := p1.UpdateScore(ctx, "final", 30); err != nil {
		t.Fatalf("UpdateScore after the move: %v", err)
	}
	ended, err := p2.EndGame(ctx, "final")
	if err != nil {
		t.Fatalf("EndGame after the move: %v", err)
	}
	want := []FinalScore{{"p1", "Ann", 30}, {"p2", "Ben", 20}}
	if ended.Reason != ReasonEnded || !slices.Equal(ended.FinalScores, want) {
		t.Fatalf("EndGame = %+v", ended)
	}
	got := waitEvent[*GameEnded](t, ev1, 10*time.Second, nil)
	if !slices.Equal(got.FinalScores, want) {
		t.Fatalf("p1 saw %+v", got)
	}
}
