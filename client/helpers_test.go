package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/internal/testenv"
)

func buildHolocron() (string, func(), error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return "", nil, err
	}
	return proctest.Build(root, os.Getenv("HOLOCRON_TEST_NORACE") == "")
}

// startNode runs one holocron node for the test.
func startNode(t *testing.T, args ...string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, holocronBin, proctest.FreeAddr(t), t.TempDir(), args...)
}

// restart starts p's node again on the same address and data directory.
func restart(t *testing.T, p *proctest.Proc) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, holocronBin, p.Addr, p.Dir, p.Args...)
}

// testOptions reconnect quickly, as tests cannot wait for production
// backoffs. HOLOCRON_TEST_CLIENT_LOG=1 shows the clients' logs.
func testOptions() Options {
	o := Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 400 * time.Millisecond, PingInterval: 2 * time.Second}
	if os.Getenv("HOLOCRON_TEST_CLIENT_LOG") != "" {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// dialChat connects a chat client that the test closes at its end, and
// records its events.
func dialChat(t *testing.T, addrs []string, o Options) (*ChatClient, *recorder) {
	t.Helper()
	c, err := DialChat(ctxT(t, 10*time.Second), addrs, o)
	if err != nil {
		t.Fatalf("DialChat: %v", err)
	}
	rec := record(c.Events())
	t.Cleanup(func() { closeClient(t, c.Close, rec) })
	return c, rec
}

// dialGame is dialChat for games.
func dialGame(t *testing.T, addrs []string, o Options) (*GameClient, *recorder) {
	t.Helper()
	g, err := DialGame(ctxT(t, 10*time.Second), addrs, o)
	if err != nil {
		t.Fatalf("DialGame: %v", err)
	}
	rec := record(g.Events())
	t.Cleanup(func() { closeClient(t, g.Close, rec) })
	return g, rec
}

func closeClient(t *testing.T, closeFn func(context.Context) error, rec *recorder) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := closeFn(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case <-rec.done:
	case <-time.After(5 * time.Second):
		t.Error("Events not closed after Close")
	}
}

// recorder keeps every event of a client, in order.
type recorder struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced at every event
	done    chan struct{} // closed when the channel closed
}

func record(ch <-chan Event) *recorder {
	r := &recorder{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(r.done)
		for e := range ch {
			r.mu.Lock()
			r.events = append(r.events, e)
			close(r.changed)
			r.changed = make(chan struct{})
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *recorder) snapshot() ([]Event, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...), r.changed
}

// waitFor waits until ok holds for the events so far, and returns them.
func (r *recorder) waitFor(t *testing.T, d time.Duration, what string, ok func([]Event) bool) []Event {
	t.Helper()
	deadline := time.After(d)
	for {
		evs, changed := r.snapshot()
		if ok(evs) {
			return evs
		}
		select {
		case <-changed:
		case <-r.done:
			if evs, _ := r.snapshot(); ok(evs) {
				return evs
			}
			t.Fatalf("events closed before %s; got %s", what, describe(evs))
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %s", what, describe(evs))
		}
	}
}

// waitEvent waits for the first event of type T that match accepts.
func waitEvent[T Event](t *testing.T, r *recorder, d time.Duration, match func(T) bool) T {
	t.Helper()
	var found T
	var zero T
	r.waitFor(t, d, fmt.Sprintf("%T", zero), func(evs []Event) bool {
		for _, e := range evs {
			if v, ok := e.(T); ok && (match == nil || match(v)) {
				found = v
				return true
			}
		}
		return false
	})
	return found
}

// messages returns the chat messages of room the application received, in
// order.
func (r *recorder) messages(room string) []ChatMessage {
	evs, _ := r.snapshot()
	var out []ChatMessage
	for _, e := range evs {
		if m, ok := e.(*NewMessage); ok && m.Message.RoomID == room {
			out = append(out, m.Message)
		}
	}
	return out
}

func describe(evs []Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d events:", len(evs))
	for i, e := range evs[max(0, len(evs)-15):] {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %T%+v", e, e)
	}
	return b.String()
}

// wantCode checks that err is an *Error with code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v: want *client.Error with code %s", err, code)
	}
	if e.Code != code {
		t.Fatalf("error %v: code %s, want %s", err, e.Code, code)
	}
}

// fullHistory reads a room's whole kept history over HTTP, page by page.
func fullHistory(t *testing.T, c *ChatClient, room string) []ChatMessage {
	t.Helper()
	var all []ChatMessage
	opts := HistoryOptions{Limit: 1000, FromStart: true}
	for {
		page, err := c.Messages(ctxT(t, 10*time.Second), room, opts)
		if err != nil {
			t.Fatalf("Messages: %v", err)
		}
		all = append(all, page.Messages...)
		if !page.HasMore || len(page.Messages) == 0 {
			return all
		}
		opts = HistoryOptions{Limit: 1000, After: page.Messages[len(page.Messages)-1].ID}
	}
}

