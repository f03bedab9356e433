package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holocron-run/holocron/protocol"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
	"github.com/holocron-run/holocron/storage"
)

// counter is a minimal object: GET / returns the count, POST / increments
// it, WebSocket messages "inc" increment and echo the new count.
type counter struct {
	state *runtime.State
	alarm *atomic.Int64
}

func (c *counter) count() int {
	v, ok, err := runtime.GetJSON[int](c.state.Storage(), "n")
	if err != nil {
		panic(err)
	}
	if !ok {
		return 0
	}
	return v
}

func (c *counter) inc() int {
	n := c.count() + 1
	if err := runtime.PutJSON(c.state.Storage(), "n", n); err != nil {
		panic(err)
	}
	return n
}

func (c *counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/websocket":
		ws, err := c.state.AcceptWebSocket(w, r, "all")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ws.Send([]byte(`{"type":"hello"}`))
	case r.URL.Path == "/alarm":
		d, _ := time.ParseDuration(r.URL.Query().Get("in"))
		if err := c.state.Storage().SetAlarm(c.state.Now().Add(d)); err != nil {
			http.Error(w, err.Error(), 500)
		}
	case r.URL.Path == "/state":
		st, ok := runtime.StateFrom(r.Context())
		fmt.Fprintf(w, `{"ok":%t,"same":%t}`, ok, st == c.state)
	case r.URL.Path == "/panic":
		c.inc()
		panic("boom")
	case r.Method == http.MethodPost:
		fmt.Fprintf(w, `{"n":%d}`, c.inc())
	default:
		fmt.Fprintf(w, `{"n":%d}`, c.count())
	}
}

func (c *counter) OnMessage(ctx context.Context, ws *runtime.WebSocket, msg runtime.Message) {
	switch string(msg.Data) {
	case `{"type":"ping"}`:
		ws.Send([]byte(`{"type":"pong"}`))
	case `{"type":"panic"}`:
		panic("boom")
	case `{"type":"burst"}`:
		c.inc()
		for i := range burstFrames {
			ws.Send([]byte(`{"type":"b","i":` + strconv.Itoa(i) + `}`))
		}
	case `{"type":"tail"}`:
		ws.Send([]byte(`{"type":"tail"}`))
	case `{"type":"big"}`:
		c.state.Broadcast("all", bytes.Repeat([]byte("x"), 64<<10))
	default:
		n := c.inc()
		c.state.Broadcast("all", []byte(`{"type":"count","n":`+strconv.Itoa(n)+`}`))
	}
}

func (c *counter) OnClose(ctx context.Context, ws *runtime.WebSocket, code int, reason string) {}

func (c *counter) OnError(ctx context.Context, ws *runtime.WebSocket, err error) {
	if errors.Is(err, runtime.ErrMessageTooLarge) {
		ws.Send([]byte(`{"type":"error","code":"too_large"}`))
	}
}

func (c *counter) OnAlarm(ctx context.Context) error {
	c.alarm.Add(1)
	c.inc()
	return nil
}

func startCounter(t testing.TB, dir string, fired *atomic.Int64, opts runtime.Options) *runtimetest.Server {
	return runtimetest.Start(t, runtimetest.Options{
		Dir:     dir,
		Runtime: opts,
		Register: func(r *runtime.Registry) {
			r.Register("Counter", func(s *runtime.State) (runtime.Object, error) {
				return &counter{state: s, alarm: fired}, nil
			})
		},
	})
}

func TestHTTPWritesSurviveRestart(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{})
	for i := 1; i <= 3; i++ {
		if code, f := s.Do("POST", "/objects/Counter/a/", nil); code != 200 || f["n"] != float64(i) {
			t.Fatalf("POST %d: %d %v", i, code, f)
		}
	}
	s.Restart()
	if _, f := s.Do("GET", "/objects/Counter/a/", nil); f["n"] != float64(3) {
		t.Fatalf("after restart n = %v, want 3", f["n"])
	}
	if _, f := s.Do("GET", "/objects/Counter/b/", nil); f["n"] != float64(0) {
		t.Fatalf("object b shares state with a: %v", f)
	}
}

func TestStateFromRequestContext(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{})
	if _, f := s.Do("GET", "/objects/Counter/a/state", nil); f["ok"] != true || f["same"] != true {
		t.Fatalf("StateFrom(r.Context()) in ServeHTTP = %v, want the object's own State", f)
	}
}

func TestWebSocketBroadcastAndHibernation(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{IdleTimeout: 20 * time.Millisecond})
	a := s.Dial("/objects/Counter/x/websocket")
	a.Expect("hello")
	b := s.Dial("/objects/Counter/x/websocket")
	b.Expect("hello")
	for i := 1; i <= 5; i++ {
		a.Send(map[string]any{"type": "inc"})
		for _, c := range []*runtimetest.Conn{a, b} {
			if f := c.Expect("count"); f["n"] != float64(i) {
				t.Fatalf("count %v, want %d", f["n"], i)
			}
		}
	}
	// Wait until the instance is evicted; the sockets must keep working.
	deadline := time.Now().Add(runtimetest.Timeout)
	for s.Runtime.LiveInstances() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("instance never evicted")
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.Send(map[string]any{"type": "inc"})
	if f := a.Expect("count"); f["n"] != float64(6) {
		t.Fatalf("after hibernation count %v, want 6", f["n"])
	}
}

