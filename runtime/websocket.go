package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/holocron-run/holocron/protocol"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/holocron-run/holocron/internal/corkconn"
)

// MaxAttachmentSize bounds a socket's attachment, which lives in memory for
// as long as the socket is open, even while its object hibernates.
const MaxAttachmentSize = 16 << 10

// ErrAttachmentTooLarge is returned by SetAttachment beyond MaxAttachmentSize.
var ErrAttachmentTooLarge = errors.New("websocket attachment too large")

// WebSocket is one client socket accepted by an object: the object's record
// of it (tags, attachment, identity). It belongs to the object, not to an
// instance: it stays open while the object is evicted and the next instance
// finds it again with GetWebSockets (hibernation). Its connection, conn, is
// the transport on the node the client reached.
type WebSocket struct {
	entry      *entry
	seq        uint64
	remoteAddr string
	principal  *Principal

	// Guarded by entry.mu.
	tags       []string
	attachment []byte
	gone       bool // terminated: in no list of the entry

	// conn is the socket's connection: here (a *socketConn), or on the
	// node the client reached (a *remoteConn, see EdgeAttach).
	conn socketOut
}

// socketOut is a socket's connection as its record uses it.
type socketOut interface {
	// enqueue hands a frame the output gate released to the connection.
	enqueue(f outFrame)
	// terminate ends the connection at once, and the socket with it.
	terminate(code int, reason string)
}

// socketUpstream receives what a socket connection reads, and its end: the
// socket's record (*WebSocket), or an edge socket's link to the record on
// the object's owner (*EdgeSocket).
type socketUpstream interface {
	message(m Message)
	messageError(err error)
	ended(code int, reason string)
}

// socketConn is one client WebSocket connection on the node the client
// reached: its read loop, rate limit, parking, pings and write queue. What
// it reads, and its end, go up to its socket's record (up).
type socketConn struct {
	rt *Runtime
	up socketUpstream
	// ip and principal are the admission counters the connection holds
	// (see Runtime.admit) until it ends.
	ip, principal string
	// expires, when set, is when the client's credential lapses: the
	// socket is closed then (expiry).
	expires time.Time
	expiry  *time.Timer

	// reader is the read side; its goroutine runs only while the socket is
	// busy (see readLoop). parkID is its key in the idle poller.
	reader *socketReader
	parkID uint64
	// heard is when the peer last sent anything, as time since the
	// runtime's start (monotonic, unlike a wall-clock stamp): the pinger
	// drops a socket silent for two ping intervals while it is parked.
	heard atomic.Int64

	mu         sync.Mutex
	ws         *websocket.Conn
	cork       *corkconn.Conn // ws's transport; set before the loops start
	pinger     *time.Timer
	writing    bool // a writeLoop goroutine runs (it exits when idle)
	queue      []outFrame
	queuedAt   time.Time // when the oldest queued frame was queued
	queueBytes int
	overflow   bool
	wake       chan struct{}
	ended      bool // terminate ran
	closing    bool // a close frame is queued
	terminated chan struct{}
}

// newSocketConn returns the connection of a socket about to be upgraded,
// counted against the runtime's socket limits: over them, it is upgraded
// only to be closed at once with 4008, which a browser can read (it cannot
// see an HTTP refusal).
func (rt *Runtime) newSocketConn(up socketUpstream, ip, principal string) *socketConn {
	c := &socketConn{rt: rt, up: up, ip: ip, principal: principal, wake: make(chan struct{}, 1), terminated: make(chan struct{})}
	if !rt.admit(ip, principal) {
		c.queue = append(c.queue, outFrame{close: true, code: protocol.ClosePolicy, reason: "too many sockets"})
		c.closing = true
		c.wake <- struct{}{}
	}
	return c
}

type outFrame struct {
	data   []byte
	ping   bool
	pong   bool // answers a client's ping; data is its payload
	close  bool
	code   int
	reason string
	// cursor, when set, marks what the frame brings the socket up to
	// (SendAt); record, when set, is the socket's record as its edge must
	// keep it, to attach it to a new owner (a tag or attachment changed).
	cursor *Cursor
	record *socketRecord
}

