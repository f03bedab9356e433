// Package runtimetest runs objects in a test: a real runtime over real Pebble
// in a temporary directory behind an httptest server, and WebSocket and HTTP
// clients that read like the protocol ("send this, expect that frame").
package runtimetest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/storage"
)

// Options configure a Server.
type Options struct {
	// Register adds the classes under test.
	Register func(*runtime.Registry)
	// Routes are the gateway routes besides /objects/{class}/{name}/.
	Routes []gateway.Route
	// Dir is the data directory; empty means a fresh t.TempDir().
	Dir string
	// Runtime holds runtime options; Store, Registry are filled in.
	Runtime runtime.Options
	// Pebble holds the store's options, for every open of Dir (Restart
	// too): a fault-injecting FS (Pebble's vfs/errorfs), to fail the real
	// store as a failing disk fails it.
	Pebble storage.PebbleOptions
	// WrapStore, when set, wraps the Pebble store the runtime sees (for
	// fault and delay injection in tests of the runtime itself).
	WrapStore func(storage.Store) storage.Store
	// Clock, when set, is the runtime's clock (State.Now, alarms): a test
	// moves it with Advance instead of waiting.
	Clock *Clock
}

// Clock is a controllable clock for tests of objects with alarms: the
// runtime reads it, and Advance moves it and has due alarms fire at once.
type Clock struct {
	mu  sync.Mutex
	now time.Time
	rt  *runtime.Runtime
}

// NewClock returns a clock standing at start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and wakes the alarm scheduler.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	rt := c.rt
	c.mu.Unlock()
	if rt != nil {
		rt.CheckAlarms()
	}
}

func (c *Clock) attach(rt *runtime.Runtime) {
	c.mu.Lock()
	c.rt = rt
	c.mu.Unlock()
}

// Server is a runtime serving HTTP on a loopback port.
type Server struct {
	URL     string
	Dir     string
	Runtime *runtime.Runtime
	Store   *storage.PebbleStore

	t      testing.TB
	opts   Options
	http   *httptest.Server
	closed bool
}

// Timeout bounds every wait of this package; a test that waits longer fails.
const Timeout = 10 * time.Second

// Start starts a server; it is closed when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s := &Server{t: t, opts: opts, Dir: opts.Dir}
	s.open()
	t.Cleanup(s.Close)
	return s
}

func (s *Server) open() {
	t := s.t
	t.Helper()
	store, err := storage.OpenPebble(s.Dir, s.opts.Pebble)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	reg := runtime.NewRegistry()
	if s.opts.Register != nil {
		s.opts.Register(reg)
	}
	ro := s.opts.Runtime
	ro.Store, ro.Registry = store, reg
	if s.opts.Clock != nil {
		ro.Now = s.opts.Clock.Now
	}
	if s.opts.WrapStore != nil {
		ro.Store = s.opts.WrapStore(store)
	}
	rt, err := runtime.New(ro)
	if err != nil {
		t.Fatalf("start runtime: %v", err)
	}
	s.Store, s.Runtime = store, rt
	if s.opts.Clock != nil {
		s.opts.Clock.attach(rt)
	}
	s.http = httptest.NewServer(gateway.New(rt, s.opts.Routes))
	s.URL = s.http.URL
	s.closed = false
}

// Close shuts the server down gracefully (sockets get 1001).
func (s *Server) Close() {
	if s.closed {
		return
	}
	s.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	if err := s.Runtime.Close(ctx); err != nil {
		s.t.Errorf("close runtime: %v", err)
	}
	s.http.CloseClientConnections()
	s.http.Close()
	closed := make(chan error, 1)
	go func() { closed <- s.Store.Close() }()
	select {
	case err := <-closed:
		// A store that failed (a test injected a disk fault) may fail to
		// close as well: Pebble's WAL writer keeps its error. The failure
		// is the test's to check, not a fault of the close.
		if err != nil && s.Store.Err() == nil {
			s.t.Errorf("close store: %v", err)
		}
	case <-time.After(Timeout):
		s.t.Errorf("close store: not done within %v", Timeout)
	}
}