func TestPanicDropsWritesAndKeepsObjectWorking(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{})
	s.Do("POST", "/objects/Counter/p/", nil)
	code, f := s.Do("GET", "/objects/Counter/p/panic", nil)
	if code != 500 || f["code"] != "internal" {
		t.Fatalf("panic answered %d %v", code, f)
	}
	if _, f := s.Do("GET", "/objects/Counter/p/", nil); f["n"] != float64(1) {
		t.Fatalf("panicking event's write kept: n=%v", f["n"])
	}
	c := s.Dial("/objects/Counter/p/websocket")
	c.Expect("hello")
	c.Send(map[string]any{"type": "panic"})
	if f := c.Expect("error"); f["code"] != "internal" {
		t.Fatalf("got %v", f)
	}
	c.Send(map[string]any{"type": "inc"})
	if f := c.Expect("count"); f["n"] != float64(2) {
		t.Fatalf("after panic count %v", f["n"])
	}
}

func TestTooLargeMessageKeepsSocketOpen(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{MaxMessageSize: 1000})
	c := s.Dial("/objects/Counter/big/websocket")
	c.Expect("hello")
	c.SendRaw(1, make([]byte, 5000))
	if f := c.Expect("error"); f["code"] != "too_large" {
		t.Fatalf("got %v", f)
	}
	c.Send(map[string]any{"type": "inc"})
	c.Expect("count")
}

func TestAlarmFiresAfterRestart(t *testing.T) {
	var fired atomic.Int64
	dir := t.TempDir()
	s := startCounter(t, dir, &fired, runtime.Options{})
	s.Do("POST", "/objects/Counter/al/alarm?in=300ms", nil)
	s.Close()
	if fired.Load() != 0 {
		t.Fatalf("alarm fired early")
	}
	s2 := startCounter(t, dir, &fired, runtime.Options{})
	deadline := time.Now().Add(runtimetest.Timeout)
	for fired.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("alarm did not fire after restart")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The alarm's write is durable and the alarm is gone.
	deadline = time.Now().Add(runtimetest.Timeout)
	for {
		_, f := s2.Do("GET", "/objects/Counter/al/", nil)
		if f["n"] == float64(1) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alarm write not visible: %v", f)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, ok, _ := s2.Store.NextAlarm(); ok {
		t.Fatal("alarm still scheduled after it fired")
	}
}

func TestSocketRateLimitDropsBeforeTheObject(t *testing.T) {
	s := startCounter(t, t.TempDir(), nil, runtime.Options{SocketRate: 1, SocketBurst: 5,
		RateLimitedReply: []byte(`{"type":"error","code":"rate_limited"}`)})
	c := s.Dial("/objects/Counter/c/websocket")
	c.Expect("hello")
	const sent = 20
	for range sent {
		c.SendRaw(websocket.TextMessage, []byte(`{"type":"inc"}`))
	}
	counts, limited := 0, 0
	for counts+limited < sent {
		switch f := c.Read(); f.Type() {
		case "count":
			counts++
		case "error":
			if f.Str("code") != "rate_limited" {
				t.Fatalf("unexpected error frame %v", f)
			}
			limited++
		}
	}
	// The burst (plus at most a token refilled meanwhile) got through; the
	// rest never reached the object.
	if counts < 5 || counts > 7 || limited != sent-counts {
		t.Fatalf("%d messages handled, %d refused; want the burst of 5 (+≤2 refilled) handled", counts, limited)
	}
	if code, f := s.Do("GET", "/objects/Counter/c/", nil); code != 200 || f["n"] != float64(counts) {
		t.Fatalf("stored count %v (HTTP %d), want %d", f["n"], code, counts)
	}
}

