package chatlobby_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// TestLobbyWorksAfterHibernation: when the runtime evicts the idle lobby,
// its sockets stay open and the rebuilt lobby still knows who is where and
// who each socket is.
func TestLobbyWorksAfterHibernation(t *testing.T) {
	e := startWith(t, chatlobby.Options{}, runtime.Options{IdleTimeout: 20 * time.Millisecond}, "")
	e.createRoom("r", nil)
	e.createRoom("s", nil)
	alice := e.dial()
	alice.Send(map[string]any{"type": "join_room", "roomId": "r", "playerId": "alice", "playerName": "Alice"})
	alice.Expect("room_joined")
	alice.Expect("user_joined")
	bob := e.dial()
	join(t, bob, "r", "bob")
	alice.Expect("user_joined")
	alice2 := e.dial()
	alice2.Send(map[string]any{"type": "join_room", "roomId": "r", "playerId": "alice", "playerName": "Alice"})
	alice2.Expect("room_joined")

	e.waitHibernated()

	// Presence survived: a newcomer sees everyone, in order.
	carol := e.dial()
	rj := join(t, carol, "r", "carol")
	wantStrings(t, "participants", strs(rj.List("participants")), []string{"alice", "bob", "carol"})
	for _, c := range []*runtimetest.Conn{alice, alice2, bob} {
		c.Expect("user_joined")
	}

	e.waitHibernated()

	// Identity survived: alice's socket is still alice, named Alice.
	say(alice, "r", "bob", "spoof")
	if f := alice.Expect("error"); f.Str("code") != "forbidden" {
		t.Fatalf("spoofing after hibernation: %v", f)
	}
	say(alice, "r", "alice", "hi")
	for _, c := range []*runtimetest.Conn{alice, alice2, bob, carol} {
		if m := c.Expect("new_message").Obj("message"); m.Str("senderName") != "Alice" {
			t.Fatalf("message %v", m)
		}
	}
	// Joined rooms survived: alice is not in s, and is in r.
	say(alice, "s", "alice", "hi")
	if f := alice.Expect("error"); f.Str("code") != "not_in_room" {
		t.Fatalf("got %v", f)
	}

	e.waitHibernated()

	// Multiple sockets survived: alice leaves only with her last socket,
	// under her real name, even though the lobby was rebuilt in between.
	_ = alice.WS.Close()
	bob.ExpectNothing()
	e.waitHibernated()
	_ = alice2.WS.Close()
	u := bob.Expect("user_left")
	if u.Str("playerId") != "alice" || u.Str("playerName") != "Alice" {
		t.Fatalf("user_left %v", u)
	}
	wantStrings(t, "participants", strs(u.List("participants")), []string{"bob", "carol"})
	carol.Expect("user_left")
}

// TestHistorySurvivesRestart: everything revealed before a restart is there
// after it; presence starts empty and is rebuilt as clients rejoin.
func TestHistorySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	e := startWith(t, chatlobby.Options{HistoryLimit: 4}, runtime.Options{}, dir)
	e.createRoom("r", nil)
	e.createRoom("later", nil)
	c := e.dial()
	join(t, c, "r", "alice") // #1, trimmed below
	for _, m := range []string{"one", "two", "three", "four"} {
		c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": m, "clientMsgId": m})
		c.Expect("new_message")
	}
	before := e.history("r", "")

	// Read while the server shuts down, so the client answers its close
	// frame (1001: reconnect) at once.
	closed := make(chan error, 1)
	go func() {
		_, _, err := c.WS.ReadMessage()
		closed <- err
	}()
	e.s.Restart()
	if err := <-closed; !websocket.IsCloseError(err, websocket.CloseGoingAway) {
		t.Fatalf("socket at restart: %v, want close 1001", err)
	}

	// The closing socket's leave message was recorded at shutdown.
	after := e.history("r", "")
	wantStrings(t, "history", contents(after.List("messages")), []string{"two", "three", "four", nameOf("alice") + " left the room"})
	wantStrings(t, "kept ids", ids(after.List("messages"))[:3], ids(before.List("messages"))[1:])
	wantStrings(t, "participants", strs(e.room("r").List("participants")), nil)
	_, list := e.s.Do("GET", "/api/lobby/rooms", nil)
	if rooms := list.List("rooms"); len(rooms) != 2 || runtimetest.Frame(rooms[0].(map[string]any)).Str("id") != "r" {
		t.Fatalf("rooms after restart %v", list)
	}

	// Sequence numbers, counters and the clientMsgId index carry on.
	c = e.dial()
	c.Send(with(joinFrame("r", "alice"), "since", msgID(3)))
	c.Expect("room_joined")
	h := c.Expect("message_history")
	if h["truncated"] != false {
		t.Fatalf("message_history %v", h)
	}
	wantStrings(t, "resumed", ids(h.List("messages")), []string{msgID(4), msgID(5), msgID(6), msgID(7)})
	c.Expect("user_joined")
	c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": "again", "clientMsgId": "four"})
	if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(5) || m.Str("content") != "four" {
		t.Fatalf("retried send after restart: %v", m)
	}
	say(c, "r", "alice", "five")
	if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(8) {
		t.Fatalf("new message after restart: %v", m)
	}
}
