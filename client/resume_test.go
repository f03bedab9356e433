package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
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

// failed fails the test at once if a send of ch failed: every SendMessage
// must succeed, so waiting on would only hide why.
func (ch *chatter) failed(t *testing.T) {
	t.Helper()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if len(ch.errs) > 0 {
		t.Fatalf("%s: SendMessage failed: %v", ch.who, ch.errs)
	}
}

// progress waits until each chatter has had more messages acknowledged
// than when it was called.
func progress(t *testing.T, within time.Duration, more int, chs ...*chatter) {
	t.Helper()
	base := make([]int, len(chs))
	for i, ch := range chs {
		base[i] = ch.count()
	}
	waitFor(t, within, fmt.Sprintf("%d more acknowledged messages from each sender", more), func() error {
		var behind []string
		for i, ch := range chs {
			ch.failed(t)
			if got := ch.count() - base[i]; got < more {
				behind = append(behind, fmt.Sprintf("%s has %d", ch.who, got))
			}
		}
		if len(behind) > 0 {
			return fmt.Errorf("%s", strings.Join(behind, ", "))
		}
		return nil
	})
}

// stopped waits for ch's sender to return (after stop closed: its last
// SendMessage has 30s at most).
func (ch *chatter) stopped(t *testing.T) {
	t.Helper()
	waitFor(t, 40*time.Second, ch.who+"'s sender to stop", closedChan(ch.done))
}

// check verifies that every message ch sent was acknowledged once and is
// stored exactly once, as acknowledged, in the room's history.
func (ch *chatter) check(t *testing.T, history []ChatMessage) {
	t.Helper()
	ch.stopped(t)
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

// settled waits until the room's history, read through c, and the stream
// of every application in streams are the same messages, once each, in the
// same order, and returns that history. Call it once the senders stopped:
// the join entries of reconnecting clients may still be landing, so it
// compares again until they agree; a stream with a gap, a repeat or a
// message out of order never does, and fails at the deadline with the
// difference.
func settled(t *testing.T, c *ChatClient, room string, streams map[string]*recorder) []ChatMessage {
	t.Helper()
	names := slices.Sorted(maps.Keys(streams))
	var history []ChatMessage
	waitFor(t, 30*time.Second, "the room's history and "+strings.Join(names, "'s and ")+"'s streams to agree", func() error {
		history = fullHistory(t, c, room)
		if len(history) == 0 {
			return fmt.Errorf("room %s has no history", room)
		}
		for _, name := range names {
			if err := sameMessages(streams[name].messages(room), history); err != nil {
				return fmt.Errorf("%s's stream: %w", name, err)
			}
		}
		return nil
	})
	return history
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
	bobOpts := testOptions()
	bobTap := &netTap{}
	bobOpts.Dialer = bobTap.dialer()
	bob, bobEv := dialChat(t, addrs, bobOpts)
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
	progress(t, 20*time.Second, 20, a, b)

	// Hold a message in flight: the node is frozen when it is written, and
	// killed before it could read it.
	waitStopped(t, signal(t, node.Dir, syscall.SIGSTOP))
	inflight := make(chan error, 1)
	var held *ChatMessage
	go func() {
		m, err := bob.SendMessageWithID(ctx, "lobby", "held-at-crash", "sent while the node was frozen")
		held = m
		inflight <- err
	}()
	waitFor(t, 10*time.Second, "bob's client to write the held message to its socket", func() error {
		if !bobTap.wrote(`"clientMsgId":"held-at-crash"`) {
			return errors.New("not written yet")
		}
		return nil
	})
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
	progress(t, 20*time.Second, 20, a, b)
	close(stop)
	a.stopped(t)
	b.stopped(t)

	history := settled(t, alice, "lobby", map[string]*recorder{"alice": aliceEv, "bob": bobEv})
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
	t.Logf("%d messages in history; alice sent %d, bob %d", len(history), a.count(), b.count())
}
