package runtime

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// maxCorked bounds what a socket buffers before it writes anyway.
const maxCorked = 64 << 10

// corkConn lets a socket's writer send the frames it found queued in one
// write system call instead of one per frame: between hold and release,
// writes are only buffered. Under fan-out a busy socket has many frames
// queued at each wake-up, and the system call per frame is most of the
// cost of sending them.
type corkConn struct {
	net.Conn
	// bufs lends buffers for the time a burst is held: an idle socket
	// holds none.
	bufs *sync.Pool
	mu   sync.Mutex
	held bool
	buf  *[]byte // from bufs while held and written to; nil otherwise
	// deadline is the write deadline last set: gorilla/websocket sets it
	// again before every frame, and the poller need not hear it twice.
	deadline time.Time
}

// SetDeadline implements net.Conn, remembering the write deadline.
func (c *corkConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline implements net.Conn, skipping repeats of the same time.
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Equal(c.deadline) {
		return nil
	}
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

// Write buffers p while the connection is held, and writes through
// otherwise. gorilla/websocket serialises its own writes, but a close
// reply may come from the reader goroutine, hence the lock.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held && c.buffered()+len(p) <= maxCorked {
		c.add(p)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	if c.held && len(p) <= maxCorked {
		c.add(p)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *corkConn) buffered() int {
	if c.buf == nil {
		return 0
	}
	return len(*c.buf)
}

func (c *corkConn) add(p []byte) {
	if c.buf == nil {
		if b, ok := c.bufs.Get().(*[]byte); ok {
			c.buf = b
		} else {
			b := make([]byte, 0, 16<<10)
			c.buf = &b
		}
	}
	*c.buf = append(*c.buf, p...)
}

// hold starts buffering writes. A nil corkConn never buffers.
func (c *corkConn) hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release writes what was buffered, in one system call where the kernel
// takes it, and stops buffering. An idle socket keeps no large buffer.
func (c *corkConn) release() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	err := c.flushLocked()
	if c.buf != nil {
		if cap(*c.buf) <= 2*maxCorked {
			c.bufs.Put(c.buf)
		}
		c.buf = nil
	}
	return err
}

func (c *corkConn) flushLocked() error {
	if c.buffered() == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

// corkingWriter hands gorilla/websocket's Upgrade a corkConn in place of
// the hijacked connection.
type corkingWriter struct {
	http.ResponseWriter
	bufs *sync.Pool
	conn *corkConn
}

// Hijack implements http.Hijacker.
func (w *corkingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &corkConn{Conn: conn, bufs: w.bufs}
	return w.conn, brw, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *corkingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
