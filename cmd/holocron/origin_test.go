package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/protocol"
)

// TestSocketOrigins: a WebSocket handshake from a page of another origin
// is refused (403, a typed error) unless -allowed-origins lists it; the
// node's own pages and clients that are not browsers (no Origin) connect;
// other clients keep being served.
func TestSocketOrigins(t *testing.T) {
	n := startNode(t, t.TempDir(), "-allowed-origins", "https://game.example, http://localhost:3000")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + n.addr, true},
		{"https://game.example", true},
		{"HTTPS://GAME.EXAMPLE", true},
		{"http://localhost:3000", true},
		{"https://evil.example", false},
		{"https://game.example.evil.example", false},
		{"http://localhost:3001", false},
		{"null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(n.wsURL("/api/lobby/websocket"), h)
		if tc.ok {
			if err != nil {
				t.Errorf("origin %q: refused (%v), want a socket", tc.origin, err)
				continue
			}
			ws.WriteJSON(map[string]any{"type": "ping"})
			var f map[string]any
			if err := ws.ReadJSON(&f); err != nil || f["type"] != "pong" {
				t.Errorf("origin %q: ping answered %v %v", tc.origin, f, err)
			}
			ws.Close()
			continue
		}
		if err == nil {
			ws.Close()
			t.Errorf("origin %q: a socket, want 403", tc.origin)
			continue
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("origin %q: %v, want 403", tc.origin, err)
			continue
		}
		raw, _ := io.ReadAll(resp.Body)
		var body map[string]string
		if json.Unmarshal(raw, &body) != nil || body["code"] != protocol.CodeForbidden {
			t.Errorf("origin %q: body %q, want a forbidden error", tc.origin, raw)
		}
	}
}