// socketRecord is what a socket's edge keeps of its record.
type socketRecord struct {
	tags       []string
	attachment []byte
}

func (f outFrame) size() int { return len(f.data) + 32 }

// ID is unique among the sockets of one node's lifetime.
func (ws *WebSocket) ID() uint64 { return ws.seq }

// RemoteAddr is the client address the socket was accepted from.
func (ws *WebSocket) RemoteAddr() string { return ws.remoteAddr }

// Tags returns the socket's tags.
func (ws *WebSocket) Tags() []string {
	ws.entry.mu.Lock()
	defer ws.entry.mu.Unlock()
	return slices.Clone(ws.tags)
}

// HasTag reports whether the socket carries tag.
func (ws *WebSocket) HasTag(tag string) bool {
	ws.entry.mu.Lock()
	defer ws.entry.mu.Unlock()
	return slices.Contains(ws.tags, tag)
}

// AddTag tags the socket, so GetWebSockets(tag) finds it. Unlike Cloudflare,
// tags may change after accept: a chat socket joins and leaves rooms.
func (ws *WebSocket) AddTag(tag string) {
	e := ws.entry
	e.mu.Lock()
	if slices.Contains(ws.tags, tag) || ws.gone {
		e.mu.Unlock()
		return
	}
	ws.tags = append(ws.tags, tag)
	e.byTag[tag] = append(e.byTag[tag], ws)
	e.mu.Unlock()
	ws.recordChanged()
}

// RemoveTag removes tag from the socket.
func (ws *WebSocket) RemoveTag(tag string) {
	e := ws.entry
	e.mu.Lock()
	removed := ws.removeTagLocked(tag)
	e.mu.Unlock()
	if removed {
		ws.recordChanged()
	}
}

// recordChanged sends the socket's record to its edge, after the event's
// writes like its frames, when the connection is on another node.
func (ws *WebSocket) recordChanged() {
	if _, remote := ws.conn.(*remoteConn); !remote {
		return
	}
	e := ws.entry
	e.mu.Lock()
	rec := &socketRecord{tags: slices.Clone(ws.tags), attachment: ws.attachment}
	e.mu.Unlock()
	e.emit(outItem{ws: ws, frame: outFrame{record: rec}})
}

func (ws *WebSocket) removeTagLocked(tag string) bool {
	e := ws.entry
	i := slices.Index(ws.tags, tag)
	if i < 0 {
		return false
	}
	ws.tags = slices.Delete(ws.tags, i, i+1)
	if ws.gone {
		return true
	}
	list := e.byTag[tag]
	if j := slices.Index(list, ws); j >= 0 {
		list = slices.Delete(list, j, j+1)
	}
	if len(list) == 0 {
		delete(e.byTag, tag)
	} else {
		e.byTag[tag] = list
	}
	return true
}

// SetAttachment stores v (as JSON) with the socket. It survives eviction of
// the object, so per-socket identity need not be kept in storage.
func (ws *WebSocket) SetAttachment(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode attachment: %w", err)
	}
	if len(raw) > MaxAttachmentSize {
		return fmt.Errorf("attachment of %d bytes: %w", len(raw), ErrAttachmentTooLarge)
	}
	ws.entry.mu.Lock()
	ws.attachment = raw
	ws.entry.mu.Unlock()
	ws.recordChanged()
	return nil
}

// Attachment decodes the socket's attachment into v and reports whether
// there was one.
func (ws *WebSocket) Attachment(v any) (bool, error) {
	ws.entry.mu.Lock()
	raw := ws.attachment
	ws.entry.mu.Unlock()
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return false, fmt.Errorf("decode attachment: %w", err)
	}
	return true, nil
}

