package cluster

import (
	"bufio"
	"net"
	"net/http"
	"sync"
)

// maxRelayBuffered bounds what one side of a relay buffers before it
// writes anyway.
const maxRelayBuffered = 64 << 10

// relayConn is one side of a relayed WebSocket (the client's connection or
// the one to the leader). The relay that copies messages into it holds it
// while it has more messages at hand, so that they leave in one write
// system call instead of one each; it is released (written out) whenever
// that relay is about to wait for its source, which is the moment its
// source's Read is called. So nothing waits in the buffer while the relay
// waits, and a pong that gorilla/websocket writes from the other relay's
// goroutine is held at most while this relay copies what it already has.
type relayConn struct {
	net.Conn
	// flushOnRead is the side the relay reading from this one writes to.
	flushOnRead *relayConn

	mu   sync.Mutex
	held bool
	buf  []byte
}

// hold buffers writes until release. A nil relayConn ignores it.
func (c *relayConn) hold() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.held = true
	c.mu.Unlock()
}

// release writes out what was buffered and stops buffering.
func (c *relayConn) release() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held = false
	err := c.flushLocked()
	c.buf = nil // an idle relayed socket keeps no buffer
	return err
}

func (c *relayConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	c.buf = c.buf[:0]
	return err
}

// Write implements net.Conn: buffered while held, written through
// otherwise (in order after anything buffered).
func (c *relayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held && len(c.buf)+len(p) <= maxRelayBuffered {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	if err := c.flushLocked(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// Read implements net.Conn. It is called when the reader's buffer is empty,
// just before it may wait for the network: the messages copied so far go
// out first.
func (c *relayConn) Read(p []byte) (int, error) {
	if err := c.flushOnRead.release(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

// Close implements net.Conn, writing out what is buffered first.
func (c *relayConn) Close() error {
	_ = c.release()
	return c.Conn.Close()
}

// relayHijacker hands gorilla/websocket's Upgrade a relayConn in place of
// the client's hijacked connection.
type relayHijacker struct {
	http.ResponseWriter
	conn *relayConn
}

// Hijack implements http.Hijacker.
func (h *relayHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &relayConn{Conn: conn}
	return h.conn, brw, nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (h *relayHijacker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
