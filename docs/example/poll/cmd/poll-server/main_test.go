package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.uber.org/goleak"

	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// TestMain checks, after the tests, that they left no goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		// Keep-alive connections of the default transport are the only
		// goroutines a passing test may leave.
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// build compiles this command with go build into the test's temporary
// directory and returns the binary's path.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "poll-server")
	// A test runs in its package's directory: "." is this command.
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build poll-server: %v\n%s", err, out)
	}
	return bin
}

// server is one running poll-server process.
type server struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs bytes.Buffer // written by exec until the process has exited

	exited  chan struct{} // closed once Wait returned
	waitErr error
}

// startServer runs the poll-server binary on addr over dataDir and waits (10s at most)
// until /healthz answers. The process is killed when the test ends.
func startServer(t *testing.T, binary, addr, dataDir string) *server {
	t.Helper()
	s := &server{t: t, addr: addr, exited: make(chan struct{})}
	s.cmd = exec.Command(binary, "serve", "-http", addr, "-data", dataDir)
	s.cmd.Stdout, s.cmd.Stderr = &s.logs, &s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start poll-server: %v", err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			t.Logf("poll-server %s log:\n%s", addr, s.logs.String())
		}
	})
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(runtimetest.Timeout)
	for {
		resp, err := client.Get(s.url("/healthz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-s.exited:
			t.Fatalf("poll-server exited before serving: %v", s.waitErr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("poll-server not serving after %v", runtimetest.Timeout)
		}
	}
}

func (s *server) url(path string) string { return "http://" + s.addr + path }

// do sends a JSON request and decodes the JSON answer.
func (s *server) do(method, path string, body any) (int, runtimetest.Frame) {
	s.t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		s.t.Fatal(err)
	}
	req, err := http.NewRequest(method, s.url(path), bytes.NewReader(raw))
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := (&http.Client{Timeout: runtimetest.Timeout}).Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var f runtimetest.Frame
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		s.t.Fatalf("%s %s: decode answer: %v", method, path, err)
	}
	return resp.StatusCode, f
}

func (s *server) dial(path string) *runtimetest.Conn {
	s.t.Helper()
	return runtimetest.DialURL(s.t, "ws://"+s.addr+path, nil)
}

// kill9 kills the process with SIGKILL: no shutdown code runs.
func (s *server) kill9() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill -9: %v", err)
	}
	<-s.exited
}

// stop sends SIGTERM and returns the exit code.
func (s *server) stop() int {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(runtimetest.Timeout):
		s.t.Fatal("poll-server did not exit after SIGTERM")
	}
	return s.cmd.ProcessState.ExitCode()
}

func votesOf(f runtimetest.Frame) string {
	v := f.Obj("votes")
	return fmt.Sprintf("pizza=%v sushi=%v", v["pizza"], v["sushi"])
}

