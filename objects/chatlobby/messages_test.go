package chatlobby_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// TestSendMessage: a valid message goes to every socket of the room, the
// sender's own included; the sender's copy echoes requestId, and content is
// stored as sent.
func TestSendMessage(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	alice := e.dial()
	join(t, alice, "r", "alice")
	bob := e.dial()
	join(t, bob, "r", "bob")
	alice.Expect("user_joined")
	outsider := e.dial()
	e.createRoom("elsewhere", nil)
	join(t, outsider, "elsewhere", "carol")

	seq := 2 // the two join messages
	for _, tc := range []struct {
		name, content, requestID string
	}{
		{"plain", "hello", ""},
		{"with requestId", "hello again", "m1"},
		{"4000 code points", strings.Repeat("é", 4000), ""},
		{"surrounding white space kept", "  padded \n", "m2"},
		{"emoji", "👋🏽 hi", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": tc.content}
			if tc.requestID != "" {
				frame["requestId"] = tc.requestID
			}
			before := time.Now().UTC().Truncate(time.Millisecond)
			alice.Send(frame)
			seq++
			for _, c := range []*runtimetest.Conn{alice, bob} {
				f := c.Expect("new_message")
				wantReq := ""
				if c == alice {
					wantReq = tc.requestID
				}
				if f.Str("requestId") != wantReq {
					t.Fatalf("requestId %q, want %q", f.Str("requestId"), wantReq)
				}
				m := f.Obj("message")
				if m.Str("id") != msgID(seq) || m.Str("roomId") != "r" || m.Str("senderId") != "alice" ||
					m.Str("senderName") != nameOf("alice") || m.Str("content") != tc.content || m.Str("type") != "text" {
					t.Fatalf("message %v", m)
				}
				if _, has := m["clientMsgId"]; has {
					t.Fatalf("clientMsgId without one sent: %v", m)
				}
				ts, err := time.Parse(time.RFC3339Nano, m.Str("timestamp"))
				if err != nil || ts.Before(before) || !strings.HasSuffix(m.Str("timestamp"), "Z") || len(m.Str("timestamp")) != len("2006-01-02T15:04:05.000Z") {
					t.Fatalf("timestamp %q", m.Str("timestamp"))
				}
			}
			outsider.ExpectNothing()
		})
	}
	got := contents(e.history("r", "limit=5").List("messages"))
	if got[len(got)-1] != "👋🏽 hi" || got[len(got)-2] != "  padded \n" {
		t.Fatalf("stored %q", got)
	}
	if e.room("r").Str("lastActivity") < e.room("r").Str("createdAt") {
		t.Fatal("lastActivity before createdAt")
	}
}

// TestIdempotentSendStoresOnce: a send whose (playerId, clientMsgId) is in
// the kept history is not stored again; only the sender gets the stored
// message again.
func TestIdempotentSendStoresOnce(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	e.createRoom("s", nil)
	alice := e.dial()
	join(t, alice, "r", "alice")
	join(t, alice, "s", "alice")
	bob := e.dial()
	join(t, bob, "r", "bob")
	alice.Expect("user_joined")

	send := func(c *runtimetest.Conn, room, player, content, cmid, rid string) {
		c.Send(map[string]any{"type": "send_message", "roomId": room, "playerId": player, "content": content, "clientMsgId": cmid, "requestId": rid})
	}
	send(alice, "r", "alice", "once", "c1", "a")
	first := alice.Expect("new_message").Obj("message")
	if first.Str("clientMsgId") != "c1" {
		t.Fatalf("clientMsgId not echoed: %v", first)
	}
	bob.Expect("new_message")

	// The retry (even with other content) gets the stored message back, to
	// the sender only.
	send(alice, "r", "alice", "twice?", "c1", "b")
	again := alice.Expect("new_message")
	if again.Str("requestId") != "b" || fmt.Sprint(again.Obj("message")) != fmt.Sprint(first) {
		t.Fatalf("retry answered %v, want %v", again, first)
	}
	bob.ExpectNothing()

	// The same clientMsgId from another player, or in another room, is
	// another message.
	send(bob, "r", "bob", "bob's", "c1", "")
	alice.Expect("new_message")
	if m := bob.Expect("new_message").Obj("message"); m.Str("senderId") != "bob" {
		t.Fatalf("got %v", m)
	}
	send(alice, "s", "alice", "in s", "c1", "")
	if m := alice.Expect("new_message").Obj("message"); m.Str("roomId") != "s" {
		t.Fatalf("got %v", m)
	}
	wantStrings(t, "history of r", contents(e.history("r", "").List("messages")), []string{
		nameOf("alice") + " joined the room", nameOf("bob") + " joined the room", "once", "bob's",
	})
}