// Restart closes the server and opens a new one on the same data directory,
// as a process restart would (the URL changes).
func (s *Server) Restart() {
	s.t.Helper()
	s.Close()
	s.open()
}

// Frame is a decoded server frame.
type Frame map[string]any

// Type is the frame's type field.
func (f Frame) Type() string { s, _ := f["type"].(string); return s }

// Str returns a string field ("" if absent).
func (f Frame) Str(name string) string { s, _ := f[name].(string); return s }

// Obj returns an object field.
func (f Frame) Obj(name string) Frame { m, _ := f[name].(map[string]any); return m }

// List returns an array field.
func (f Frame) List(name string) []any { l, _ := f[name].([]any); return l }

// Frames returns field name as a list of objects (non-objects skipped).
func (f Frame) Frames(name string) []Frame {
	var out []Frame
	for _, v := range f.List(name) {
		if m, ok := v.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// Conn is a test WebSocket client.
type Conn struct {
	t  testing.TB
	WS *websocket.Conn
}

// Dial opens a WebSocket to path on s.
func (s *Server) Dial(path string) *Conn {
	s.t.Helper()
	return DialURL(s.t, "ws"+strings.TrimPrefix(s.URL, "http")+path, nil)
}

// DialURL opens a WebSocket to url; it is closed when the test ends.
func DialURL(t testing.TB, url string, header http.Header) *Conn {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: Timeout}
	ws, resp, err := d.Dial(url, header)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (HTTP %d)", url, err, status)
	}
	c := &Conn{t: t, WS: ws}
	t.Cleanup(func() { _ = ws.Close() })
	return c
}

// Send writes v as a JSON text message.
func (c *Conn) Send(v any) {
	c.t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		c.t.Fatalf("encode frame: %v", err)
	}
	c.SendRaw(websocket.TextMessage, raw)
}

// SendRaw writes one message of the given type.
func (c *Conn) SendRaw(messageType int, data []byte) {
	c.t.Helper()
	if err := c.WS.WriteMessage(messageType, data); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Read returns the next frame, failing the test after Timeout.
func (c *Conn) Read() Frame {
	c.t.Helper()
	f, err := c.TryRead()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return f
}

// TryRead returns the next frame or the read error (a closed socket).
func (c *Conn) TryRead() (Frame, error) {
	_ = c.WS.SetReadDeadline(time.Now().Add(Timeout))
	typ, data, err := c.WS.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("server sent a binary message")
	}
	var f Frame
	if err := json.Unmarshal(data, &f); err != nil {
		c.t.Fatalf("server frame is not a JSON object: %q", data)
	}
	return f, nil
}

// Expect reads the next frame and fails unless its type is typ.
func (c *Conn) Expect(typ string) Frame {
	c.t.Helper()
	f := c.Read()
	if f.Type() != typ {
		c.t.Fatalf("got frame %v, want type %q", f, typ)
	}
	return f
}

// Sync sends a ping and returns every frame that arrives before its pong.
// Because a socket's frames are ordered, an empty result proves the server
// sent nothing else in between: use it to assert that nothing was sent.
func (c *Conn) Sync() []Frame {
	c.t.Helper()
	c.Send(map[string]any{"type": "ping"})
	var got []Frame
	for {
		f := c.Read()
		if f.Type() == "pong" {
			return got
		}
		got = append(got, f)
	}
}

// ExpectNothing fails if any frame is waiting (checked with Sync).
func (c *Conn) ExpectNothing() {
	c.t.Helper()
	if got := c.Sync(); len(got) > 0 {
		c.t.Fatalf("unexpected frames: %v", got)
	}
}

// Do makes an HTTP request with a JSON body (nil for none) and decodes the
// JSON answer.
func (s *Server) Do(method, path string, body any) (int, Frame) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		if raw, ok := body.([]byte); ok {
			rd = bytes.NewReader(raw)
		} else {
			raw, err := json.Marshal(body)
			if err != nil {
				s.t.Fatalf("encode body: %v", err)
			}
			rd = bytes.NewReader(raw)
		}
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatalf("request: %v", err)
	}
	client := &http.Client{Timeout: Timeout}
	resp, err := client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	var f Frame
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &f); err != nil {
			s.t.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return resp.StatusCode, f
}
