// Package corkconn lets a WebSocket writer send a burst of frames in one
// write system call instead of one per frame. gorilla/websocket writes each
// frame to its net.Conn as soon as it is complete; a Conn placed between
// them buffers the writes while it is held and writes them out together
// when released. Under fan-out a busy socket has many frames queued at each
// wake-up, and the system call per frame was most of the cost of sending
// them (write system calls per delivered frame: 1.01 before, 0.035 after).
//
// The runtime's socket writer holds its connection for the frames it found
// queued; the cluster's WebSocket relay holds the side it copies into until
// it is about to wait for its source (FlushOnRead).
package corkconn

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

// MaxHeld bounds what a Conn buffers before it writes anyway.
const MaxHeld = 64 << 10

// Conn buffers writes between Hold and Release. Writes that arrive while it
// is not held (a pong gorilla/websocket writes from the reading goroutine)
// go straight out, after anything buffered. It is safe for concurrent use.
type Conn struct {
	net.Conn
	// Pool, when set, lends the buffer for the time a burst is held, so
	// that an idle connection holds none; without it the buffer is
	// allocated per burst and dropped on Release.
	Pool *sync.Pool
	// FlushOnRead, when set, is released before every Read of this Conn:
	// for a relay that writes into FlushOnRead what it reads from here.
	// Read is called when the reader's own buffer is empty, just before it
	// may wait for the network.
	FlushOnRead *Conn

	mu   sync.Mutex
	held bool
	buf  *[]byte // while held and written to; nil otherwise
	// deadline is the write deadline last set: gorilla/websocket sets it
	// before every frame, and the poller need not hear it again.
	deadline time.Time
}

// Hold buffers writes until Release. A nil Conn ignores it.
func (c *Conn) Hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// Release writes out what was buffered, in one system call where the
// kernel takes it, and stops buffering. A nil Conn ignores it.
func (c *Conn) Release() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	err := c.flushLocked()
	if c.buf != nil {
		if c.Pool != nil && cap(*c.buf) <= 2*MaxHeld {
			c.Pool.Put(c.buf)
		}
		c.buf = nil
	}
	return err
}

// Write implements net.Conn.
func (c *Conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held && c.buffered()+len(p) <= MaxHeld {
		c.add(p)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	if c.held && len(p) <= MaxHeld {
		c.add(p)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// Read implements net.Conn, releasing FlushOnRead first.
func (c *Conn) Read(p []byte) (int, error) {
	if err := c.FlushOnRead.Release(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Close implements net.Conn, writing out what is buffered first.
func (c *Conn) Close() error {
	_ = c.Release()
	return c.Conn.Close()
}

// SetDeadline implements net.Conn, remembering the write deadline.
func (c *Conn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline = t
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline implements net.Conn, skipping repeats of the same time.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.Equal(c.deadline) {
		return nil
	}
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *Conn) buffered() int {
	if c.buf == nil {
		return 0
	}
	return len(*c.buf)
}

func (c *Conn) add(p []byte) {
	if c.buf == nil {
		if c.Pool != nil {
			c.buf, _ = c.Pool.Get().(*[]byte)
		}
		if c.buf == nil {
			b := make([]byte, 0, 16<<10)
			c.buf = &b
		}
	}
	*c.buf = append(*c.buf, p...)
}

func (c *Conn) flushLocked() error {
	if c.buffered() == 0 {
		return nil
	}
	_, err := c.Conn.Write(*c.buf)
	*c.buf = (*c.buf)[:0]
	return err
}

// Hijacker hands gorilla/websocket's Upgrade a Conn in place of the
// hijacked connection; after the upgrade, Conn is that Conn.
type Hijacker struct {
	http.ResponseWriter
	// Pool is given to the Conn.
	Pool *sync.Pool
	// ReaderSize, when set, makes Hijack hand the upgrader a new buffered
	// reader of that size over Conn, kept in Reader. An Upgrader with
	// ReadBufferSize 0 reads the socket through it, so its owner can tell
	// whether anything received is still waiting in the buffer.
	ReaderSize int

	Conn   *Conn
	Reader *bufio.Reader
}

// Hijack implements http.Hijacker.
func (h *Hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.Conn = &Conn{Conn: conn, Pool: h.Pool}
	if h.ReaderSize > 0 && brw.Reader.Buffered() == 0 {
		// (With bytes already buffered, the upgrader refuses the
		// connection anyway: the client spoke before the handshake.)
		h.Reader = bufio.NewReaderSize(h.Conn, h.ReaderSize)
		brw = bufio.NewReadWriter(h.Reader, brw.Writer)
	}
	return h.Conn, brw, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (h *Hijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
