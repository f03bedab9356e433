package corkconn

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingConn is a net.Conn that records what reaches the network.
type recordingConn struct {
	net.Conn
	mu        sync.Mutex
	writes    []string
	deadlines []time.Time
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(bytes.Clone(p)))
	return len(p), nil
}

func (c *recordingConn) Read(p []byte) (int, error)    { return 0, nil }
func (c *recordingConn) Close() error                  { return nil }
func (c *recordingConn) SetDeadline(t time.Time) error { return c.SetWriteDeadline(t) }
func (c *recordingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

func (c *recordingConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

func wantWrites(t *testing.T, rec *recordingConn, want ...string) {
	t.Helper()
	got := rec.got()
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("writes = %.60q, want %.60q", got, want)
	}
}

func TestHeldWritesLeaveTogether(t *testing.T) {
	for _, pool := range []*sync.Pool{nil, {}} {
		rec := &recordingConn{}
		c := &Conn{Conn: rec, Pool: pool}
		c.Write([]byte("direct"))
		c.Hold()
		for _, s := range []string{"a", "bb", "ccc"} {
			c.Write([]byte(s))
		}
		wantWrites(t, rec, "direct")
		if err := c.Release(); err != nil {
			t.Fatal(err)
		}
		if c.buf != nil {
			t.Fatal("a released Conn keeps a buffer: idle sockets would hold one each")
		}
		big := strings.Repeat("x", MaxHeld+1)
		c.Hold()
		c.Write([]byte("y"))
		c.Write([]byte(big)) // too big to hold: what is held goes first, then it
		c.Write([]byte("z"))
		c.Release()
		c.Release() // nothing left: no empty write
		c.Hold()
		c.Write([]byte("on close"))
		c.Close()
		wantWrites(t, rec, "direct", "abbccc", "y", big, "z", "on close")
	}
	var none *Conn
	none.Hold()
	if err := none.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestFlushOnReadWritesOutBeforeTheRelayWaits: the relay that copies from
// client to backend holds the backend side; reading the client (about to
// wait) writes the copies out; the other direction's pong is not held.
func TestFlushOnReadWritesOutBeforeTheRelayWaits(t *testing.T) {
	clientNet, backendNet := &recordingConn{}, &recordingConn{}
	client, backend := &Conn{Conn: clientNet}, &Conn{Conn: backendNet}
	client.FlushOnRead, backend.FlushOnRead = backend, client
	for _, m := range []string{"a", "bb", "ccc"} {
		backend.Hold()
		backend.Write([]byte(m))
	}
	wantWrites(t, backendNet)
	client.Write([]byte("pong"))
	wantWrites(t, clientNet, "pong")
	client.Read(make([]byte, 8))
	wantWrites(t, backendNet, "abbccc")
}

func TestConcurrentWritesKeepEveryByte(t *testing.T) {
	rec := &recordingConn{}
	c := &Conn{Conn: rec, Pool: &sync.Pool{}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.Hold()
				c.Write([]byte("0123456789"))
				c.Release()
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, w := range rec.got() {
		total += len(w)
	}
	if total != 4*1000*10 {
		t.Fatalf("%d bytes written, want %d", total, 4*1000*10)
	}
}

func TestOnlyNewWriteDeadlinesReachTheConn(t *testing.T) {
	rec := &recordingConn{}
	c := &Conn{Conn: rec}
	t1 := time.Unix(1000, 0)
	t2 := t1.Add(time.Second)
	for _, d := range []time.Time{t1, t1, t1, t2, t2} {
		c.SetWriteDeadline(d)
	}
	c.SetDeadline(time.Time{}) // both cleared: the next t2 is new again
	c.SetWriteDeadline(t2)
	want := []time.Time{t1, t2, {}, t2}
	if len(rec.deadlines) != len(want) {
		t.Fatalf("deadlines passed on: %v, want %v", rec.deadlines, want)
	}
	for i := range want {
		if !rec.deadlines[i].Equal(want[i]) {
			t.Fatalf("deadlines passed on: %v, want %v", rec.deadlines, want)
		}
	}
}
