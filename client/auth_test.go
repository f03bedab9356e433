package client

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/protocol"
)

const testSecret = "client-test-secret"

// token runs `holocron token` for a player token signed with testSecret.
func token(t *testing.T, player, name, ttl string) string {
	t.Helper()
	return tokenWith(t, testSecret, player, name, ttl)
}

// tokenWith runs `holocron token` for a player token signed with secret. A
// failing command fails the test, with what it printed.
func tokenWith(t *testing.T, secret, player, name, ttl string) string {
	t.Helper()
	cmd := exec.Command(holocronBin, "token", "-auth-secret", secret, "-player", player, "-name", name, "-ttl", ttl)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(cmd.Args, " "), err, &stdout, &stderr)
	}
	tok := strings.TrimSpace(stdout.String())
	if tok == "" {
		t.Fatalf("%s printed no token; stderr:\n%s", strings.Join(cmd.Args, " "), &stderr)
	}
	return tok
}

// TestAuthTokenFixesIdentity connects with a player token to a node that
// requires one: REST calls and the WebSocket carry it, and the socket's
// player and name are the token's.
func TestAuthTokenFixesIdentity(t *testing.T) {
	checkLeaks(t)
	tok := token(t, "p1", "Alice", "1h")
	node := startNode(t, "-auth-secret", testSecret)
	o := testOptions()
	o.Token = tok
	c, ev := dialChat(t, []string{node.Addr}, o)
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.CreateRoom(ctx, NewChatRoom{RoomID: "members", Name: "Members"}); err != nil {
		t.Fatalf("CreateRoom with a token: %v", err)
	}
	j, err := c.JoinRoom(ctx, "members", "p1", "Not Alice")
	if err != nil {
		t.Fatalf("JoinRoom: %v", err)
	}
	if len(j.Participants) != 1 || j.Participants[0] != "p1" {
		t.Fatalf("JoinRoom = %+v", j)
	}
	m, err := c.SendMessage(ctx, "members", "hi")
	if err != nil {
		t.Fatalf("SendMessage: %v", err)
	}
	if m.SenderID != "p1" || m.SenderName != "Alice" {
		t.Fatalf("message sent as %s %q, want the token's p1 Alice", m.SenderID, m.SenderName)
	}
	waitEvent(t, ev, 5*time.Second, func(e *NewMessage) bool { return e.Message.ID == m.ID })

	// Another player's id on a socket of p1's token is refused.
	other, _ := dialChat(t, []string{node.Addr}, o)
	_, err = other.JoinRoom(ctx, "members", "p2", "Bob")
	wantCode(t, err, protocol.CodeForbidden)

	g, _ := dialGame(t, []string{node.Addr}, o)
	if _, err := g.CreateRoom(ctx, NewGameRoom{RoomID: "g1", Name: "G", GameType: "social"}); err != nil {
		t.Fatalf("game CreateRoom with a token: %v", err)
	}
	gj, err := g.JoinRoom(ctx, "g1", "p1", "Someone")
	if err != nil || gj.GameState.Players[0].PlayerName != "Alice" {
		t.Fatalf("game JoinRoom = %+v, %v", gj, err)
	}
}

// TestAuthBadTokenFailsDial checks that a refused token makes DialChat fail
// at once with the server's code, instead of trying the next address: with
// the node given twice, the client opens one connection only.
func TestAuthBadTokenFailsDial(t *testing.T) {
	checkLeaks(t)
	otherSecret := tokenWith(t, "another-secret", "p1", "Alice", "1h")
	node := startNode(t, "-auth-secret", testSecret)
	cases := []struct {
		name, token string
	}{
		{"bad token", "not-a-jwt"},
		{"wrong secret", otherSecret},
		{"no token", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.Token = tc.token
			tap := &netTap{}
			o.Dialer = tap.dialer()
			c, err := DialChat(ctxT(t, 10*time.Second), []string{node.Addr, node.Addr}, o)
			if err == nil {
				c.Close(t.Context())
				t.Fatal("DialChat succeeded")
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != protocol.CodeUnauthorized || e.Status != 401 {
				t.Fatalf("DialChat error %v, want *Error unauthorized with HTTP 401", err)
			}
			if n := tap.dials(); n != 1 {
				t.Fatalf("DialChat opened %d connections, want 1: a 401 must stop it at the first address", n)
			}
		})
	}
}

// TestAuthExpiryStopsClient checks close code 4001: when the token lapses
// the server closes the socket with 4001 and the client stops for good,
// with an *Error event, a final Disconnected and no reconnect.
func TestAuthExpiryStopsClient(t *testing.T) {
	checkLeaks(t)
	node := startNode(t, "-auth-secret", testSecret)
	// Issued once the node is up, so that its short life (5s, counted in
	// whole seconds: 4 to 5) covers the room's setup, not the node's start,
	// with room to spare on a loaded machine.
	tok := token(t, "p1", "Alice", "5s")
	o := testOptions()
	o.Token = tok
	c, ev := dialChat(t, []string{node.Addr}, o)
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.CreateRoom(ctx, NewChatRoom{RoomID: "brief", Name: "Brief"}); err != nil {
		t.Fatalf("CreateRoom: %v", err)
	}
	if _, err := c.JoinRoom(ctx, "brief", "p1", "Alice"); err != nil {
		t.Fatalf("JoinRoom: %v", err)
	}
	// Events closes: the client stopped by itself.
	waitFor(t, 20*time.Second, "the client to stop after its 5s token expired (Events closed)", closedChan(ev.done))
	evs, _ := ev.snapshot()
	var sawError, sawFinal bool
	for _, e := range evs {
		switch e := e.(type) {
		case *Error:
			sawError = e.Code == protocol.CodeUnauthorized
		case *Disconnected:
			if e.Retrying || e.Code != protocol.CloseAuthFailed {
				t.Fatalf("Disconnected = %+v, want code 4001 and no retry", e)
			}
			sawFinal = true
		case *Reconnected:
			t.Fatalf("reconnected after 4001: %+v", e)
		}
	}
	if !sawError || !sawFinal {
		t.Fatalf("events %s: want an unauthorized *Error and a final Disconnected", describe(evs))
	}
	if !IsCode(c.Err(), protocol.CodeUnauthorized) {
		t.Fatalf("Err = %v, want unauthorized", c.Err())
	}
	if _, err := c.SendMessage(ctx, "brief", "still there?"); !IsCode(err, protocol.CodeUnauthorized) {
		t.Fatalf("SendMessage after 4001 = %v, want unauthorized", err)
	}
}