// Send queues a text message. It leaves after the current event's writes
// (and every earlier one's) are durable. Call it only from a handler.
func (ws *WebSocket) Send(data []byte) {
	ws.entry.emit(outItem{ws: ws, frame: outFrame{data: data}})
}

// SendAt is Send with a cursor: once the frame is out, the socket counts as
// sent everything up to cursor under key. Should the object's owner change
// while the client's connection stays open on another node, the next owner
// gets each key's last cursor that reached that node in OnReattach, and
// sends the socket what it missed since (see Reattacher). key and cursor
// are the object's own: a chat room's name and its last message's ID, say.
func (ws *WebSocket) SendAt(data []byte, key, cursor string) error {
	c, err := newCursor(key, cursor)
	if err != nil {
		return err
	}
	ws.entry.emit(outItem{ws: ws, frame: outFrame{data: data, cursor: c}})
	return nil
}

// SendJSON encodes v and sends it as a text message.
func (ws *WebSocket) SendJSON(v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode frame: %w", err)
	}
	ws.Send(raw)
	return nil
}

// Close closes the socket with code and reason once the output gate opens.
func (ws *WebSocket) Close(code int, reason string) {
	ws.entry.emit(outItem{ws: ws, frame: outFrame{close: true, code: code, reason: reason}})
}

// enqueue hands a released frame to the socket's connection.
func (ws *WebSocket) enqueue(f outFrame) { ws.conn.enqueue(f) }

// terminate ends the socket (see socketConn.terminate).
func (ws *WebSocket) terminate(code int, reason string) { ws.conn.terminate(code, reason) }

// enqueue hands a released frame to the writer. A connection whose queue
// exceeds the limit is a slow consumer: it is closed, never waited for.
func (c *socketConn) enqueue(f outFrame) {
	c.mu.Lock()
	if c.ended || c.closing || c.overflow {
		c.mu.Unlock()
		return
	}
	if f.close {
		c.closing = true
	}
	if len(c.queue) == 0 {
		c.queuedAt = time.Now()
	}
	c.queue = append(c.queue, f)
	c.queueBytes += f.size()
	if limit := c.rt.opts.SocketQueueBytes; c.queueBytes > limit && !f.close {
		c.overflow = true
	}
	c.kickLocked()
	c.mu.Unlock()
}

