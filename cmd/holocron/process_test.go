package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/holocron-run/holocron/internal/proctest"
)

// binary is the holocron binary built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "holocron-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "holocron")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	if os.Getenv("HOLOCRON_TEST_NORACE") != "" {
		build = exec.Command("go", "build", "-o", binary, ".")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build holocron:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// node is one running holocron process.
type node struct {
	t    testing.TB
	cmd  *exec.Cmd
	addr string
	dir  string
	logs *proctest.LogBuffer
	done chan error
	// exited is set once the process has been waited for; unlike
	// cmd.ProcessState it may be read from any goroutine.
	exited atomic.Bool
	// adminToken, when set, is the node's -admin-token: do, doWith and
	// get send it with operator requests that carry no Authorization.
	adminToken string
	// tlsRoots, when set, is the CA of the node's -tls-cert: its URLs are
	// https and wss, and its clients trust that CA only.
	tlsRoots *x509.CertPool
}

// httpClient is a client for n's client port (TLS to tlsRoots, if set).
func (n *node) httpClient() *http.Client {
	c := &http.Client{Timeout: 10 * time.Second}
	if n.tlsRoots != nil {
		c.Transport = &http.Transport{TLSClientConfig: n.tlsClientConfig()}
	}
	return c
}

// tlsClientConfig trusts tlsRoots only.
func (n *node) tlsClientConfig() *tls.Config {
	return &tls.Config{RootCAs: n.tlsRoots, MinVersion: tls.VersionTLS12}
}

// authorize adds n's admin token to req if it is an operator request
// without credentials of its own.
func (n *node) authorize(req *http.Request) {
	p := req.URL.Path
	if n.adminToken != "" && req.Header.Get("Authorization") == "" && (strings.HasPrefix(p, "/admin/") || strings.HasPrefix(p, "/debug/")) {
		req.Header.Set("Authorization", "Bearer "+n.adminToken)
	}
}

// freeAddr returns a loopback address with a port that was free a moment
// ago and not handed out before in this test binary.
func freeAddr(t testing.TB) string { return proctest.FreeAddr(t) }

// startNode runs `holocron serve` on dir and waits until /readyz answers.
func startNode(t testing.TB, dir string, extra ...string) *node {
	t.Helper()
	return startNodeAt(t, freeAddr(t), dir, extra...)
}

// startNodeAt is startNode on a given HTTP address (a restarted cluster
// node keeps its address).
func startNodeAt(t testing.TB, addr, dir string, extra ...string) *node {
	t.Helper()
	return startNodeWrapped(t, nil, addr, dir, extra...)
}

// startNodeWrapped runs the node under a command prefix (such as
// `ip netns exec NS`, which execs, so the PID is still holocron's).
func startNodeWrapped(t testing.TB, wrap []string, addr, dir string, extra ...string) *node {
	t.Helper()
	n := newNode(t, addr, dir)
	n.start(wrap, extra...)
	return n
}

// newNode is a node not started yet: set its fields (tlsRoots), then start.
func newNode(t testing.TB, addr, dir string) *node {
	return &node{t: t, addr: addr, dir: dir, logs: &proctest.LogBuffer{}, done: make(chan error, 1)}
}

