package client

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/protocol"
)

// TestChatRequests drives every ChatLobby request and REST endpoint against
// one node, and checks what each answers and what the room hears.
func TestChatRequests(t *testing.T) {
	checkLeaks(t)
	node := startNode(t)
	addrs := []string{node.Addr}
	alice, aliceEv := dialChat(t, addrs, testOptions())
	bob, bobEv := dialChat(t, addrs, testOptions())
	ctx := ctxT(t, 30*time.Second)

	room, err := alice.CreateRoom(ctx, NewChatRoom{RoomID: "general", Name: "General"})
	if err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if room.ID != "general" || room.MaxParticipants != 50 || room.IsPrivate || room.CreatedAt.IsZero() {
		t.Fatalf("CreateRoom = %+v", room)
	}
	if _, err := alice.CreateRoom(ctx, NewChatRoom{RoomID: "secret", Name: "Secret", IsPrivate: true, AllowedPlayers: []string{"alice"}}); err != nil {
		t.Fatalf("CreateRoom private: %v", err)
	}
	if _, err := alice.CreateRoom(ctx, NewChatRoom{RoomID: "tiny", Name: "Tiny", MaxParticipants: 1}); err != nil {
		t.Fatalf("CreateRoom tiny: %v", err)
	}

	joined, err := alice.JoinRoom(ctx, "general", "alice", "Alice")
	if err != nil {
		t.Fatalf("JoinRoom: %v", err)
	}
	if joined.Room.ID != "general" || !slices.Equal(joined.Participants, []string{"alice"}) {
		t.Fatalf("JoinRoom = %+v", joined)
	}
	if _, err := bob.JoinRoom(ctx, "general", "bob", "Bob"); err != nil {
		t.Fatalf("bob JoinRoom: %v", err)
	}
	uj := waitEvent(t, aliceEv, 5*time.Second, func(e *UserJoined) bool { return e.PlayerID == "bob" })
	if uj.PlayerName != "Bob" || uj.ParticipantCount != 2 || !slices.Equal(uj.Participants, []string{"alice", "bob"}) {
		t.Fatalf("UserJoined = %+v", uj)
	}

	msg, err := alice.SendMessage(ctx, "general", "hello, Bob")
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if msg.Content != "hello, Bob" || msg.SenderID != "alice" || msg.SenderName != "Alice" || msg.Type != MessageText || msg.ClientMsgID == "" || msg.ID == "" {
		t.Fatalf("SendMessage = %+v", msg)
	}
	got := waitEvent(t, bobEv, 5*time.Second, func(e *NewMessage) bool { return e.Message.ID == msg.ID })
	if got.Message.Content != "hello, Bob" || got.FromHistory {
		t.Fatalf("bob got %+v", got)
	}
	// The sender's own message is part of its stream, once.
	waitEvent(t, aliceEv, 5*time.Second, func(e *NewMessage) bool { return e.Message.ID == msg.ID })

	// The same clientMsgId is stored once: the retry answers the stored
	// message and the stream does not repeat it.
	again, err := alice.SendMessageWithID(ctx, "general", msg.ClientMsgID, "ignored retry content")
	if err != nil {
		t.Fatalf("SendMessageWithID retry: %v", err)
	}
	if again.ID != msg.ID || again.Content != msg.Content {
		t.Fatalf("retry stored a new message: %+v, first %+v", again, msg)
	}

	page, err := bob.GetHistory(ctx, "general", HistoryOptions{Limit: 10})
	if err != nil {
		t.Fatalf("GetHistory: %v", err)
	}
	// alice's join, bob's join, the message.
	if len(page.Messages) != 3 || page.HasMore || page.Messages[2].ID != msg.ID || page.Messages[0].Type != MessageJoin {
		t.Fatalf("GetHistory = %+v", page)
	}
	older, err := bob.GetHistory(ctx, "general", HistoryOptions{Limit: 1, Before: msg.ID})
	if err != nil || len(older.Messages) != 1 || older.Messages[0].SenderID != "bob" || !older.HasMore {
		t.Fatalf("GetHistory before = %+v, %v", older, err)
	}
	first, err := bob.GetHistory(ctx, "general", HistoryOptions{Limit: 1, FromStart: true})
	if err != nil || len(first.Messages) != 1 || first.Messages[0].SenderID != "alice" || !first.HasMore {
		t.Fatalf("GetHistory from start = %+v, %v", first, err)
	}
	httpPage, err := bob.Messages(ctx, "general", HistoryOptions{After: first.Messages[0].ID})
	if err != nil || len(httpPage.Messages) != 2 || httpPage.Messages[1].ID != msg.ID {
		t.Fatalf("Messages after = %+v, %v", httpPage, err)
	}

	// Alice's stream: her join message (the baseline), bob's join, the
	// message; exactly once each, in order, equal to the history.
	aliceEv.waitFor(t, 5*time.Second, "alice's stream to catch up", func([]Event) bool {
		return len(aliceEv.messages("general")) == 3
	})
	if err := sameMessages(aliceEv.messages("general"), page.Messages); err != nil {
		t.Fatalf("alice's stream: %v", err)
	}

	rtt, err := alice.Ping(ctx)
	if err != nil || rtt <= 0 {
		t.Fatalf("Ping = %v, %v", rtt, err)
	}

	rooms, err := bob.ListRooms(ctx)
	if err != nil {
		t.Fatalf("ListRooms: %v", err)
	}
	var ids []string
	for _, r := range rooms {
		ids = append(ids, r.ID)
	}
	if !slices.Equal(ids, []string{"general", "tiny"}) { // private rooms are not listed
		t.Fatalf("ListRooms = %v", ids)
	}
	gr, err := bob.GetRoom(ctx, "general")
	if err != nil || !slices.Equal(gr.Participants, []string{"alice", "bob"}) {
		t.Fatalf("GetRoom = %+v, %v", gr, err)
	}

	if err := bob.LeaveRoom(ctx, "general"); err != nil {
		t.Fatalf("LeaveRoom: %v", err)
	}
	ul := waitEvent(t, aliceEv, 5*time.Second, func(e *UserLeft) bool { return e.PlayerID == "bob" })
	if ul.PlayerName != "Bob" || !slices.Equal(ul.Participants, []string{"alice"}) {
		t.Fatalf("UserLeft = %+v", ul)
	}
	// Bob's leave entry reaches Alice's stream too (history fill on
	// presence), after the message.
	aliceEv.waitFor(t, 5*time.Second, "bob's leave in alice's stream", func([]Event) bool {
		ms := aliceEv.messages("general")
		return len(ms) == 4 && ms[3].Type == MessageLeave && ms[3].SenderID == "bob"
	})

	// Every failure comes back as *Error with the protocol's code.
	fresh, _ := dialChat(t, addrs, testOptions())
	failures := []struct {
		name string
		err  func() error
		code string
	}{
		{"join a missing room", func() error { _, err := alice.JoinRoom(ctx, "nowhere", "alice", "Alice"); return err }, protocol.CodeRoomNotFound},
		{"join as another player (spoofed playerId)", func() error { _, err := alice.JoinRoom(ctx, "tiny", "mallory", "M"); return err }, protocol.CodeForbidden},
		{"join a private room not allowed", func() error { _, err := bob.JoinRoom(ctx, "secret", "bob", "Bob"); return err }, protocol.CodeForbidden},
		{"join with a bad room id", func() error { _, err := fresh.JoinRoom(ctx, "bad id!", "carol", "Carol"); return err }, protocol.CodeInvalidField},
		{"join with an empty name", func() error { _, err := fresh.JoinRoom(ctx, "general", "carol", ""); return err }, protocol.CodeInvalidField},
		{"send only white space", func() error { _, err := alice.SendMessage(ctx, "general", " \t "); return err }, protocol.CodeInvalidField},
		{"send to a room not joined", func() error { _, err := alice.SendMessage(ctx, "tiny", "hi"); return err }, protocol.CodeNotInRoom},
		{"send before any join", func() error { _, err := fresh.SendMessage(ctx, "general", "hi"); return err }, protocol.CodeNotInRoom},
		{"history with before and after", func() error {
			_, err := alice.GetHistory(ctx, "general", HistoryOptions{Before: "2", After: "1"})
			return err
		}, protocol.CodeInvalidField},
		{"history with a bad limit", func() error { _, err := alice.GetHistory(ctx, "general", HistoryOptions{Limit: 5000}); return err }, protocol.CodeInvalidField},
		{"history of a missing room", func() error { _, err := alice.GetHistory(ctx, "nowhere", HistoryOptions{}); return err }, protocol.CodeRoomNotFound},
		{"history of a private room not joined", func() error { _, err := bob.GetHistory(ctx, "secret", HistoryOptions{}); return err }, protocol.CodeNotInRoom},
		{"leave a room not joined", func() error { return alice.LeaveRoom(ctx, "tiny") }, protocol.CodeNotInRoom},
		{"create an existing room", func() error { _, err := alice.CreateRoom(ctx, NewChatRoom{RoomID: "general", Name: "x"}); return err }, protocol.CodeRoomExists},
		{"create with an empty name", func() error { _, err := alice.CreateRoom(ctx, NewChatRoom{RoomID: "noname"}); return err }, protocol.CodeInvalidField},
		{"get a missing room", func() error { _, err := alice.GetRoom(ctx, "nowhere"); return err }, protocol.CodeRoomNotFound},
		{"messages of a private room over HTTP", func() error { _, err := alice.Messages(ctx, "secret", HistoryOptions{}); return err }, protocol.CodeForbidden},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) { wantCode(t, f.err(), f.code) })
	}

	// A full room: carol takes tiny's only place, dave is refused.
	carol, _ := dialChat(t, addrs, testOptions())
	if _, err := carol.JoinRoom(ctx, "tiny", "carol", "Carol"); err != nil {
		t.Fatalf("carol JoinRoom tiny: %v", err)
	}
	_, err = fresh.JoinRoom(ctx, "tiny", "dave", "Dave")
	wantCode(t, err, protocol.CodeRoomFull)
	var e *Error
	if errors.As(err, &e); e.RequestType != typeJoinRoom || e.RoomID != "tiny" {
		t.Fatalf("join_failed = %+v, want requestType and roomId", e)
	}
	// The allowed player gets into the private room.
	if _, err := alice.JoinRoom(ctx, "secret", "alice", "Alice"); err != nil {
		t.Fatalf("alice JoinRoom secret: %v", err)
	}
}