// kickLocked makes sure a writer will send the queue: it wakes the
// lingering one or starts one. Before the upgrade (no ws yet) start does.
func (c *socketConn) kickLocked() {
	if c.ws == nil {
		return
	}
	if !c.writing {
		c.writing = true
		go c.writeLoop()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// ping queues a keepalive ping and schedules the next one.
func (c *socketConn) ping() {
	interval := c.rt.opts.PingInterval
	if c.rt.sinceStart()-time.Duration(c.heard.Load()) > 2*interval {
		// Silent for two intervals (an active reader's deadline says the
		// same; a parked socket has no reader to notice).
		c.terminate(protocol.CloseAbnormal, "")
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended || c.closing {
		return
	}
	c.queue = append(c.queue, outFrame{ping: true})
	c.kickLocked()
	c.pinger.Reset(c.rt.opts.PingInterval)
}

// start runs the reader and writer on an upgraded connection; br is the
// buffered reader ws reads through (nil if unknown).
func (c *socketConn) start(ws *websocket.Conn, cork *corkconn.Conn, br *bufio.Reader) {
	c.reader = newSocketReader(c, ws, cork, br)
	c.heard.Store(int64(c.rt.sinceStart()))
	c.mu.Lock()
	c.ws, c.cork = ws, cork
	if !c.expires.IsZero() {
		c.expiry = time.AfterFunc(time.Until(c.expires), func() {
			c.enqueue(outFrame{close: true, code: protocol.CloseAuthFailed, reason: "token expired"})
		})
	}
	c.pinger = time.AfterFunc(c.rt.opts.PingInterval, c.ping)
	if len(c.queue) > 0 || c.overflow {
		c.kickLocked()
	}
	c.mu.Unlock()
	go c.readLoop()
}

// readerLinger is how long a socket's reader waits for the next message
// before it hands the socket to the idle poller and exits.
const readerLinger = time.Second

// readiness is what waitReadable found.
type readiness int

const (
	readReady  readiness = iota // something to read (or an error to read)
	readIdle                    // nothing within the linger
	readFailed                  // the connection is unusable
)

// socketReader is a socket's read side. It outlives its goroutines: the
// reader runs while messages come, and a socket quiet for readerLinger is
// parked with the runtime's idle poller (Linux) until its next byte
// arrives, so an idle socket costs no goroutine.
type socketReader struct {
	c       *socketConn
	conn    *websocket.Conn
	rt      *Runtime
	limit   int64
	limiter *rate.Limiter
	// br is the buffer conn reads through: parking is safe only when it
	// holds nothing. raw waits for readability without reading.
	br  *bufio.Reader
	raw syscall.RawConn
	// lingerNext is the next wait's linger: none after a pong, which says
	// the peer is alive but not that more is coming.
	lingerNext time.Duration
}

func newSocketReader(c *socketConn, conn *websocket.Conn, cork *corkconn.Conn, br *bufio.Reader) *socketReader {
	rt := c.rt
	r := &socketReader{c: c, conn: conn, rt: rt, limit: int64(rt.opts.MaxMessageSize), br: br, lingerNext: readerLinger}
	if sc, ok := cork.Conn.(syscall.Conn); ok && br != nil {
		if raw, err := sc.SyscallConn(); err == nil {
			r.raw = raw
		}
	}
	r.deadline()
	conn.SetPongHandler(func(string) error { r.heardNow(); r.deadline(); return nil })
	conn.SetReadLimit(int64(rt.opts.MaxFrameSize))
	if rt.opts.SocketRate > 0 {
		r.limiter = rate.NewLimiter(rate.Limit(rt.opts.SocketRate), rt.opts.SocketBurst)
	}
	return r
}

// readLoop reads the socket's messages until it ends, or until it has been
// quiet for readerLinger and the idle poller took it (which runs readLoop
// again when the socket has something to read).
func (c *socketConn) readLoop() {
	r := c.reader
	for {
		if !r.await() {
			return
		}
		typ, msg, err := r.conn.NextReader()
		if err != nil {
			r.fail(err)
			return
		}
		if !r.handle(typ, msg) {
			return
		}
	}
}

// await returns true once a frame may be read, or false when the socket was
// parked with the idle poller (the goroutine must end). Pings and pongs
// found on the way are handled here, so that they do not leave the reader
// waiting inside the WebSocket library for a message that may never come.
func (r *socketReader) await() bool {
	if r.br == nil {
		return true
	}
	for {
		if r.br.Buffered() > 0 {
			if r.skipControl() {
				continue
			}
			return true
		}
		linger := r.lingerNext
		r.lingerNext = readerLinger
		switch waitReadable(r.raw, r.conn.SetReadDeadline, linger) {
		case readIdle:
			if r.rt.idle.park(r.c) {
				return false
			}
			waitReadable(r.raw, r.conn.SetReadDeadline, -1)
		case readFailed:
			return true // the read reports it
		}
		r.deadline()
		if _, err := r.br.Peek(1); err != nil {
			return true // the read reports it
		}
	}
}

// skipControl handles a complete ping or pong frame at the head of the
// buffer itself (RFC 6455 §5.5: a control frame is one frame of at most
// 125 bytes, masked as every client frame), and reports whether it did.
func (r *socketReader) skipControl() bool {
	hdr, err := r.br.Peek(2)
	if err != nil || hdr[1]&0x80 == 0 || hdr[1]&0x7f > 125 {
		return false
	}
	op := int(hdr[0] &^ 0x80)
	if hdr[0]&0x80 == 0 || (op != websocket.PingMessage && op != websocket.PongMessage) {
		return false
	}
	n := 2 + 4 + int(hdr[1]&0x7f)
	frame, err := r.br.Peek(n)
	if err != nil {
		return false
	}
	if op == websocket.PingMessage {
		payload := make([]byte, n-6)
		for i := range payload {
			payload[i] = frame[6+i] ^ frame[2+i%4]
		}
		r.c.enqueue(outFrame{pong: true, data: payload})
	}
	_, _ = r.br.Discard(n)
	r.heardNow()
	r.deadline()
	r.lingerNext = 0
	return true
}

func (r *socketReader) heardNow() { r.c.heard.Store(int64(r.rt.sinceStart())) }

// deadline gives the peer two ping intervals to send something (a pong at
// least).
func (r *socketReader) deadline() {
	_ = r.conn.SetReadDeadline(time.Now().Add(2 * r.rt.opts.PingInterval))
}

// fail ends the socket after NextReader failed.
func (r *socketReader) fail(err error) {
	code, reason := protocol.CloseAbnormal, ""
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Text
	}
	if errors.Is(err, websocket.ErrReadLimit) {
		code, reason = protocol.CloseTooBig, "message too big"
	}
	r.c.terminate(code, reason)
}

// handle reads one message and delivers it to the object; false means the
// socket ended.
func (r *socketReader) handle(typ int, msg io.Reader) bool {
	c, rt := r.c, r.rt
	r.lingerNext = readerLinger // a message: more may follow
	r.heardNow()
	r.deadline()
	if r.limiter != nil && !r.limiter.Allow() {
		// Over the socket's rate: dropped here, before the object's
		// mailbox, so a flooder does not delay the object's other
		// clients; the client is told, cheaply, from a ready frame.
		if _, err := io.Copy(io.Discard, msg); err != nil {
			c.terminate(protocol.CloseAbnormal, err.Error())
			return false
		}
		rt.metrics.wsRateLimited.Inc()
		if reply := rt.opts.RateLimitedReply; reply != nil {
			c.enqueue(outFrame{data: reply})
		}
		return true
	}
	data, err := io.ReadAll(io.LimitReader(msg, r.limit+1))
	if err == nil && int64(len(data)) > r.limit {
		_, err = io.Copy(io.Discard, msg)
		if err == nil {
			rt.metrics.wsMessagesIn.Inc()
			rt.messagesIn.Add(1)
			c.up.messageError(ErrMessageTooLarge)
			return true
		}
	}
	if err != nil {
		code := protocol.CloseAbnormal
		if errors.Is(err, websocket.ErrReadLimit) {
			code = protocol.CloseTooBig
		}
		c.terminate(code, err.Error())
		return false
	}
	rt.metrics.wsMessagesIn.Inc()
	rt.messagesIn.Add(1)
	c.up.message(Message{Data: data, Binary: typ == websocket.BinaryMessage})
	return true
}

// message delivers a message its connection read to the object; it waits
// for room in the object's mailbox, which is the socket's backpressure.
func (ws *WebSocket) message(m Message) {
	ws.entry.deliverBlocking(event{kind: evWSMessage, ws: ws, msg: m})
}

// messageError tells the object of a message its connection refused.
func (ws *WebSocket) messageError(err error) {
	ws.entry.deliverBlocking(event{kind: evWSError, ws: ws, err: err})
}

// writerLinger is how long an idle writer waits for more frames before it
// exits; an idle socket then costs no goroutine but its reader.
const writerLinger = time.Second

// writeLoop sends the socket's queue. It runs only while there is work (or
// for writerLinger after it), started by kickLocked: most sockets of a
// large idle population have no writer at all.
func (c *socketConn) writeLoop() {
	rt := c.rt
	conn := c.ws
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	var batch []outFrame
	for {
		c.mu.Lock()
		if len(c.queue) == 0 && !c.overflow {
			c.mu.Unlock()
			linger.Reset(writerLinger)
			select {
			case <-c.wake:
			case <-c.terminated:
				return
			case <-linger.C:
				c.mu.Lock()
				if len(c.queue) == 0 && !c.overflow {
					c.writing = false
					c.mu.Unlock()
					return
				}
				c.mu.Unlock()
			}
			continue
		}
		batch, c.queue = c.queue, batch[:0]
		c.queueBytes = 0
		now := time.Now()
		if !c.queuedAt.IsZero() {
			rt.metrics.sendDelay.Observe(now.Sub(c.queuedAt).Seconds())
			c.queuedAt = time.Time{}
		}
		if c.overflow {
			// Too far behind: what is queued is dropped and the client
			// told to come back later; nothing more is queued.
			c.overflow, c.closing = false, true
			batch = append(batch[:0], outFrame{close: true, code: protocol.CloseTryAgainLater, reason: "slow consumer"})
		}
		c.mu.Unlock()
		if len(batch) > 1 {
			c.cork.Hold()
		}
		// One deadline for the burst: a clock read per frame was 5 % of
		// a fan-out server's CPU.
		_ = conn.SetWriteDeadline(now.Add(rt.opts.WriteTimeout))
		for _, f := range batch {
			var err error
			switch {
			case f.close:
				msg := websocket.FormatCloseMessage(f.code, f.reason)
				err = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(rt.opts.WriteTimeout))
				c.mu.Lock()
				c.closing = true
				c.mu.Unlock()
				// Give the peer a moment to answer the close, then give up.
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				go func(code int, reason string) {
					select {
					case <-c.terminated:
					case <-time.After(2 * time.Second):
						c.terminate(code, reason)
					}
				}(f.code, f.reason)
			case f.pong:
				err = conn.WriteControl(websocket.PongMessage, f.data, time.Now().Add(rt.opts.WriteTimeout))
			case f.ping:
				err = conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(rt.opts.WriteTimeout))
			default:
				err = conn.WriteMessage(websocket.TextMessage, f.data)
			}
			if err != nil {
				c.abort()
				return
			}
			if !f.close && !f.ping && !f.pong {
				rt.metrics.wsFramesOut.Inc()
				rt.messagesOut.Add(1)
			}
		}
		if err := c.cork.Release(); err != nil {
			c.abort()
			return
		}
		clear(batch)
	}
}

