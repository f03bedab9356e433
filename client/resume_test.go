package client

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"
)

// chatter sends messages to a room until stopped and keeps the
// acknowledgements, in order.
type chatter struct {
	who  string
	done chan struct{}

	mu   sync.Mutex
	acks []ChatMessage
	errs []error
}

// chat starts sending "who n" messages every pause until stop closes.
// Every SendMessage must succeed: a lost connection only delays it.
func chat(c *ChatClient, room, who string, pause time.Duration, stop <-chan struct{}) *chatter {
	ch := &chatter{who: who, done: make(chan struct{})}
	go func() {
		defer close(ch.done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(pause):
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			m, err := c.SendMessage(ctx, room, fmt.Sprintf("%s %d", who, i))
			cancel()
			ch.mu.Lock()
			if err != nil {
				ch.errs = append(ch.errs, err)
			} else {
				ch.acks = append(ch.acks, *m)
			}
			ch.mu.Unlock()
		}
	}()
	return ch
}

func (ch *chatter) count() int {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.acks)
}

// check verifies that every message ch sent was acknowledged once and is
// stored exactly once, as acknowledged, in the room's history.
func (ch *chatter) check(t *testing.T, history []ChatMessage) {
	t.Helper()
	<-ch.done
	for _, err := range ch.errs {
		t.Errorf("%s: SendMessage failed: %v", ch.who, err)
	}
	stored := map[string][]ChatMessage{}
	for _, m := range history {
		if m.SenderID == ch.who && m.Type == MessageText {
			stored[m.ClientMsgID] = append(stored[m.ClientMsgID], m)
		}
	}
	seen := map[string]bool{}
	for _, a := range ch.acks {
		if seen[a.ClientMsgID] {
			t.Errorf("%s: clientMsgId %s acknowledged twice", ch.who, a.ClientMsgID)
		}
		seen[a.ClientMsgID] = true
		s := stored[a.ClientMsgID]
		if len(s) != 1 || s[0].ID != a.ID || s[0].Content != a.Content {
			t.Errorf("%s: ack %s %q is stored as %+v, want exactly once", ch.who, a.ID, a.Content, s)
		}
	}
	if len(stored) != len(ch.acks) {
		t.Errorf("%s: %d messages stored, %d acknowledged", ch.who, len(stored), len(ch.acks))
	}
}

// waitStream waits until rec's stream of room has reached the newest
// message of history, and checks that it equals history: no gap, no
// repeat, same order.
func waitStream(t *testing.T, name string, rec *recorder, room string, history []ChatMessage) {
	t.Helper()
	last := history[len(history)-1].ID
	rec.waitFor(t, 20*time.Second, name+"'s stream to reach "+last, func([]Event) bool {
		ms := rec.messages(room)
		return len(ms) > 0 && ms[len(ms)-1].ID >= last
	})
	if err := sameMessages(rec.messages(room), history); err != nil {
		t.Fatalf("%s's stream differs from the room's history: %v", name, err)
	}
}

// waitQuiet reads a room's history until two reads a moment apart agree
// (presence entries of reconnecting clients may still be landing).
func waitQuiet(t *testing.T, c *ChatClient, room string) []ChatMessage {
	t.Helper()
	prev := fullHistory(t, c, room)
	for range 50 {
		time.Sleep(300 * time.Millisecond)
		cur := fullHistory(t, c, room)
		if len(cur) == len(prev) {
			return cur
		}
		prev = cur
	}
	t.Fatal("room history never settled")
	return nil
}

// TestChatResumesAfterKill9 kills the only node mid-chat and restarts it:
// the clients reconnect by themselves, each application receives the
// room's history exactly once and in order, a message in flight at the
// crash is re-sent with its clientMsgId and acknowledged once, and every
// acknowledged message is stored once.
func TestChatResumesAfterKill9(t *testing.T) {
	checkLeaks(t)
	node := startNode(t)
	addrs := []string{node.Addr}
	alice, aliceEv := dialChat(t, addrs, testOptions())
	bob, bobEv := dialChat(t, addrs, testOptions())
	ctx := ctxT(t, 60*time.Second)
	if _, err := alice.CreateRoom(ctx, NewChatRoom{RoomID: "lobby", Name: "Lobby"}); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if _, err := alice.JoinRoomSince(ctx, "lobby", "alice", "Alice", ""); err != nil {
		t.Fatalf("alice JoinRoomSince: %v", err)
	}
	if _, err := bob.JoinRoomSince(ctx, "lobby", "bob", "Bob", ""); err != nil {
		t.Fatalf("bob JoinRoomSince: %v", err)
	}

	stop := make(chan struct{})
	a := chat(alice, "lobby", "alice", 5*time.Millisecond, stop)
	b := chat(bob, "lobby", "bob", 5*time.Millisecond, stop)
	for a.count() < 20 || b.count() < 20 {
		time.Sleep(10 * time.Millisecond)
	}

	// Hold a message in flight: the node is frozen when it is written, and
	// killed before it could read it.
	signal(t, node.Dir, syscall.SIGSTOP)
	inflight := make(chan error, 1)
	var held *ChatMessage
	go func() {
		m, err := bob.SendMessageWithID(ctx, "lobby", "held-at-crash", "sent while the node was frozen")
		held = m
		inflight <- err
	}()
	time.Sleep(200 * time.Millisecond)
	node.Kill9()
	restart(t, node)
	select {
	case err := <-inflight:
		if err != nil {
			t.Fatalf("in-flight SendMessage: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("in-flight SendMessage never acknowledged")
	}
	if held.ClientMsgID != "held-at-crash" {
		t.Fatalf("in-flight message stored as %+v", held)
	}
	b.mu.Lock()
	b.acks = append(b.acks, *held) // checked with bob's own
	b.mu.Unlock()
	waitEvent[*Reconnected](t, aliceEv, 20*time.Second, nil)
	waitEvent[*Reconnected](t, bobEv, 20*time.Second, nil)
	base := a.count() + b.count()
	for a.count()+b.count() < base+40 {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)

	history := waitQuiet(t, alice, "lobby")
	a.check(t, history)
	b.check(t, history)
	stored := 0
	for _, m := range history {
		if m.ClientMsgID == "held-at-crash" {
			stored++
		}
	}
	if stored != 1 {
		t.Fatalf("the in-flight message is stored %d times", stored)
	}
	waitStream(t, "alice", aliceEv, "lobby", history)
	waitStream(t, "bob", bobEv, "lobby", history)
	t.Logf("%d messages in history; alice sent %d, bob %d", len(history), a.count(), b.count())
}
