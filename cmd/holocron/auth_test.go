package main

import (
	"errors"
	"fmt"
	holocron "github.com/holocron-run/holocron/node"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/testenv"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

func TestAuthenticatedServer(t *testing.T) {
	secret := []byte("test-secret")
	n := startNode(t, t.TempDir(), "-auth-secret", string(secret), "-max-rooms", "3")
	tok := func(player, name string, ttl time.Duration) string {
		s, err := holocron.IssueToken(secret, player, name, ttl, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice, bob := tok("p1", "Alice", time.Hour), tok("p2", "Bob", time.Hour)
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

	// Refusals before anything reaches an object.
	expired, _ := holocron.IssueToken(secret, "p1", "Alice", time.Minute, time.Now().Add(-time.Hour))
	forged, _ := holocron.IssueToken([]byte("guess"), "p1", "Alice", time.Hour, time.Now())
	for _, tc := range []struct {
		name, path string
		header     http.Header
		wantCode   string
	}{
		{"no token, websocket", "/api/lobby/websocket", nil, "unauthorized"},
		{"bad signature", "/api/lobby/websocket", bearer(forged), "unauthorized"},
		{"expired", "/api/lobby/websocket", bearer(expired), "token_expired"},
		{"expired in query", "/api/room-manager/websocket?token=" + expired, nil, "token_expired"},
		{"no token, API", "/api/lobby/rooms", nil, "unauthorized"},
	} {
		_, resp, err := websocket.DefaultDialer.Dial(n.wsURL(tc.path), tc.header)
		if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s: err %v, response %v; want HTTP 401", tc.name, err, resp)
		}
		var body struct{ Code string }
		decodeBody(t, resp, &body)
		if body.Code != tc.wantCode {
			t.Errorf("%s: code %q, want %q", tc.name, body.Code, tc.wantCode)
		}
	}
	if code := n.doWith("POST", "/api/lobby/rooms", nil, map[string]any{"roomId": "x", "name": "x"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("create room without token: %d, want 401", code)
	}

	// With tokens: the API works, identities come from the tokens.
	if code := n.doWith("POST", "/api/lobby/rooms", bearer(alice), map[string]any{"roomId": "pub", "name": "Public"}, nil); code != 201 {
		t.Fatalf("create room with token: %d", code)
	}
	if code := n.doWith("POST", "/api/lobby/rooms", bearer(alice), map[string]any{"roomId": "priv", "name": "Private",
		"isPrivate": true, "allowedPlayers": []string{"p1"}}, nil); code != 201 {
		t.Fatalf("create private room: %d", code)
	}
	a := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), bearer(alice))
	b := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket?token="+bob), nil)

	// Bob's token, Alice's playerId: refused.
	b.Send(map[string]any{"type": "join_room", "roomId": "pub", "playerId": "p1", "playerName": "Bob"})
	if f := b.Expect("join_failed"); f.Str("code") != "forbidden" {
		t.Fatalf("join as another player: %v, want join_failed forbidden", f)
	}
	// The name comes from the token, whatever the frame says.
	a.Send(map[string]any{"type": "join_room", "roomId": "pub", "playerId": "p1", "playerName": "Mallory"})
	until(a, "room_joined")
	if f := until(a, "user_joined"); f.Str("playerName") != "Alice" {
		t.Fatalf("joined as %q, want the token's name Alice", f.Str("playerName"))
	}
	a.Send(map[string]any{"type": "send_message", "roomId": "pub", "playerId": "p2", "content": "spoof"})
	if f := until(a, "error"); f.Str("code") != "forbidden" {
		t.Fatalf("send as another player: %v, want forbidden", f)
	}
	// The private room admits only its allowed players.
	b.Send(map[string]any{"type": "join_room", "roomId": "priv", "playerId": "p2", "playerName": "Bob"})
	if f := until(b, "join_failed"); f.Str("code") != "forbidden" {
		t.Fatalf("private room, other player: %v, want join_failed forbidden", f)
	}
	a.Send(map[string]any{"type": "join_room", "roomId": "priv", "playerId": "p1", "playerName": "Alice"})
	until(a, "room_joined")

	// Limits: rooms per lobby.
	if code := n.doWith("POST", "/api/lobby/rooms", bearer(alice), map[string]any{"roomId": "third", "name": "3"}, nil); code != 201 {
		t.Fatalf("third room: %d", code)
	}
	var lim struct{ Code string }
	if code := n.doWith("POST", "/api/lobby/rooms", bearer(alice), map[string]any{"roomId": "fourth", "name": "4"}, &lim); code != http.StatusTooManyRequests || lim.Code != "limit_exceeded" {
		t.Fatalf("fourth room with -max-rooms 3: %d %q, want 429 limit_exceeded", code, lim.Code)
	}

	// A socket whose token lapses is closed with 4001.
	short := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), bearer(tok("p3", "Carol", 2*time.Second)))
	short.WS.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := short.WS.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 {
			t.Fatalf("socket with an expiring token ended with %v, want close 4001", err)
		}
		break
	}
}