// TestPollsSurviveKill9 runs the guide's example as users would: a real
// server process, HTTP and WebSocket clients, a kill -9, and a restart on
// the same data directory.
func TestPollsSurviveKill9(t *testing.T) {
	binary, addr, dataDir := build(t), proctest.FreeAddr(t), t.TempDir()
	s := startServer(t, binary, addr, dataDir)

	if code, f := s.do("PUT", "/polls/lunch", map[string]any{"question": "Lunch?", "options": []string{"pizza", "sushi"}, "durationSeconds": 3600}); code != http.StatusCreated {
		t.Fatalf("create lunch: %d %v", code, f)
	}
	ann := s.dial("/polls/lunch/websocket?voter=ann")
	ann.Expect("tally")
	ann.Send(map[string]any{"type": "vote", "option": "sushi"})
	ann.Expect("voted")
	if f := ann.Expect("tally"); votesOf(f.Obj("poll")) != "pizza=0 sushi=1" {
		t.Fatalf("tally after ann: %v", f)
	}
	if code, f := s.do("POST", "/polls/lunch/votes", map[string]any{"voter": "bob", "option": "pizza"}); code != http.StatusOK || votesOf(f) != "pizza=1 sushi=1" {
		t.Fatalf("bob's vote: %d %v", code, f)
	}
	if f := ann.Expect("tally"); votesOf(f.Obj("poll")) != "pizza=1 sushi=1" {
		t.Fatalf("ann's tally after bob: %v", f)
	}
	// A poll whose alarm comes due while the server is dead.
	if code, f := s.do("PUT", "/polls/flash", map[string]any{"question": "Now?", "options": []string{"yes", "no"}, "durationSeconds": 1}); code != http.StatusCreated {
		t.Fatalf("create flash: %d %v", code, f)
	}

	// Everything above was answered, so it is on disk: kill -9 loses none of it.
	s.kill9()
	if _, err := ann.TryRead(); err == nil {
		t.Fatal("socket still open after kill -9")
	}
	s = startServer(t, binary, addr, dataDir)

	if code, f := s.do("GET", "/polls/lunch", nil); code != http.StatusOK || votesOf(f) != "pizza=1 sushi=1" || f["closed"] != false {
		t.Fatalf("lunch after restart: %d %v", code, f)
	}
	// ann reconnects; her socket's identity comes from the URL again.
	ann = s.dial("/polls/lunch/websocket?voter=ann")
	ann.Expect("tally")
	ann.Send(map[string]any{"type": "vote", "option": "pizza"}) // she changes her mind
	ann.Expect("voted")
	if f := ann.Expect("tally"); votesOf(f.Obj("poll")) != "pizza=2 sushi=0" {
		t.Fatalf("tally after ann's change: %v", f)
	}
	// The stored alarm fires in the new process.
	deadline := time.Now().Add(runtimetest.Timeout)
	for {
		code, f := s.do("GET", "/polls/flash", nil)
		if code == http.StatusOK && f["closed"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("flash poll not closed by its alarm after restart: %d %v", code, f)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// SIGTERM: sockets are told 1001 (going away) and the process exits 0.
	// Reading while the server stops answers its close frame at once, as a
	// browser would, so the server need not wait out the close handshake.
	readErr := make(chan error, 1)
	go func() {
		_, _, err := ann.WS.ReadMessage()
		readErr <- err
	}()
	if code := s.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	err := <-readErr
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("socket ended with %v, want close 1001", err)
	}
	if !strings.Contains(s.logs.String(), `"msg":"stopped"`) {
		t.Fatalf("no clean stop in the log:\n%s", s.logs.String())
	}
}

// TestPollsOnAThreeNodeCluster runs the example as an operator would run
// it on three machines: the README's cluster commands (certificates from
// the binary's own cert commands, mutual TLS, encrypted gossip), votes
// through every node, a kill -9 of the node that owns the poll, and
// nothing lost; the poll's closing alarm fires on its new owner.
func TestPollsOnAThreeNodeCluster(t *testing.T) {
	binary := build(t)
	c := proctest.StartCluster(t, binary, 3)
	ask := func(n *proctest.Proc, method, path string, body any) (int, runtimetest.Frame) {
		t.Helper()
		s := &server{t: t, addr: n.Addr}
		return s.do(method, path, body)
	}
	if code, f := ask(c.Nodes[0], "PUT", "/polls/lunch", map[string]any{"question": "Lunch?", "options": []string{"pizza", "sushi"}, "durationSeconds": 8}); code != http.StatusCreated {
		t.Fatalf("create lunch: %d %v", code, f)
	}
	for i, n := range c.Nodes {
		voter, option := fmt.Sprint("v", i), []string{"pizza", "sushi", "pizza"}[i]
		if code, f := ask(n, "POST", "/polls/lunch/votes", map[string]any{"voter": voter, "option": option}); code != http.StatusOK {
			t.Fatalf("vote of %s through %s: %d %v", voter, n.Addr, code, f)
		}
	}
	owner := c.LeaderOf("Poll", "lunch")
	c.Nodes[owner].Kill9()
	var survivor *proctest.Proc
	for _, n := range c.Live() {
		survivor = n
	}
	// Every acknowledged vote is on the new owner; it takes new ones.
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, f := ask(survivor, "GET", "/polls/lunch", nil)
		if code == http.StatusOK {
			if votesOf(f) != "pizza=2 sushi=1" {
				t.Fatalf("after kill -9 of the owner: %v, want every acknowledged vote (pizza=2 sushi=1)", f)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("poll not served within 30s of its owner's kill -9: %d %v", code, f)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, f := ask(survivor, "POST", "/polls/lunch/votes", map[string]any{"voter": "v9", "option": "sushi"}); code != http.StatusOK || votesOf(f) != "pizza=2 sushi=2" {
		t.Fatalf("a vote after the failover: %d %v", code, f)
	}
	if c.LeaderOf("Poll", "lunch") == owner {
		t.Fatal("the killed node still leads the poll")
	}
	// The closing alarm is in the poll's replicated storage: the new owner
	// fires it.
	deadline = time.Now().Add(60 * time.Second)
	for {
		code, f := ask(survivor, "GET", "/polls/lunch", nil)
		if code == http.StatusOK && f["closed"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("poll not closed by its alarm on the new owner: %d %v", code, f)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