// TestChatCloseStopsEverything checks Close: requests after it fail with
// ErrClosed, Events closes, Err says why, no goroutine is left, and
// context.AfterFunc ties a client to a context.
func TestChatCloseStopsEverything(t *testing.T) {
	checkLeaks(t)
	node := startNode(t)
	ctx, cancel := context.WithCancel(t.Context())
	c, err := DialChat(ctx, []string{node.Addr}, testOptions())
	if err != nil {
		t.Fatalf("DialChat: %v", err)
	}
	rec := record(c.Events())
	stopped := make(chan struct{})
	context.AfterFunc(ctx, func() {
		defer close(stopped)
		if err := c.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if _, err := c.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	cancel()
	waitFor(t, 15*time.Second, "Close, called by context.AfterFunc at cancel, to return", closedChan(stopped))
	waitFor(t, 5*time.Second, "Events to close after Close", closedChan(rec.done))
	if _, err := c.Ping(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ping after Close = %v, want ErrClosed", err)
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("Err = %v, want ErrClosed", c.Err())
	}
	if err := c.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestDialFailsWhenNoNodeAnswers checks that DialChat makes one pass over
// the addresses (one connection attempt each, no retry) and reports each
// failure.
func TestDialFailsWhenNoNodeAnswers(t *testing.T) {
	checkLeaks(t)
	addrs := []string{proctest.FreeAddr(t), proctest.FreeAddr(t)}
	o := testOptions()
	tap := &netTap{}
	o.Dialer = tap.dialer()
	_, err := DialChat(ctxT(t, 10*time.Second), addrs, o)
	if err == nil {
		t.Fatal("DialChat to closed ports succeeded")
	}
	if n := tap.dials(); n != len(addrs) {
		t.Fatalf("DialChat made %d connection attempts to %d closed ports, want one each", n, len(addrs))
	}
	for _, a := range addrs {
		if !strings.Contains(err.Error(), a) {
			t.Errorf("error %q does not name %s", err, a)
		}
	}
}
