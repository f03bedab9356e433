package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/protocol"
)

// TestAdminEndpointsNeedTheAdminToken: with -admin-token every operator
// endpoint (admin API, backup, profiler) refuses a request without the
// token or with a wrong one, and serves it with the token; the public API
// stays open.
func TestAdminEndpointsNeedTheAdminToken(t *testing.T) {
	const token = "operator-secret"
	// From a file, as a production node gets it (-admin-token itself is
	// what every test cluster uses).
	file := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n := startNode(t, t.TempDir(), "-admin-token-file", file)
	createRoom(t, n, "r")
	if code := n.do("GET", "/api/lobby/rooms/r", nil, nil); code != 200 {
		t.Errorf("the public API with no token: HTTP %d, want 200", code)
	}
	for _, tc := range adminRoutes() {
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

// adminRoute is an operator endpoint and its status when allowed (on a
// node where ChatLobby/main exists); DELETE of main comes last.
type adminRoute struct {
	method, path string
	want         int
}

func adminRoutes() []adminRoute {
	id := strings.Repeat("ab", 32)
	return []adminRoute{
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
}

// TestAdminWithoutATokenAnswersOnlyLocalRequests: a node started the
// README's way (no -admin-token) serves every operator endpoint to this
// machine at a loopback name, and refuses (403, a typed error) the same
// request naming another host, as a page whose DNS name was rebound to
// 127.0.0.1 would; a request from another machine is refused the same way
// (TestLocalRequest covers the remote address). The public API stays open.
func TestAdminWithoutATokenAnswersOnlyLocalRequests(t *testing.T) {
	n := startNode(t, t.TempDir())
	createRoom(t, n, "r")
	if code := n.doWith("GET", "/api/lobby/rooms/r", http.Header{"Host": {"chat.example"}}, nil, nil); code != 200 {
		t.Errorf("the public API at another host name: HTTP %d, want 200", code)
	}
	for _, tc := range adminRoutes() {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var refused map[string]string // a typed error: code, message
			if code := n.doWith(tc.method, tc.path, http.Header{"Host": {"rebound.example:8080"}}, nil, &refused); code != http.StatusForbidden || refused["code"] != protocol.CodeForbidden || !strings.Contains(refused["message"], "-admin-token") {
				t.Errorf("at host rebound.example: HTTP %d %+v, want 403 forbidden naming -admin-token", code, refused)
			}
			if code := n.doWith(tc.method, tc.path, http.Header{"Host": {"localhost"}}, nil, nil); code != tc.want {
				t.Errorf("at localhost: HTTP %d, want %d", code, tc.want)
			}
		})
	}
}

// TestAdminRefusesCrossSiteRequests: a browser's request from another
// site that would change something (a form posted to the open admin API
// of a developer's machine) is refused, whatever the token; so is a body
// an HTML form can send. The dashboard's own requests and the CLI's pass.
func TestAdminRefusesCrossSiteRequests(t *testing.T) {
	n := startNode(t, t.TempDir())
	createRoom(t, n, "r")
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"a page of another site", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, http.StatusForbidden},
		{"an old browser, Origin only", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden},
		{"a form body", http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, http.StatusUnsupportedMediaType},
		{"a text/plain body", http.Header{"Content-Type": {"text/plain; charset=utf-8"}}, http.StatusUnsupportedMediaType},
		{"the dashboard (same origin)", http.Header{"Origin": {"http://" + n.addr}, "Sec-Fetch-Site": {"same-origin"}}, http.StatusOK},
		{"the CLI (no Origin)", http.Header{"Content-Type": {"application/json"}}, http.StatusOK},
	} {
		if code := n.doWith("POST", "/admin/objects/ChatLobby/main/move", tc.header, nil, nil); code != tc.want {
			t.Errorf("%s: POST move: HTTP %d, want %d", tc.name, code, tc.want)
		}
	}
	// Reads are not state changes: a cross-site GET is answered (the
	// browser keeps the answer from the page).
	if code := n.doWith("GET", "/admin/objects", http.Header{"Origin": {"https://evil.example"}, "Sec-Fetch-Site": {"cross-site"}}, nil, nil); code != http.StatusOK {
		t.Errorf("cross-site GET: HTTP %d, want 200", code)
	}
}

// TestObjectNamesAreBounded: the public routes take object names of at
// most 128 bytes of printable UTF-8, and answer anything else 400
// invalid_field without creating an object; other clients stay served.
func TestObjectNamesAreBounded(t *testing.T) {
	n := startNode(t, t.TempDir())
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/api/lobbies/" + strings.Repeat("x", 128) + "/rooms", 200},
		{"/api/lobbies/" + strings.Repeat("x", 129) + "/rooms", 400},
		{"/api/lobbies/a%01b/rooms", 400},
		{"/api/leaderboards/" + strings.Repeat("y", 129) + "/scores", 400},
		{"/objects/ChatLobby/" + strings.Repeat("z", 129) + "/rooms", 400},
	} {
		var body map[string]any
		if code := n.do("GET", tc.path, nil, &body); code != tc.want || (tc.want == 400 && body["code"] != "invalid_field") {
			t.Errorf("GET %.60s…: HTTP %d %v, want %d", tc.path, code, body, tc.want)
		}
	}
	var list map[string]any
	if code := n.do("GET", "/admin/objects", nil, &list); code != 200 {
		t.Fatalf("list objects: %d", code)
	}
	objs, _ := list["objects"].([]any)
	for _, o := range objs {
		if name, _ := o.(map[string]any)["name"].(string); len(name) > 128 {
			t.Errorf("an object named %d bytes was stored", len(name))
		}
	}
	createRoom(t, n, "still-served")
}

// TestShutdownDoesNotWaitForAHalfSentBody: a graceful shutdown answers a
// request whose body is still on its way 503 unavailable at once, instead
// of waiting out its body timeout (10 s, which would answer it 408), and
// the node exits 0.
func TestShutdownDoesNotWaitForAHalfSentBody(t *testing.T) {
	n := startNode(t, t.TempDir())
	conn, err := net.DialTimeout("tcp", n.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/lobby/rooms HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", n.addr)
	// Another request answered after it: the node is serving, and the
	// stalled one (sent first) is waiting in its body read.
	createRoom(t, n, "after")
	answered := make(chan *http.Response, 1)
	go func() {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Errorf("the stalled request got no answer: %v", err)
			answered <- nil
			return
		}
		resp.Body.Close()
		answered <- resp
	}()
	if code := n.stop(); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if resp := <-answered; resp != nil && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("the stalled request: %s, want 503 (the shutdown stops waiting for its body)", resp.Status)
	}
}