func TestSocketsPerAddressLimit(t *testing.T) {
	n := startNode(t, t.TempDir(), "-max-sockets-per-ip", "2")
	first := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), nil)
	second := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), nil)
	third := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), nil)
	third.WS.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := third.WS.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4008 {
		t.Fatalf("third socket from one address: %v, want close 4008", err)
	}
	// The first two still work, and a slot freed is usable again.
	first.Sync()
	second.Sync()
	first.WS.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		again := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), nil)
		again.Send(map[string]any{"type": "ping"})
		again.WS.SetReadDeadline(time.Now().Add(5 * time.Second))
		var f runtimetest.Frame
		if err := again.WS.ReadJSON(&f); err == nil && f.Type() == "pong" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no socket admitted after one closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSocketsPerPlayerLimit runs a node with player tokens and
// -max-sockets-per-player: the player is the token's subject, and its
// sockets beyond the limit are upgraded and closed at once with 4008 "too
// many sockets", while another player's sockets are not affected; a socket
// closed frees its place once the node has seen it end.
func TestSocketsPerPlayerLimit(t *testing.T) {
	const limit = 2
	secret := []byte("per-player-secret")
	n := startNode(t, t.TempDir(), "-auth-secret", string(secret), "-max-sockets-per-player", strconv.Itoa(limit))
	as := func(player string) http.Header {
		tok, err := holocron.IssueToken(secret, player, "Player "+player, time.Hour, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return http.Header{"Authorization": {"Bearer " + tok}}
	}
	p1, p2 := as("p1"), as("p2")
	dial := func(h http.Header) *runtimetest.Conn {
		return runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), h)
	}
	// served checks that c is open and answered by the object: a ping
	// gets its pong, with nothing before it.
	served := func(what string, c *runtimetest.Conn) {
		t.Helper()
		c.Send(map[string]any{"type": "ping"})
		f, err := c.TryRead()
		if err != nil || f.Type() != "pong" {
			t.Fatalf("%s: ping answered with %v, %v; want pong", what, f, err)
		}
	}
	refused := func(what string, c *runtimetest.Conn) {
		t.Helper()
		_, err := c.TryRead()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4008 || ce.Text != "too many sockets" {
			t.Fatalf("%s: first read %v, want close 4008 \"too many sockets\"", what, err)
		}
		c.WS.Close()
	}
	open := func() float64 {
		v, ok := metricValue(t, n.get("/metrics"), "holocron_websockets_open")
		if !ok {
			t.Fatal("no holocron_websockets_open on /metrics")
		}
		return v
	}
	// The node counts a socket until it has ended (a refused one too):
	// wait for the open sockets gauge to show want.
	openSockets := func(want int, why string) {
		t.Helper()
		waitFor(t, 10*time.Second, fmt.Sprintf("%d open sockets on the node (%s)", want, why), func() error {
			if got := open(); got != float64(want) {
				return fmt.Errorf("holocron_websockets_open is %v", got)
			}
			return nil
		})
	}

	var mine []*runtimetest.Conn
	for i := range limit {
		c := dial(p1)
		served(fmt.Sprintf("p1's socket %d of %d", i+1, limit), c)
		mine = append(mine, c)
	}
	refused(fmt.Sprintf("p1's socket %d with -max-sockets-per-player %d", limit+1, limit), dial(p1))
	for i, c := range mine {
		served(fmt.Sprintf("p1's socket %d after the refusal", i+1), c)
	}
	// Another player is not affected: it gets its own limit's worth.
	for i := range limit {
		served(fmt.Sprintf("p2's socket %d while p1 is at the limit", i+1), dial(p2))
	}
	openSockets(2*limit, "p1's and p2's, the refused socket gone")

	// A socket of p1 closed: once the node has seen it end, p1 may open
	// one again, and only one.
	mine[0].WS.Close()
	openSockets(2*limit-1, "p1's first socket closed")
	served("p1's socket opened after one closed", dial(p1))
	for i, c := range mine[1:] {
		served(fmt.Sprintf("p1's remaining socket %d", i+2), c)
	}
	refused("p1's socket beyond the limit again", dial(p1))
}

// waitFor is testenv.WaitFor.
var waitFor = testenv.WaitFor

// TestSpoofedForwardingHeadersDoNotLiftTheAddressLimit: a client that
// claims to be a forwarding node (the hop header) with made-up
// X-Forwarded-For addresses is still counted by its own address: those
// headers mean something only on the peer link.
func TestSpoofedForwardingHeadersDoNotLiftTheAddressLimit(t *testing.T) {
	n := startNode(t, t.TempDir(), "-max-sockets-per-ip", "2")
	var admitted, refused int
	for i := range 5 {
		h := http.Header{}
		h.Set(cluster.HopHeader, "n9")
		h.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
		c := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), h)
		c.Send(map[string]any{"type": "ping"})
		c.WS.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f runtimetest.Frame
		err := c.WS.ReadJSON(&f)
		var ce *websocket.CloseError
		switch {
		case err == nil && f.Type() == "pong":
			admitted++
		case errors.As(err, &ce) && ce.Code == 4008:
			refused++
		default:
			t.Fatalf("socket %d: frame %v, err %v", i, f, err)
		}
	}
	if admitted != 2 || refused != 3 {
		t.Fatalf("%d sockets admitted, %d refused with 4008; want 2 and 3", admitted, refused)
	}
}
