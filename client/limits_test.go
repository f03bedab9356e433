package client

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/holocron-run/holocron/protocol"
)

// TestRateLimitedRequestsAreRetried runs a node whose per-socket rate
// limit is below the client's pace: the server drops frames with
// rate_limited (no requestId), and the client slows down and re-sends what
// is waiting, so every message is acknowledged and stored once.
func TestRateLimitedRequestsAreRetried(t *testing.T) {
	checkLeaks(t)
	node := startNode(t, "-rate-limit", "20", "-rate-burst", "10")
	c, ev := dialChat(t, []string{node.Addr}, testOptions())
	ctx := ctxT(t, 60*time.Second)
	if _, err := c.CreateRoom(ctx, NewChatRoom{RoomID: "busy", Name: "Busy"}); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if _, err := c.JoinRoomSince(ctx, "busy", "p1", "Pat", ""); err != nil {
		t.Fatalf("JoinRoomSince: %v", err)
	}
	const n = 60
	var wg sync.WaitGroup
	acks := make([]*ChatMessage, n)
	for i := range n {
		wg.Go(func() {
			m, err := c.SendMessage(ctx, "busy", fmt.Sprint("burst ", i))
			if err != nil {
				t.Errorf("SendMessage %d: %v", i, err)
			}
			acks[i] = m
		})
	}
	wg.Wait()
	waitEvent(t, ev, time.Second, func(e *Error) bool { return e.Code == protocol.CodeRateLimited })
	history := settled(t, c, "busy", map[string]*recorder{"p1": ev})
	count := map[string]int{}
	for _, m := range history {
		count[m.ClientMsgID]++
	}
	for i, a := range acks {
		if a != nil && count[a.ClientMsgID] != 1 {
			t.Errorf("message %d stored %d times", i, count[a.ClientMsgID])
		}
	}
}

// TestPolicyCloseReconnectsLater checks close code 4008 (too many sockets):
// the client is refused, keeps trying with backoff, and gets in once a
// place is free.
func TestPolicyCloseReconnectsLater(t *testing.T) {
	checkLeaks(t)
	node := startNode(t, "-max-sockets-per-ip", "1")
	first, _ := dialChat(t, []string{node.Addr}, testOptions())
	second, ev := dialChat(t, []string{node.Addr}, testOptions())
	// Each attempt is upgraded, then closed with 4008: a few of them show
	// the client keeps trying.
	const refusals = 3
	evs := ev.waitFor(t, 10*time.Second, fmt.Sprintf("%d refused connection attempts", refusals), func(evs []Event) bool {
		return len(disconnects(evs)) >= refusals
	})
	for i, d := range disconnects(evs)[:refusals] {
		if d.Code != protocol.ClosePolicy || !d.Retrying {
			t.Fatalf("attempt %d: Disconnected = %+v, want 4008 and retrying", i+1, d)
		}
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := ctxT(t, 10*time.Second)
	for {
		// The reconnect may still be refused while the first socket's
		// close is processed; a ping is answered only once it got in.
		if _, err := second.Ping(ctx); err == nil {
			break
		} else if ctx.Err() != nil {
			t.Fatalf("Ping after the place was freed: %v", err)
		}
	}
}

// disconnects lists the Disconnected events among evs.
func disconnects(evs []Event) []*Disconnected {
	var out []*Disconnected
	for _, e := range evs {
		if d, ok := e.(*Disconnected); ok {
			out = append(out, d)
		}
	}
	return out
}