// TestForgetAndRestoreReplaceTheObjectsState: an operator's delete and
// restore take effect after the object's earlier events, close its sockets
// so clients come back to the new state, and leave the object working.
func TestForgetAndRestoreReplaceTheObjectsState(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{})
	ns, err := s.Runtime.Namespace("Counter")
	if err != nil {
		t.Fatal(err)
	}
	id := ns.IDFromName("a")
	for range 3 {
		s.Do("POST", "/objects/Counter/a/", nil)
	}
	saved, ok, err := s.Store.ExportObject(storage.ObjectID(id))
	if err != nil || !ok || saved.Meta.Name != "a" {
		t.Fatalf("export: %+v %v %v", saved, ok, err)
	}
	for range 2 {
		s.Do("POST", "/objects/Counter/a/", nil)
	}

	ws := s.Dial("/objects/Counter/a/websocket")
	ws.Expect("hello")
	ctx, cancel := context.WithTimeout(context.Background(), runtimetest.Timeout)
	defer cancel()
	if err := ns.Restore(ctx, saved); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if _, err := ws.TryRead(); !websocket.IsCloseError(err, protocol.CloseMoved) {
		t.Fatalf("socket after restore: %v, want close 1012", err)
	}
	if _, f := s.Do("GET", "/objects/Counter/a/", nil); f["n"] != float64(3) {
		t.Fatalf("after restore n = %v, want the saved 3", f["n"])
	}
	other := saved
	other.Meta.Class = "Other"
	if err := ns.Restore(ctx, other); err == nil {
		t.Fatal("Restore took a record of another class")
	}

	ws = s.Dial("/objects/Counter/a/websocket")
	ws.Expect("hello")
	if err := ns.Forget(ctx, id); err != nil {
		t.Fatalf("Forget: %v", err)
	}
	if _, err := ws.TryRead(); !websocket.IsCloseError(err, protocol.CloseNormal) {
		t.Fatalf("socket after forget: %v, want close 1000", err)
	}
	if _, ok, err := s.Store.ExportObject(storage.ObjectID(id)); ok || err != nil {
		t.Fatalf("object still stored after Forget (%v)", err)
	}
	if _, f := s.Do("POST", "/objects/Counter/a/", nil); f["n"] != float64(1) {
		t.Fatalf("after forget the object counts from %v, want 1", f["n"])
	}
}

// TestKeepalivePingsAndSilentPeers: the server pings every PingInterval; a
// peer that answers stays connected however long it is otherwise idle, and
// a peer that answers nothing is dropped after two intervals.
func TestKeepalivePingsAndSilentPeers(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{PingInterval: 50 * time.Millisecond})
	live := s.Dial("/objects/Counter/k/websocket")
	live.Expect("hello")
	var pings atomic.Int64
	live.WS.SetPingHandler(func(data string) error {
		pings.Add(1)
		return live.WS.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := live.WS.ReadMessage(); err != nil {
				return
			}
		}
	}()
	silent, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/objects/Counter/k/websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	deadline := time.Now().Add(runtimetest.Timeout)
	for pings.Load() < 6 || s.Runtime.Stats().Sockets != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d pings answered, %d sockets open; want 6 and only the answering one", pings.Load(), s.Runtime.Stats().Sockets)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowConsumerIsClosedWith1013: frames for a socket that does not read
// pile up to SocketQueueBytes; then the socket is closed with 1013 and
// nothing more is queued for it, while the object and its other sockets go on.
func TestSlowConsumerIsClosedWith1013(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{SocketQueueBytes: 256 << 10})
	slow := s.Dial("/objects/Counter/q/websocket")
	slow.Expect("hello")
	driver := s.Dial("/objects/Counter/q/websocket")
	driver.Expect("hello")
	// 16 MiB of broadcasts: more than loopback buffers hold for the slow
	// socket. The driver reads its copies as they come.
	for range 256 {
		driver.Send(map[string]any{"type": "big"})
		if _, _, err := driver.WS.ReadMessage(); err != nil {
			t.Fatalf("driver: %v", err)
		}
	}
	for {
		_ = slow.WS.SetReadDeadline(time.Now().Add(runtimetest.Timeout))
		_, _, err := slow.WS.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, protocol.CloseTryAgainLater) {
			t.Fatalf("slow socket ended with %v, want close 1013", err)
		}
		break
	}
	driver.Send(map[string]any{"type": "inc"})
	if f := driver.Expect("count"); f["n"] != float64(1) {
		t.Fatalf("after the slow socket was dropped: %v", f)
	}
}

// burstFrames is how many frames the counter's "burst" sends.
const burstFrames = 5000

// TestOutputsLeaveInEventOrder: a later event's frames never overtake an
// earlier event's, even when the later event writes nothing and arrives
// while the earlier one's frames are still being handed to the socket
// (the tail is sent once the burst's first frame is seen).
func TestOutputsLeaveInEventOrder(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{SocketQueueBytes: 64 << 20})
	c := s.Dial("/objects/Counter/order/websocket")
	c.Expect("hello")
	for round := range 5 {
		c.Send(map[string]any{"type": "burst"})
		if f := c.Expect("b"); f["i"] != float64(0) {
			t.Fatalf("round %d: first frame %v", round, f)
		}
		c.Send(map[string]any{"type": "tail"})
		seen := 1
		for {
			f := c.Read()
			if f.Type() == "tail" {
				break
			}
			if f["i"] != float64(seen) {
				t.Fatalf("round %d: frame %v, want i=%d", round, f, seen)
			}
			seen++
		}
		if seen != burstFrames {
			t.Fatalf("round %d: the tail overtook the burst after %d of %d frames", round, seen, burstFrames)
		}
	}
}