// sameMessages reports the first difference between the messages an
// application received and the room's history, by id and content.
func sameMessages(got, want []ChatMessage) error {
	for i := range min(len(got), len(want)) {
		if got[i].ID != want[i].ID || got[i].Content != want[i].Content || got[i].Type != want[i].Type {
			return fmt.Errorf("message %d: got %s %q (%s), history has %s %q (%s)", i,
				got[i].ID, got[i].Content, got[i].Type, want[i].ID, want[i].Content, want[i].Type)
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("got %d messages, history has %d", len(got), len(want))
	}
	return nil
}

// signal sends sig to the holocron process serving from data directory
// dir and returns its pid. proctest does not expose the pid; SIGSTOP lets a
// test hold a request in flight.
func signal(t *testing.T, dir string, sig syscall.Signal) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatalf("read /proc: %v", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if i := slices.Index(args, "-data"); i >= 0 && i+1 < len(args) && args[i+1] == dir {
			if err := syscall.Kill(pid, sig); err != nil {
				t.Fatalf("kill %d: %v", pid, err)
			}
			return pid
		}
	}
	t.Fatalf("no holocron process with -data %s", dir)
	return 0
}

// waitFor is testenv.WaitFor.
var waitFor = testenv.WaitFor

// closedChan is a waitFor condition: nil once ch is closed.
func closedChan(ch <-chan struct{}) func() error {
	return func() error {
		select {
		case <-ch:
			return nil
		default:
			return errors.New("not closed yet")
		}
	}
}

// waitStopped waits until every thread of process pid is stopped (the
// SIGSTOP took effect): from then on the process reads nothing.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("process %d to stop", pid), func() error {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return err
		}
		for _, task := range tasks {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
			if err != nil {
				return err
			}
			// pid (comm) state ...: comm may hold spaces, the state
			// follows its last ")".
			i := bytes.LastIndexByte(stat, ')')
			if i < 0 || i+2 >= len(stat) {
				return fmt.Errorf("unreadable stat %q", stat)
			}
			if st := stat[i+2]; st != 'T' && st != 't' {
				return fmt.Errorf("thread %s is in state %c", task.Name(), st)
			}
		}
		return nil
	})
}

// netTap is a WebSocket dialer for a client's Options that counts the TCP
// connections the client opens and keeps the payload of every frame the
// client wrote, once the write returned (the frame is then the kernel's:
// it reaches the server even if the client does nothing more).
type netTap struct {
	mu       sync.Mutex
	attempts int
	frames   []string
}

// dialer returns the websocket.Dialer to put in Options.Dialer.
func (n *netTap) dialer() *websocket.Dialer {
	return &websocket.Dialer{
		HandshakeTimeout: 10 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			n.mu.Lock()
			n.attempts++
			n.mu.Unlock()
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &tappedConn{Conn: c, tap: n}, nil
		},
	}
}

// dials is how many TCP connections the client tried to open.
func (n *netTap) dials() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attempts
}

// wrote reports whether a frame containing s was written.
func (n *netTap) wrote(s string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, f := range n.frames {
		if strings.Contains(f, s) {
			return true
		}
	}
	return false
}

// tappedConn passes writes through and decodes the client's frames from
// them: past the HTTP upgrade request, each frame is a header, a mask and
// the masked payload (RFC 6455 5.2).
type tappedConn struct {
	net.Conn
	tap *netTap

	mu       sync.Mutex
	upgraded bool   // the HTTP request is behind
	pending  []byte // written bytes not yet a whole frame
}

func (c *tappedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, p[:n]...)
	if !c.upgraded {
		i := bytes.Index(c.pending, []byte("\r\n\r\n"))
		if i < 0 {
			return n, err
		}
		c.pending, c.upgraded = c.pending[i+4:], true
	}
	for len(c.pending) >= 2 {
		size, head := uint64(c.pending[1]&0x7f), 2
		switch size {
		case 126:
			if len(c.pending) < 4 {
				return n, err
			}
			size, head = uint64(binary.BigEndian.Uint16(c.pending[2:])), 4
		case 127:
			if len(c.pending) < 10 {
				return n, err
			}
			size, head = binary.BigEndian.Uint64(c.pending[2:]), 10
		}
		var mask []byte
		if c.pending[1]&0x80 != 0 {
			if len(c.pending) < head+4 {
				return n, err
			}
			mask, head = c.pending[head:head+4], head+4
		}
		if uint64(len(c.pending)-head) < size {
			return n, err
		}
		payload := append([]byte(nil), c.pending[head:head+int(size)]...)
		for i := range payload {
			if mask != nil {
				payload[i] ^= mask[i%4]
			}
		}
		c.tap.mu.Lock()
		c.tap.frames = append(c.tap.frames, string(payload))
		c.tap.mu.Unlock()
		c.pending = c.pending[head+int(size):]
	}
	return n, err
}
