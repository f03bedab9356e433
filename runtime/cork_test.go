package runtime

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingConn is a net.Conn that records each Write call.
type recordingConn struct {
	net.Conn
	mu        sync.Mutex
	writes    [][]byte
	deadlines []time.Time
}

func (c *recordingConn) SetWriteDeadline(t time.Time) error {
	c.deadlines = append(c.deadlines, t)
	return nil
}

func (c *recordingConn) SetDeadline(t time.Time) error { return c.SetWriteDeadline(t) }

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func TestCorkConnCoalescesHeldWrites(t *testing.T) {
	rec := &recordingConn{}
	c := &corkConn{Conn: rec, bufs: &sync.Pool{}}
	c.Write([]byte("direct"))
	c.hold()
	for _, s := range []string{"a", "bb", "ccc"} {
		c.Write([]byte(s))
	}
	if len(rec.writes) != 1 {
		t.Fatalf("%d writes reached the connection while held, want only the first", len(rec.writes))
	}
	if err := c.release(); err != nil {
		t.Fatal(err)
	}
	if c.buf != nil {
		t.Fatal("a released connection keeps a buffer: idle sockets would hold one each")
	}
	big := bytes.Repeat([]byte("x"), maxCorked+1)
	c.hold()
	c.Write([]byte("y"))
	c.Write(big) // too big to buffer: what is buffered goes first, then it
	c.Write([]byte("z"))
	c.release()
	c.release() // nothing left: no empty write
	want := []string{"direct", "abbccc", "y", string(big), "z"}
	if len(rec.writes) != len(want) {
		t.Fatalf("writes = %q, want %q", rec.writes, want)
	}
	for i, w := range want {
		if string(rec.writes[i]) != w {
			t.Fatalf("write %d = %.20q, want %.20q", i, rec.writes[i], w)
		}
	}
	var nilCork *corkConn
	nilCork.hold()
	if err := nilCork.release(); err != nil {
		t.Fatal(err)
	}
}

func TestCorkConnConcurrentWritesKeepEveryByte(t *testing.T) {
	rec := &recordingConn{}
	c := &corkConn{Conn: rec, bufs: &sync.Pool{}}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.hold()
				c.Write([]byte("0123456789"))
				c.release()
			}
		}()
	}
	wg.Wait()
	total := 0
	for _, w := range rec.writes {
		total += len(w)
	}
	if total != 4*1000*10 {
		t.Fatalf("%d bytes written, want %d", total, 4*1000*10)
	}
}

func TestCorkConnPassesOnlyNewWriteDeadlines(t *testing.T) {
	rec := &recordingConn{}
	c := &corkConn{Conn: rec, bufs: &sync.Pool{}}
	t1 := time.Unix(1000, 0)
	t2 := t1.Add(time.Second)
	for _, d := range []time.Time{t1, t1, t1, t2, t2} {
		c.SetWriteDeadline(d)
	}
	c.SetDeadline(time.Time{}) // both deadlines cleared: the next t2 is new again
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