// TestHistoryKeepsNewestMessages: each room keeps its newest HistoryLimit
// messages; the write that adds one deletes the oldest, with its
// clientMsgId, which may then be sent again as a new message. The same
// holds once a busy room's clientMsgId index is held in memory (after 32
// messages in one instance), and after a restart reads it from storage
// again.
func TestHistoryKeepsNewestMessages(t *testing.T) {
	for _, warm := range []int{0, 40} {
		t.Run(fmt.Sprintf("after %d messages", warm), func(t *testing.T) { historyKeepsNewest(t, warm) })
	}
}

func historyKeepsNewest(t *testing.T, warm int) {
	e := start(t, chatlobby.Options{HistoryLimit: 3})
	e.createRoom("r", nil)
	e.createRoom("s", nil)
	c := e.dial()
	join(t, c, "r", "alice") // #1
	join(t, c, "s", "alice")
	for i := range warm { // #2..#warm+1
		say(c, "r", "alice", fmt.Sprint("w", i))
		c.Expect("new_message")
	}
	// msgID(n) below is the scenario's n-th message, after the warm-up.
	msgID := func(n int) string { return msgID(n + warm) }
	for i := 1; i <= 4; i++ { // #2..#5 (after the warm-up)
		c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": fmt.Sprint("m", i), "clientMsgId": fmt.Sprint("c", i)})
		c.Expect("new_message")
	}
	h := e.history("r", "limit=1000")
	wantStrings(t, "ids", ids(h.List("messages")), []string{msgID(3), msgID(4), msgID(5)})
	wantStrings(t, "contents", contents(h.List("messages")), []string{"m2", "m3", "m4"})
	if h["hasMore"] != false {
		t.Fatalf("hasMore %v", h["hasMore"])
	}
	// Other rooms are untouched.
	wantStrings(t, "s", contents(e.history("s", "").List("messages")), []string{nameOf("alice") + " joined the room"})

	// c1 was trimmed away: sending it again stores a new message.
	c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": "m1 again", "clientMsgId": "c1"})
	if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(6) {
		t.Fatalf("resent c1: %v, want a new message", m)
	}
	// c4 is kept: it is not.
	c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": "m4 again", "clientMsgId": "c4"})
	if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(5) {
		t.Fatalf("resent c4: %v, want the stored message", m)
	}
	wantStrings(t, "contents", contents(e.history("r", "").List("messages")), []string{"m3", "m4", "m1 again"})
	// Trimming what c1 first named keeps c1's new entry: a retry is still
	// the stored message.
	for i := 7; i <= 8; i++ {
		say(c, "r", "alice", fmt.Sprint("m", i))
		c.Expect("new_message")
	}
	c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": "m1 third", "clientMsgId": "c1"})
	if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(6) {
		t.Fatalf("resent c1 after a trim: %v, want the stored #6", m)
	}
	wantStrings(t, "contents", contents(e.history("r", "").List("messages")), []string{"m1 again", "m7", "m8"})
	// c4's message (#5) is out of the history but not deleted yet (the trim
	// deletes in bulk): c4 makes a new message, and the bulk trim that
	// later deletes #5 leaves the new one's index entry alone.
	c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": "m4 anew", "clientMsgId": "c4"})
	if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(9) {
		t.Fatalf("resent c4 out of the history: %v, want a new #9", m)
	}
	say(c, "r", "alice", "m10")
	c.Expect("new_message")
	c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": "m4 anew", "clientMsgId": "c4"})
	if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(9) {
		t.Fatalf("retried c4 after the trim: %v, want the stored #9", m)
	}

	// A new instance reads the index from storage: the same answers.
	e.s.Restart()
	c = e.dial()
	join(t, c, "r", "alice") // #11 alice left (the restart), #12 joined
	// #9 has fallen out of the history: c4 makes a new message, then
	// names it.
	for _, want := range []int{13, 13} {
		c.Send(map[string]any{"type": "send_message", "roomId": "r", "playerId": "alice", "content": "m4 after restart", "clientMsgId": "c4"})
		if m := c.Expect("new_message").Obj("message"); m.Str("id") != msgID(want) {
			t.Fatalf("c4 after a restart: %v, want #%d", m, want)
		}
	}
	wantStrings(t, "contents after restart", contents(e.history("r", "").List("messages"))[1:], []string{nameOf("alice") + " joined the room", "m4 after restart"})
}

