package web

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// newMux mounts Handler the way cmd/holocron does: GET + every entry of Paths.
func newMux() *http.ServeMux {
	mux := http.NewServeMux()
	h := Handler()
	for _, p := range Paths {
		mux.Handle("GET "+p, h)
	}
	return mux
}

func get(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp, string(body)
}

// TestHandlerContentTypes: every page and asset is served on its path with
// the content type a browser needs (ES modules are refused under nosniff
// unless served as JavaScript).
func TestHandlerContentTypes(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	cases := []struct{ path, ctype, contains string }{
		{"/", "text/html; charset=utf-8", `id="name-screen"`},
		{"/admin", "text/html; charset=utf-8", `id="nodes"`},
		{"/holocron.js", "text/javascript; charset=utf-8", "export function connectChat"},
		{"/assets/app.js", "text/javascript; charset=utf-8", `from "/holocron.js"`},
		{"/assets/admin.js", "text/javascript; charset=utf-8", "/admin/overview"},
		{"/assets/app.css", "text/css; charset=utf-8", ".messages"},
		{"/assets/admin.css", "text/css; charset=utf-8", ".node-card"},
		{"/assets/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		resp, body := get(t, srv, c.path)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d", c.path, resp.StatusCode)
			continue
		}
		if got := resp.Header.Get("Content-Type"); got != c.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", c.path, got, c.ctype)
		}
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s: X-Content-Type-Options %q", c.path, got)
		}
		if !strings.Contains(body, c.contains) {
			t.Errorf("GET %s: body lacks %q", c.path, c.contains)
		}
	}
	for _, path := range []string{"/assets/nope.js", "/assets/img/none.png"} {
		if resp, _ := get(t, srv, path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestClientModuleExports: holocron.js is a module exposing the documented
// API, with every PROTOCOL.md request type and close code handled.
func TestClientModuleExports(t *testing.T) {
	src := readStatic(t, "holocron.js")
	for _, want := range []string{
		"export function connectChat", "export function connectGame",
		"export class ChatClient", "export class GameClient", "export class HolocronClient",
		"export class HolocronError", "export const CloseCode", "export function newClientMsgId",
		"export function decodeTokenClaims",
		// every client frame of PROTOCOL.md
		`"join_room"`, `"leave_room"`, `"send_message"`, `"get_history"`, `"ping"`,
		`"start_game"`, `"update_score"`, `"game_action"`, `"end_game"`,
		// reconnect policy and token transport
		"1001", "1012", "1013", "4001", "4008", `"?token="`, `"Bearer "`, "since", "clientMsgId",
	} {
		if !strings.Contains(src, want) {
			t.Errorf("holocron.js lacks %s", want)
		}
	}
	if strings.Contains(src, "require(") {
		t.Error("holocron.js must be a plain ES module (no require)")
	}
}

var (
	idAttr    = regexp.MustCompile(`\sid="([^"]+)"`)
	dollarRef = regexp.MustCompile(`\$\("([A-Za-z0-9_-]+)"\)`)
	assetRef  = regexp.MustCompile(`(?:src|href)="(/[^"#]*)"`)
)

// TestPagesWellFormed: element ids are unique, every id the scripts look
// up (and the browser test uses) exists, and every local script, style and
// icon a page references is served.
func TestPagesWellFormed(t *testing.T) {
	srv := httptest.NewServer(newMux())
	defer srv.Close()
	pages := []struct {
		page, script string
		ids          []string // used by browser_test.go
	}{
		{"index.html", "assets/app.js", []string{
			"name-screen", "name-input", "name-submit", "app-screen", "conn-status", "tab-chat", "tab-games",
			"new-chat-name", "new-chat-submit", "chat-room-list", "chat-view", "message-list", "composer-input",
			"composer-send", "participant-list", "new-game-name", "new-game-duration", "new-game-submit",
			"game-room-list", "game-view", "game-status", "game-clock", "game-players", "start-game",
			"score-plus5", "score-input", "score-set", "final-scoreboard", "final-rows", "final-reason", "toasts",
		}},
		{"admin.html", "assets/admin.js", []string{
			"admin-node", "admin-mode", "summary-rate", "members-body", "nodes", "leaders", "token-dialog", "token-input",
			"token-submit", "token-error", "tab-objects", "objects-body", "objects-more", "objects-refresh", "class-filter",
			"object-panel", "object-keys", "object-node", "object-move", "object-delete", "object-close", "object-reload",
			"object-error", "object-notice", "key-prefix", "delete-dialog", "delete-input", "delete-submit", "toasts",
		}},
	}
	for _, p := range pages {
		html := readStatic(t, p.page)
		if !strings.HasPrefix(html, "<!doctype html>") || !strings.Contains(html, `<html lang="en">`) || !strings.HasSuffix(strings.TrimSpace(html), "</html>") {
			t.Errorf("%s: not a complete HTML document", p.page)
		}
		for _, tag := range []string{"section", "div", "form", "table", "ul", "button", "header", "main", "aside", "svg", "label", "select"} {
			open := len(regexp.MustCompile(`<`+tag+`[\s>]`).FindAllString(html, -1))
			closed := strings.Count(html, "</"+tag+">")
			if open != closed {
				t.Errorf("%s: %d <%s> but %d </%s>", p.page, open, tag, closed, tag)
			}
		}
		var ids []string
		for _, m := range idAttr.FindAllStringSubmatch(html, -1) {
			if slices.Contains(ids, m[1]) {
				t.Errorf("%s: duplicate id %q", p.page, m[1])
			}
			ids = append(ids, m[1])
		}
		want := slices.Clone(p.ids)
		for _, m := range dollarRef.FindAllStringSubmatch(readStatic(t, p.script), -1) {
			want = append(want, m[1])
		}
		for _, id := range want {
			if !slices.Contains(ids, id) {
				t.Errorf("%s: no element with id %q (used by %s or the browser test)", p.page, id, p.script)
			}
		}
		for _, m := range assetRef.FindAllStringSubmatch(html, -1) {
			if resp, _ := get(t, srv, m[1]); resp.StatusCode != http.StatusOK {
				t.Errorf("%s references %s: status %d", p.page, m[1], resp.StatusCode)
			}
		}
	}
}

func readStatic(t *testing.T, name string) string {
	t.Helper()
	b, err := fs.ReadFile(files, "static/"+name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
