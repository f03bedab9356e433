package runtime_test

import (
	"fmt"
	goruntime "runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// waitUntil polls cond until it holds or runtimetest.Timeout passes.
func waitUntil(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(runtimetest.Timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s", what, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Quiet sockets are parked with the idle poller and cost no goroutine;
// each wakes for its next message, and a broadcast reaches all of them.
func TestIdleSocketsParkWithoutGoroutines(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{})
	const n = 40
	before := goruntime.NumGoroutine()
	conns := make([]*runtimetest.Conn, n)
	for i := range conns {
		conns[i] = s.Dial("/objects/Counter/idle/websocket")
		conns[i].Expect("hello")
	}
	waitUntil(t, "parking", func() (bool, string) {
		st := s.Runtime.Stats()
		return st.ParkedSockets == n, fmt.Sprintf("%d of %d sockets parked", st.ParkedSockets, n)
	})
	// Readers parked and writers lingered out: the goroutines the sockets
	// added are gone (a few others, like the poller's, may remain).
	waitUntil(t, "goroutines ending", func() (bool, string) {
		extra := goruntime.NumGoroutine() - before
		return extra < n/4, fmt.Sprintf("%d goroutines more than before %d parked sockets", extra, n)
	})

	// Every parked socket still takes a message, and hears the broadcast
	// each one causes.
	for i, c := range conns {
		c.Send(map[string]any{"type": "inc"})
		for _, other := range conns {
			if f := other.Expect("count"); f["n"] != float64(i+1) {
				t.Fatalf("broadcast %d: got %v", i+1, f)
			}
		}
	}
	waitUntil(t, "parking again", func() (bool, string) {
		st := s.Runtime.Stats()
		return st.ParkedSockets == n, fmt.Sprintf("%d of %d sockets parked", st.ParkedSockets, n)
	})

	// A peer that leaves while its socket is parked is noticed at once.
	conns[0].WS.Close()
	waitUntil(t, "closed socket leaving", func() (bool, string) {
		st := s.Runtime.Stats()
		return st.Sockets == n-1 && st.ParkedSockets == n-1, fmt.Sprintf("%d sockets open, %d parked", st.Sockets, st.ParkedSockets)
	})
}

// A parked socket answers the client's pings, and the server's pings keep
// a parked socket alive while the client answers them; one that stops
// answering is dropped even though no reader is waiting on it.
func TestParkedSocketsPingAndPong(t *testing.T) {
	var fired atomic.Int64
	s := startCounter(t, "", &fired, runtime.Options{PingInterval: 100 * time.Millisecond})
	c := s.Dial("/objects/Counter/pp/websocket")
	c.Expect("hello")
	pongs := make(chan string, 4)
	c.WS.SetPongHandler(func(data string) error { pongs <- data; return nil })
	var serverPings atomic.Int64
	var answer atomic.Bool // whether the client answers the server's pings
	answer.Store(true)
	c.WS.SetPingHandler(func(data string) error {
		serverPings.Add(1)
		if !answer.Load() {
			return nil
		}
		return c.WS.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.WS.ReadMessage(); err != nil {
				return
			}
		}
	}()
	// The server's pings park the socket again at once after each pong.
	waitUntil(t, "parking between pings", func() (bool, string) {
		return s.Runtime.Stats().ParkedSockets == 1, "not parked"
	})
	if err := c.WS.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-pongs:
		if got != "are you there" {
			t.Fatalf("pong payload %q", got)
		}
	case <-time.After(runtimetest.Timeout):
		t.Fatal("no pong for the client's ping")
	}
	// Alive over many ping intervals, parked in between.
	waitUntil(t, "answered pings", func() (bool, string) {
		return serverPings.Load() >= 10, fmt.Sprintf("%d pings answered", serverPings.Load())
	})
	if st := s.Runtime.Stats(); st.Sockets != 1 {
		t.Fatalf("%d sockets open after %d answered pings, want 1", st.Sockets, serverPings.Load())
	}

	// A client that stops answering pings is dropped after two intervals,
	// although its socket has no reader waiting on it.
	waitUntil(t, "parked", func() (bool, string) {
		return s.Runtime.Stats().ParkedSockets == 1, "not parked"
	})
	answer.Store(false)
	waitUntil(t, "silent socket dropped", func() (bool, string) {
		st := s.Runtime.Stats()
		return st.Sockets == 0 && st.ParkedSockets == 0, fmt.Sprintf("%d sockets open, %d parked", st.Sockets, st.ParkedSockets)
	})
}