// abort closes the connection after a write failure; the reader then ends
// the socket.
func (c *socketConn) abort() {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.Close()
	}
	// A parked socket has no reader to see the close: start one.
	if c.rt.idle.unpark(c) {
		go c.readLoop()
	}
}

// terminate ends the connection once, releases its admission counters,
// and tells its socket's record (ended).
func (c *socketConn) terminate(code int, reason string) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	ws := c.ws
	c.queue = nil
	if c.expiry != nil {
		c.expiry.Stop()
	}
	if c.pinger != nil {
		c.pinger.Stop()
	}
	c.mu.Unlock()
	close(c.terminated)
	c.rt.unadmit(c.ip, c.principal)
	if ws != nil {
		_ = ws.Close()
	}
	c.rt.idle.unpark(c) // closing the socket left the epoll set
	c.up.ended(code, reason)
}

// ended takes a socket whose connection ended out of the object's lists,
// and the object gets OnClose.
func (ws *WebSocket) ended(code int, reason string) {
	e := ws.entry
	e.rt.metrics.socketsOpen.Dec()
	e.mu.Lock()
	e.refs++
	ws.gone = true
	// The socket keeps its tags, so OnClose can read them, but no longer
	// appears under any of them.
	for _, t := range ws.tags {
		list := e.byTag[t]
		if j := slices.Index(list, ws); j >= 0 {
			list = slices.Delete(list, j, j+1)
		}
		if len(list) == 0 {
			delete(e.byTag, t)
		} else {
			e.byTag[t] = list
		}
	}
	if i := slices.Index(e.sockets, ws); i >= 0 {
		e.sockets = slices.Delete(e.sockets, i, i+1)
	}
	e.mu.Unlock()
	e.deliverBlocking(event{kind: evWSClose, ws: ws, code: code, reason: reason})
	e.release()
}