// TestHistorySelection: get_history and GET /messages pick the same pages:
// no bound the newest, before the newest older, after the oldest newer;
// bounds need not exist; hasMore looks beyond the page in its direction.
func TestHistorySelection(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	c := e.dial()
	join(t, c, "r", "alice") // #1 is the join message
	for i := 2; i <= 10; i++ {
		say(c, "r", "alice", fmt.Sprint("m", i))
		c.Expect("new_message")
	}
	seqs := func(from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, msgID(i))
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		query   map[string]any
		want    []string
		hasMore bool
	}{
		{"default limit: all of them", nil, seqs(1, 10), false},
		{"newest 3", map[string]any{"limit": 3}, seqs(8, 10), true},
		{"newest 10 exactly", map[string]any{"limit": 10}, seqs(1, 10), false},
		{"before 5", map[string]any{"limit": 2, "before": msgID(5)}, seqs(3, 4), true},
		{"before 3, reaching the start", map[string]any{"limit": 5, "before": msgID(3)}, seqs(1, 2), false},
		{"before 3, exactly to the start", map[string]any{"limit": 2, "before": msgID(3)}, seqs(1, 2), false},
		{"before the first", map[string]any{"before": msgID(1)}, nil, false},
		{"before empty string", map[string]any{"before": ""}, nil, false},
		{"before a bound after every id", map[string]any{"limit": 2, "before": "z"}, seqs(9, 10), true},
		{"before a bound between ids", map[string]any{"limit": 2, "before": msgID(5) + "x"}, seqs(4, 5), true},
		{"after 5", map[string]any{"limit": 2, "after": msgID(5)}, seqs(6, 7), true},
		{"after 7, reaching the end", map[string]any{"limit": 5, "after": msgID(7)}, seqs(8, 10), false},
		{"after 8, exactly to the end", map[string]any{"limit": 2, "after": msgID(8)}, seqs(9, 10), false},
		{"after the last", map[string]any{"after": msgID(10)}, nil, false},
		{"after empty string: the oldest", map[string]any{"limit": 3, "after": ""}, seqs(1, 3), true},
		{"after a bound between ids", map[string]any{"limit": 1, "after": msgID(5) + "x"}, seqs(6, 6), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frame := with(map[string]any{"type": "get_history", "roomId": "r", "requestId": "h"}, flatten(tc.query)...)
			c.Send(frame)
			f := c.Expect("message_history")
			if f.Str("roomId") != "r" || f.Str("requestId") != "h" || f["hasMore"] != tc.hasMore {
				t.Fatalf("websocket: %v, want hasMore %v", f, tc.hasMore)
			}
			if _, has := f["messages"].([]any); !has {
				t.Fatalf("messages is not an array: %v", f)
			}
			wantStrings(t, "websocket ids", ids(f.List("messages")), tc.want)

			h := e.history("r", query(tc.query))
			if h.Str("roomId") != "r" || h["hasMore"] != tc.hasMore {
				t.Fatalf("HTTP: %v, want hasMore %v", h, tc.hasMore)
			}
			wantStrings(t, "HTTP ids", ids(h.List("messages")), tc.want)
		})
	}
}

func flatten(m map[string]any) []any {
	var kv []any
	for k, v := range m {
		kv = append(kv, k, v)
	}
	return kv
}

func query(m map[string]any) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+fmt.Sprint(v))
	}
	return strings.Join(parts, "&")
}

