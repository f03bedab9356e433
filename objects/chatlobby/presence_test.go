package chatlobby_test

import (
	"testing"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// TestJoinRoomAnswersActorThenAnnouncesToRoom: the joining socket gets
// room_joined (echoing requestId) before the user_joined that every socket
// of the room, its own included, gets.
func TestJoinRoomAnswersActorThenAnnouncesToRoom(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	bob := e.dial()
	join(t, bob, "r", "bob")

	alice := e.dial()
	alice.Send(with(joinFrame("r", "alice"), "requestId", "j1"))
	rj := alice.Expect("room_joined")
	if rj.Str("requestId") != "j1" {
		t.Fatalf("room_joined does not echo requestId: %v", rj)
	}
	wantStrings(t, "room_joined participants", strs(rj.List("participants")), []string{"bob", "alice"})
	room := rj.Obj("room")
	wantStrings(t, "room.participants", strs(room.List("participants")), []string{"bob", "alice"})
	if room.Str("id") != "r" || room.Str("name") != "Room r" || room["maxParticipants"] != float64(50) || room["isPrivate"] != false ||
		room.Str("createdAt") == "" || room.Str("lastActivity") == "" {
		t.Fatalf("room %v", room)
	}
	for _, c := range []*runtimetest.Conn{alice, bob} {
		u := c.Expect("user_joined")
		if u.Str("roomId") != "r" || u.Str("playerId") != "alice" || u.Str("playerName") != nameOf("alice") ||
			u["participantCount"] != float64(2) || u.Str("requestId") != "" {
			t.Fatalf("user_joined %v", u)
		}
		wantStrings(t, "user_joined participants", strs(u.List("participants")), []string{"bob", "alice"})
	}
	msgs := e.history("r", "").List("messages")
	wantStrings(t, "history", contents(msgs), []string{nameOf("bob") + " joined the room", nameOf("alice") + " joined the room"})
	for _, m := range msgs {
		if f := runtimetest.Frame(m.(map[string]any)); f.Str("type") != "join" || f.Str("senderName") == "" {
			t.Fatalf("join message %v", f)
		}
	}
}

// TestFirstJoinFixesPlayerName: the name given at the socket's first join
// is its name everywhere; later playerName values are ignored.
func TestFirstJoinFixesPlayerName(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	e.createRoom("s", nil)
	c := e.dial()
	join(t, c, "r", "alice")
	c.Send(map[string]any{"type": "join_room", "roomId": "s", "playerId": "alice", "playerName": "Impostor"})
	c.Expect("room_joined")
	if u := c.Expect("user_joined"); u.Str("playerName") != nameOf("alice") {
		t.Fatalf("user_joined %v, want the first name", u)
	}
	// Later joins may leave playerName out.
	e.createRoom("t", nil)
	c.Send(map[string]any{"type": "join_room", "roomId": "t", "playerId": "alice"})
	c.Expect("room_joined")
	c.Expect("user_joined")
	say(c, "s", "alice", "hi")
	if m := c.Expect("new_message").Obj("message"); m.Str("senderName") != nameOf("alice") || m.Str("senderId") != "alice" {
		t.Fatalf("message %v", m)
	}
}

// TestJoiningTwiceOnOneSocketChangesNothing: a repeated join_room answers
// room_joined again and announces nothing.
func TestJoiningTwiceOnOneSocketChangesNothing(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	c := e.dial()
	join(t, c, "r", "alice")
	rj := joinAgain(t, c, "r", "alice")
	wantStrings(t, "participants", strs(rj.List("participants")), []string{"alice"})
	if n := len(e.history("r", "").List("messages")); n != 1 {
		t.Fatalf("history has %d messages, want 1", n)
	}
}

// TestSecondSocketOfPlayerIsNotAnotherParticipant: a player's second
// socket joins without a second join event, does not count toward the cap,
// and the player leaves only with their last socket.
func TestSecondSocketOfPlayerIsNotAnotherParticipant(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", map[string]any{"maxParticipants": 2})
	bob := e.dial()
	join(t, bob, "r", "bob")
	tab1 := e.dial()
	join(t, tab1, "r", "alice")
	bob.Expect("user_joined")

	tab2 := e.dial()
	rj := joinAgain(t, tab2, "r", "alice") // the room is at its cap of 2 players
	wantStrings(t, "participants", strs(rj.List("participants")), []string{"bob", "alice"})
	tab1.ExpectNothing()
	bob.ExpectNothing()

	carol := e.dial()
	carol.Send(joinFrame("r", "carol"))
	if f := carol.Expect("join_failed"); f.Str("code") != "room_full" {
		t.Fatalf("got %v, want room_full", f)
	}

	// Room frames reach both tabs.
	say(bob, "r", "bob", "hello")
	for _, c := range []*runtimetest.Conn{bob, tab1, tab2} {
		c.Expect("new_message")
	}

	// The first tab leaves: alice is still present through the second.
	tab1.Send(map[string]any{"type": "leave_room", "roomId": "r", "playerId": "alice", "requestId": "l1"})
	if f := tab1.Expect("room_left"); f.Str("roomId") != "r" || f.Str("requestId") != "l1" {
		t.Fatalf("room_left %v", f)
	}
	tab1.ExpectNothing()
	bob.ExpectNothing()
	tab2.ExpectNothing()
	wantStrings(t, "participants", strs(e.room("r").List("participants")), []string{"bob", "alice"})

	// Closing the last tab makes alice leave.
	_ = tab2.WS.Close()
	u := bob.Expect("user_left")
	if u.Str("playerId") != "alice" || u.Str("playerName") != nameOf("alice") || u["participantCount"] != float64(1) {
		t.Fatalf("user_left %v", u)
	}
	wantStrings(t, "user_left participants", strs(u.List("participants")), []string{"bob"})
	wantStrings(t, "history", contents(e.history("r", "").List("messages")), []string{
		nameOf("bob") + " joined the room", nameOf("alice") + " joined the room", "hello", nameOf("alice") + " left the room",
	})

	// Now carol fits.
	join(t, carol, "r", "carol")
}

// TestParticipantsKeepArrivalOrder: a player keeps their place while any of
// their sockets stays, even if the socket that brought them in left.
func TestParticipantsKeepArrivalOrder(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	a1 := e.dial()
	join(t, a1, "r", "alice")
	bob := e.dial()
	join(t, bob, "r", "bob")
	a1.Expect("user_joined")
	a2 := e.dial()
	joinAgain(t, a2, "r", "alice")
	a1.Send(map[string]any{"type": "leave_room", "roomId": "r", "playerId": "alice"})
	a1.Expect("room_left")
	wantStrings(t, "participants", strs(e.room("r").List("participants")), []string{"alice", "bob"})
}

// TestLeaveRoom: the actor gets room_left, the room user_left with the
// remaining participants, and the socket hears nothing more from the room.
func TestLeaveRoom(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	alice := e.dial()
	join(t, alice, "r", "alice")
	bob := e.dial()
	join(t, bob, "r", "bob")
	alice.Expect("user_joined")

	alice.Send(map[string]any{"type": "leave_room", "roomId": "r", "playerId": "alice", "playerName": "ignored", "requestId": "x"})
	if f := alice.Expect("room_left"); f.Str("roomId") != "r" || f.Str("requestId") != "x" {
		t.Fatalf("room_left %v", f)
	}
	alice.ExpectNothing()
	u := bob.Expect("user_left")
	if u.Str("roomId") != "r" || u.Str("playerId") != "alice" || u.Str("playerName") != nameOf("alice") || u["participantCount"] != float64(1) {
		t.Fatalf("user_left %v", u)
	}
	wantStrings(t, "user_left participants", strs(u.List("participants")), []string{"bob"})

	say(bob, "r", "bob", "still here?")
	bob.Expect("new_message")
	alice.ExpectNothing()

	// Leaving again: not in the room.
	alice.Send(map[string]any{"type": "leave_room", "roomId": "r", "playerId": "alice"})
	if f := alice.Expect("error"); f.Str("code") != "not_in_room" {
		t.Fatalf("got %v", f)
	}
	// The socket keeps its player and may join again.
	join(t, alice, "r", "alice")
	bob.Expect("user_joined")
}

// TestClosingSocketLeavesAllRoomsWithRealName: a socket that closes leaves
// every room it was in, as leave_room would, with the player's real name.
func TestClosingSocketLeavesAllRoomsWithRealName(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	e.createRoom("s", nil)
	bob := e.dial()
	join(t, bob, "r", "bob")
	join(t, bob, "s", "bob")
	alice := e.dial()
	alice.Send(map[string]any{"type": "join_room", "roomId": "r", "playerId": "alice", "playerName": "Alice Liddell"})
	alice.Expect("room_joined")
	alice.Expect("user_joined")
	bob.Expect("user_joined")
	alice.Send(map[string]any{"type": "join_room", "roomId": "s", "playerId": "alice", "playerName": "Someone Else"})
	alice.Expect("room_joined")
	alice.Expect("user_joined")
	bob.Expect("user_joined")

	_ = alice.WS.Close()
	for _, room := range []string{"r", "s"} {
		u := bob.Expect("user_left")
		if u.Str("roomId") != room || u.Str("playerId") != "alice" || u.Str("playerName") != "Alice Liddell" {
			t.Fatalf("user_left %v, want alice (Alice Liddell) leaving %s", u, room)
		}
		wantStrings(t, "participants", strs(u.List("participants")), []string{"bob"})
		msgs := e.history(room, "").List("messages")
		last := runtimetest.Frame(msgs[len(msgs)-1].(map[string]any))
		if last.Str("type") != "leave" || last.Str("senderId") != "alice" || last.Str("senderName") != "Alice Liddell" {
			t.Fatalf("last message of %s %v, want alice's leave", room, last)
		}
	}
	bob.ExpectNothing()
}

// TestLargeRoomOmitsParticipantList: user_joined and user_left carry the
// list only up to ParticipantListLimit participants, participantCount
// always; room_joined always carries the full list.
func TestLargeRoomOmitsParticipantList(t *testing.T) {
	e := start(t, chatlobby.Options{ParticipantListLimit: 2})
	e.createRoom("r", nil)
	players := []string{"p1", "p2", "p3"}
	conns := make([]*runtimetest.Conn, len(players))
	for i, p := range players {
		conns[i] = e.dial()
		rj := join(t, conns[i], "r", p)
		wantStrings(t, "room_joined participants", strs(rj.List("participants")), players[:i+1])
		for _, c := range conns[:i] {
			u := c.Expect("user_joined")
			if u["participantCount"] != float64(i+1) {
				t.Fatalf("user_joined %v, want participantCount %d", u, i+1)
			}
			if _, has := u["participants"]; has != (i+1 <= 2) {
				t.Fatalf("user_joined with %d participants: %v", i+1, u)
			}
		}
	}
	_ = conns[0].WS.Close() // 3 → 2: back under the limit
	u := conns[1].Expect("user_left")
	wantStrings(t, "user_left participants", strs(u.List("participants")), []string{"p2", "p3"})
	if u["participantCount"] != float64(2) {
		t.Fatalf("user_left %v", u)
	}
}

// TestPrivateRooms: private rooms are not listed; with allowedPlayers only
// those may join; their history is for joined sockets only.
func TestPrivateRooms(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("pub", nil)
	created := e.createRoom("vip", map[string]any{"isPrivate": true, "allowedPlayers": []string{"alice"}})
	if created["isPrivate"] != true {
		t.Fatalf("created %v", created)
	}
	e.createRoom("open", map[string]any{"isPrivate": true})
	_, list := e.s.Do("GET", "/api/lobby/rooms", nil)
	if rooms := list.List("rooms"); len(rooms) != 1 || runtimetest.Frame(rooms[0].(map[string]any)).Str("id") != "pub" {
		t.Fatalf("listed %v, want only pub", list)
	}
	if e.room("vip").Str("id") != "vip" {
		t.Fatal("GET of a private room by id failed")
	}

	mallory := e.dial()
	mallory.Send(joinFrame("vip", "mallory"))
	if f := mallory.Expect("join_failed"); f.Str("code") != "forbidden" || f.Str("roomId") != "vip" {
		t.Fatalf("got %v", f)
	}
	// A private room without a list is open to whoever knows its id.
	join(t, mallory, "open", "mallory")
	mallory.Send(map[string]any{"type": "get_history", "roomId": "vip"})
	if f := mallory.Expect("error"); f.Str("code") != "not_in_room" {
		t.Fatalf("got %v", f)
	}

	alice := e.dial()
	join(t, alice, "vip", "alice")
	say(alice, "vip", "alice", "secret")
	alice.Expect("new_message")
	alice.Send(map[string]any{"type": "get_history", "roomId": "vip"})
	h := alice.Expect("message_history")
	wantStrings(t, "history", contents(h.List("messages")), []string{nameOf("alice") + " joined the room", "secret"})

	if code, f := e.s.Do("GET", "/api/lobby/rooms/vip/messages", nil); code != 403 || f.Str("code") != "forbidden" {
		t.Fatalf("HTTP history of a private room: %d %v", code, f)
	}
}