// start runs the node's process (under the command prefix wrap, if any)
// and waits until /readyz answers.
func (n *node) start(wrap []string, extra ...string) {
	t := n.t
	t.Helper()
	dir := n.dir
	args := append([]string{"serve", "-http", n.addr, "-data", dir}, extra...)
	argv := append(append(append([]string{}, wrap...), binary), args...)
	n.cmd = exec.Command(argv[0], argv[1:]...)
	n.cmd.Stdout = n.logs
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start holocron: %v", err)
	}
	go func() {
		err := n.cmd.Wait()
		n.exited.Store(true)
		n.done <- err
	}()
	t.Cleanup(func() {
		if !n.exited.Load() {
			_ = n.cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			// The whole log goes to a file that outlives the test's temp dir.
			dir := filepath.Join(os.TempDir(), "holocron-test-logs", t.Name())
			file := filepath.Join(dir, fmt.Sprintf("%s-pid%d.log", strings.NewReplacer(":", "_", "/", "_").Replace(n.addr), n.cmd.Process.Pid))
			if os.MkdirAll(dir, 0o755) == nil && os.WriteFile(file, n.logs.Bytes(), 0o644) == nil {
				t.Logf("holocron logs (%s) in %s; tail:\n%s", n.addr, file, tail(n.logs.String(), 2000))
			} else {
				t.Logf("holocron logs (%s):\n%s", n.addr, tail(n.logs.String(), 4000))
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := n.httpClient().Get(n.url("/readyz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-n.done:
			t.Fatalf("holocron exited before ready: %v\n%s", err, n.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("holocron not ready after 30s:\n%s", n.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// kill9 kills the process with SIGKILL and waits for it.
func (n *node) kill9() {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		n.t.Fatalf("kill -9: %v", err)
	}
	<-n.done
}

// stop sends SIGTERM and returns the exit code.
func (n *node) stop() int {
	n.t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		// Make Go print every goroutine's stack into the logs, for the
		// failure report.
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		<-n.done
		logs := n.logs.String()
		if i := strings.Index(logs, "SIGQUIT"); i >= 0 {
			logs = logs[i:]
		}
		n.t.Fatalf("holocron did not exit within 30s of SIGTERM; goroutines:\n%s", logs[:min(len(logs), 200000)])
	}
	return n.cmd.ProcessState.ExitCode()
}

// get returns the body of a GET that must answer 200.
func (n *node) get(path string) string {
	n.t.Helper()
	req, err := http.NewRequest(http.MethodGet, n.url(path), nil)
	if err != nil {
		n.t.Fatalf("GET %s: %v", path, err)
	}
	n.authorize(req)
	resp, err := n.httpClient().Do(req)
	if err != nil {
		n.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		n.t.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
	}
	return string(body)
}

func (n *node) url(path string) string {
	if n.tlsRoots != nil {
		return "https://" + n.addr + path
	}
	return "http://" + n.addr + path
}

func (n *node) wsURL(path string) string {
	if n.tlsRoots != nil {
		return "wss://" + n.addr + path
	}
	return "ws://" + n.addr + path
}

// do sends a JSON request and decodes the JSON answer into out (if non-nil).
func (n *node) do(method, path string, body any, out any) int {
	n.t.Helper()
	return n.doWith(method, path, nil, body, out)
}

// doWith is do with extra request headers.
func (n *node) doWith(method, path string, header http.Header, body any, out any) int {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, n.url(path), rd)
	for k, v := range header {
		req.Header[k] = v
	}
	if h := header.Get("Host"); h != "" {
		req.Host = h // Go sends req.Host, not a Host header
	}
	n.authorize(req)
	resp, err := n.httpClient().Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil {
		decodeBody(n.t, resp, out)
	} else {
		resp.Body.Close()
	}
	return resp.StatusCode
}

// decodeBody decodes a JSON response body into out and closes it.
func decodeBody(t testing.TB, resp *http.Response, out any) {
	t.Helper()
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("%s %s: %d %q: %v", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, raw, err)
	}
}

func TestBadFlagsExitTwoWithOneLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"unknown flag", []string{"serve", "-no-such-flag"}, nil, "flag provided but not defined"},
		{"bad duration", []string{"serve", "-idle-timeout", "soon"}, nil, "idle-timeout"},
		{"extra argument", []string{"serve", "extra"}, nil, "unexpected argument"},
		{"data dir is a file", []string{"serve", "-data", file, "-http", "127.0.0.1:0"}, nil, "data directory"},
		{"bad env", []string{"serve"}, []string{"HOLOCRON_HISTORY_LIMIT=many"}, "HOLOCRON_HISTORY_LIMIT"},
		{"unknown command", []string{"frobnicate"}, nil, "unknown command"},
		{"per-player limit without tokens", []string{"serve", "-max-sockets-per-player", "2"}, nil, "needs -auth-secret"},
		{"cluster without secrets", []string{"serve", "-bootstrap"}, nil, "needs -certs-dir and -gossip-key-file"},
		{"insecure and secrets", []string{"serve", "-bootstrap", "-insecure", "-certs-dir", "x"}, nil, "choose one"},
		{"secrets without a cluster", []string{"serve", "-certs-dir", "x"}, nil, "are for a cluster"},
		{"admin token and its file", []string{"serve", "-admin-token", "a", "-admin-token-file", file}, nil, "choose one"},
		{"empty admin token file", []string{"serve", "-admin-token-file", empty}, nil, "is empty"},
		{"missing auth secret file", []string{"serve", "-auth-secret-file", file + ".missing"}, nil, "-auth-secret-file"},
		{"token with an empty secret file", []string{"token", "-player", "p", "-auth-secret-file", empty}, nil, "is empty"},
		{"backup with an empty token file", []string{"backup", "-out", file + ".gz", "-admin-token-file", empty}, nil, "is empty"},
		{"bad allowed origin", []string{"serve", "-allowed-origins", "game.example"}, nil, "-allowed-origins"},
		{"certs of another node", []string{"serve", "-bootstrap", "-node-name", "nX", "-certs-dir", file, "-gossip-key-file", file, "-http", "127.0.0.1:0", "-peer", "127.0.0.1:0", "-bind", "127.0.0.1:0", "-data", filepath.Join(filepath.Dir(file), "d")}, nil, "-certs-dir"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(binary, tc.args...)
			cmd.Env = append(os.Environ(), tc.env...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			exit, ok := err.(*exec.ExitError)
			if !ok || exit.ExitCode() != 2 {
				t.Fatalf("exit: %v, want code 2; stderr %q", err, stderr.String())
			}
			first := strings.SplitN(strings.TrimSpace(stderr.String()), "\n", 2)[0]
			if !strings.Contains(first, tc.want) {
				t.Fatalf("first stderr line %q does not mention %q", first, tc.want)
			}
		})
	}
}

func TestSIGTERMShutsDownCleanly(t *testing.T) {
	n := startNode(t, t.TempDir())
	if code := n.do("GET", "/healthz", nil, nil); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	metrics := n.get("/metrics")
	for _, name := range []string{"holocron_objects_active", "holocron_websockets_open", "go_goroutines"} {
		if !strings.Contains(metrics, name) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if code := n.stop(); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0\n%s", code, n.logs.String())
	}
	// Every log line is one JSON object.
	sc := bufio.NewScanner(bytes.NewReader(n.logs.Bytes()))
	lines := 0
	for sc.Scan() {
		lines++
		if !json.Valid(sc.Bytes()) {
			t.Errorf("log line is not JSON: %q", sc.Text())
		}
	}
	if lines < 2 {
		t.Errorf("expected start and stop log lines, got %d", lines)
	}
}

// TestSIGHUPDoesNotStopANode: SIGHUP (systemd's reload) reloads a cluster
// node's secrets; its default, ending the process, must never happen.
func TestSIGHUPDoesNotStopANode(t *testing.T) {
	n := startNode(t, t.TempDir())
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if code := n.do("GET", "/api/lobby/rooms", nil, nil); code != 200 {
		t.Fatalf("after SIGHUP: list rooms %d", code)
	}
	if code := n.stop(); code != 0 {
		t.Fatalf("exit %d after SIGHUP then SIGTERM, want 0", code)
	}
	if !strings.Contains(n.logs.String(), "SIGHUP: nothing to reload") {
		t.Fatalf("SIGHUP not handled; log:\n%s", tail(n.logs.String(), 2000))
	}
}