// TestSinceResume: join_room with since returns every kept message newer
// than since, and says whether some of those were already trimmed.
func TestSinceResume(t *testing.T) {
	e := start(t, chatlobby.Options{HistoryLimit: 5})
	e.createRoom("r", nil)
	writer := e.dial()
	join(t, writer, "r", "writer") // #1
	reader := e.dial()
	join(t, reader, "r", "reader") // #2
	writer.Expect("user_joined")
	for i := 3; i <= 9; i++ { // #3..#9; kept: #5..#9
		say(writer, "r", "writer", fmt.Sprint("m", i))
		writer.Expect("new_message")
		reader.Expect("new_message")
	}
	seqs := func(from, to int) []string {
		var out []string
		for i := from; i <= to; i++ {
			out = append(out, msgID(i))
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		since     string
		want      []string
		truncated bool
	}{
		{"up to date", msgID(9), nil, false},
		{"missed two", msgID(7), seqs(8, 9), false},
		{"missed from the oldest kept", msgID(4), seqs(5, 9), false},
		{"missed trimmed ones", msgID(3), seqs(5, 9), true},
		{"since a bound between trimmed ids", msgID(3) + "x", seqs(5, 9), true},
		{"from the start", "", seqs(5, 9), true},
		{"since an unknown later id", "z", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The reader reconnects on a new socket (the old one stays, so
			// the rejoin adds no message of its own).
			c := e.dial()
			defer c.WS.Close()
			c.Send(with(joinFrame("r", "reader"), "since", tc.since, "requestId", "j"))
			if f := c.Expect("room_joined"); f.Str("requestId") != "j" {
				t.Fatalf("room_joined %v", f)
			}
			h := c.Expect("message_history")
			if h.Str("roomId") != "r" || h.Str("since") != tc.since || h["truncated"] != tc.truncated ||
				h["hasMore"] != false || h.Str("requestId") != "j" {
				t.Fatalf("message_history %v, want truncated %v", h, tc.truncated)
			}
			if _, ok := h["messages"].([]any); !ok {
				t.Fatalf("messages is not an array: %v", h)
			}
			wantStrings(t, "resumed ids", ids(h.List("messages")), tc.want)
			c.ExpectNothing()
		})
	}
	writer.ExpectNothing()
	reader.ExpectNothing()
}

// TestJoinWithSinceIncludesOwnJoin: a player's first join with since gets
// the history as it stands after the join, their join message included.
func TestJoinWithSinceIncludesOwnJoin(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	c := e.dial()
	c.Send(with(joinFrame("r", "alice"), "since", ""))
	c.Expect("room_joined")
	h := c.Expect("message_history")
	wantStrings(t, "ids", ids(h.List("messages")), []string{msgID(1)})
	if h["truncated"] != false {
		t.Fatalf("message_history %v", h)
	}
	c.Expect("user_joined")
}

// TestHistoryPageIsBoundedInBytes: a page of long messages stops at about
// 1 MiB and says hasMore, so it never swamps a socket; paging on with
// before reaches the rest.
func TestHistoryPageIsBoundedInBytes(t *testing.T) {
	e := start(t, chatlobby.Options{})
	e.createRoom("r", nil)
	c := e.dial()
	join(t, c, "r", "alice")
	long := strings.Repeat("x", 4000)
	const n = 300
	for i := 0; i < n; i++ {
		say(c, "r", "alice", long)
	}
	for i := 0; i < n; i++ {
		c.Expect("new_message")
	}
	total, pages := 0, 0
	before := ""
	for ; ; pages++ {
		frame := map[string]any{"type": "get_history", "roomId": "r", "limit": 1000}
		if before != "" {
			frame["before"] = before
		}
		c.Send(frame)
		h := c.Expect("message_history")
		msgs := h.List("messages")
		if len(mustJSON(msgs)) > 1<<20+5000 {
			t.Fatalf("page of %d bytes", len(mustJSON(msgs)))
		}
		total += len(msgs)
		if h["hasMore"] != true {
			break
		}
		if pages > 0 && len(msgs) == 0 {
			t.Fatal("empty page with hasMore")
		}
		before = ids(msgs)[0]
	}
	if total != n+1 || pages == 0 {
		t.Fatalf("paged through %d messages in %d+1 pages, want %d in more than one", total, pages, n+1)
	}
}
