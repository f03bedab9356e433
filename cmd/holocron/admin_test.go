package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestAdminEndpointsNeedTheAdminToken: with -admin-token every operator
// endpoint (admin API, backup, profiler) refuses a request without the
// token or with a wrong one, and serves it with the token; the public API
// stays open.
func TestAdminEndpointsNeedTheAdminToken(t *testing.T) {
	const token = "operator-secret"
	n := startNode(t, t.TempDir(), "-admin-token", token)
	createRoom(t, n, "r")
	if code := n.do("GET", "/api/lobby/rooms/r", nil, nil); code != 200 {
		t.Errorf("the public API with no token: HTTP %d, want 200", code)
	}
	id := strings.Repeat("ab", 32)
	tests := []struct {
		method, path string
		want         int // with the token
	}{
		{"GET", "/admin/overview", 200},
		{"GET", "/admin/node", 200},
		{"GET", "/admin/cluster", 200},
		{"GET", "/admin/objects", 200},
		{"GET", "/admin/objects/local", 200},
		{"GET", "/admin/objects/ChatLobby/main", 200},
		{"GET", "/admin/objects/ChatLobby/nobody", 404},
		{"POST", "/admin/objects/ChatLobby/main/move", 200},
		{"GET", "/admin/export/" + id, 404},
		{"POST", "/admin/import/" + id, 400},
		{"POST", "/admin/backup", 200},
		{"GET", "/debug/pprof/", 200},
		{"GET", "/debug/pprof/symbol", 200},
		{"DELETE", "/admin/objects/ChatLobby/other", 404},
		{"DELETE", "/admin/objects/ChatLobby/main", 200},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			for _, h := range []http.Header{nil, {"Authorization": {"Bearer wrong"}}} {
				if code := n.doWith(tc.method, tc.path, h, nil, nil); code != http.StatusUnauthorized {
					t.Errorf("with header %v: HTTP %d, want 401", h, code)
				}
			}
			if code := n.doWith(tc.method, tc.path, http.Header{"Authorization": {"Bearer " + token}}, nil, nil); code != tc.want {
				t.Errorf("with the token: HTTP %d, want %d", code, tc.want)
			}
		})
	}
}
