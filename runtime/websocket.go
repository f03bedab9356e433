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

// WebSocket is one client socket accepted by an object. It belongs to the
// object, not to an instance: it stays open while the object is evicted and
// the next instance finds it again with GetWebSockets (hibernation).
type WebSocket struct {
	entry      *entry
	seq        uint64
	remoteAddr string
	principal  *Principal
	expiry     *time.Timer

	// Guarded by entry.mu.
	tags       []string
	attachment []byte
	gone       bool // terminated: in no list of the entry

	// reader is the read side; its goroutine runs only while the socket is
	// busy (see readLoop). parkID is its key in the idle poller.
	reader *socketReader
	parkID uint64
	// heard is when the peer last sent anything, as time since the
	// runtime's start (monotonic, unlike a wall-clock stamp): the pinger
	// drops a socket silent for two ping intervals while it is parked.
	heard atomic.Int64

	mu         sync.Mutex
	conn       *websocket.Conn
	cork       *corkconn.Conn // conn's transport; set before the loops start
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

type outFrame struct {
	data   []byte
	ping   bool
	pong   bool // answers a client's ping; data is its payload
	close  bool
	code   int
	reason string
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
	defer e.mu.Unlock()
	if slices.Contains(ws.tags, tag) || ws.gone {
		return
	}
	ws.tags = append(ws.tags, tag)
	e.byTag[tag] = append(e.byTag[tag], ws)
}

// RemoveTag removes tag from the socket.
func (ws *WebSocket) RemoveTag(tag string) {
	e := ws.entry
	e.mu.Lock()
	defer e.mu.Unlock()
	ws.removeTagLocked(tag)
}

func (ws *WebSocket) removeTagLocked(tag string) {
	e := ws.entry
	i := slices.Index(ws.tags, tag)
	if i < 0 {
		return
	}
	ws.tags = slices.Delete(ws.tags, i, i+1)
	if ws.gone {
		return
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

// enqueue hands a released frame to the socket's writer. A socket whose
// queue exceeds the limit is a slow consumer: it is closed, never waited for.
func (ws *WebSocket) enqueue(f outFrame) {
	ws.mu.Lock()
	if ws.ended || ws.closing || ws.overflow {
		ws.mu.Unlock()
		return
	}
	if f.close {
		ws.closing = true
	}
	if len(ws.queue) == 0 {
		ws.queuedAt = time.Now()
	}
	ws.queue = append(ws.queue, f)
	ws.queueBytes += f.size()
	if limit := ws.entry.rt.opts.SocketQueueBytes; ws.queueBytes > limit && !f.close {
		ws.overflow = true
	}
	ws.kickLocked()
	ws.mu.Unlock()
}

// kickLocked makes sure a writer will send the queue: it wakes the
// lingering one or starts one. Before the upgrade (no conn yet) start does.
func (ws *WebSocket) kickLocked() {
	if ws.conn == nil {
		return
	}
	if !ws.writing {
		ws.writing = true
		go ws.writeLoop()
		return
	}
	select {
	case ws.wake <- struct{}{}:
	default:
	}
}

// ping queues a keepalive ping and schedules the next one.
func (ws *WebSocket) ping() {
	interval := ws.entry.rt.opts.PingInterval
	if ws.entry.rt.sinceStart()-time.Duration(ws.heard.Load()) > 2*interval {
		// Silent for two intervals (an active reader's deadline says the
		// same; a parked socket has no reader to notice).
		ws.terminate(protocol.CloseAbnormal, "")
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.ended || ws.closing {
		return
	}
	ws.queue = append(ws.queue, outFrame{ping: true})
	ws.kickLocked()
	ws.pinger.Reset(ws.entry.rt.opts.PingInterval)
}

// start runs the socket's reader and writer on an upgraded connection; br
// is the buffered reader conn reads through (nil if unknown).
func (ws *WebSocket) start(conn *websocket.Conn, cork *corkconn.Conn, br *bufio.Reader) {
	ws.reader = newSocketReader(ws, conn, cork, br)
	ws.heard.Store(int64(ws.entry.rt.sinceStart()))
	ws.mu.Lock()
	ws.conn, ws.cork = conn, cork
	if p := ws.principal; p != nil && !p.Expires.IsZero() {
		ws.expiry = time.AfterFunc(time.Until(p.Expires), func() {
			ws.enqueue(outFrame{close: true, code: protocol.CloseAuthFailed, reason: "token expired"})
		})
	}
	ws.pinger = time.AfterFunc(ws.entry.rt.opts.PingInterval, ws.ping)
	if len(ws.queue) > 0 || ws.overflow {
		ws.kickLocked()
	}
	ws.mu.Unlock()
	go ws.readLoop()
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
	ws      *WebSocket
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

func newSocketReader(ws *WebSocket, conn *websocket.Conn, cork *corkconn.Conn, br *bufio.Reader) *socketReader {
	rt := ws.entry.rt
	r := &socketReader{ws: ws, conn: conn, rt: rt, limit: int64(rt.opts.MaxMessageSize), br: br, lingerNext: readerLinger}
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
func (ws *WebSocket) readLoop() {
	r := ws.reader
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
			if r.rt.idle.park(r.ws) {
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
		r.ws.enqueue(outFrame{pong: true, data: payload})
	}
	_, _ = r.br.Discard(n)
	r.heardNow()
	r.deadline()
	r.lingerNext = 0
	return true
}

func (r *socketReader) heardNow() { r.ws.heard.Store(int64(r.rt.sinceStart())) }

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
	r.ws.terminate(code, reason)
}

// handle reads one message and delivers it to the object; false means the
// socket ended.
func (r *socketReader) handle(typ int, msg io.Reader) bool {
	ws, rt := r.ws, r.rt
	r.lingerNext = readerLinger // a message: more may follow
	r.heardNow()
	r.deadline()
	if r.limiter != nil && !r.limiter.Allow() {
		// Over the socket's rate: dropped here, before the object's
		// mailbox, so a flooder does not delay the object's other
		// clients; the client is told, cheaply, from a ready frame.
		if _, err := io.Copy(io.Discard, msg); err != nil {
			ws.terminate(protocol.CloseAbnormal, err.Error())
			return false
		}
		rt.metrics.wsRateLimited.Inc()
		if reply := rt.opts.RateLimitedReply; reply != nil {
			ws.enqueue(outFrame{data: reply})
		}
		return true
	}
	data, err := io.ReadAll(io.LimitReader(msg, r.limit+1))
	if err == nil && int64(len(data)) > r.limit {
		_, err = io.Copy(io.Discard, msg)
		if err == nil {
			rt.metrics.wsMessagesIn.Inc()
			rt.messagesIn.Add(1)
			ws.entry.deliverBlocking(event{kind: evWSError, ws: ws, err: ErrMessageTooLarge})
			return true
		}
	}
	if err != nil {
		code := protocol.CloseAbnormal
		if errors.Is(err, websocket.ErrReadLimit) {
			code = protocol.CloseTooBig
		}
		ws.terminate(code, err.Error())
		return false
	}
	rt.metrics.wsMessagesIn.Inc()
	rt.messagesIn.Add(1)
	ws.entry.deliverBlocking(event{kind: evWSMessage, ws: ws, msg: Message{Data: data, Binary: typ == websocket.BinaryMessage}})
	return true
}

// writerLinger is how long an idle writer waits for more frames before it
// exits; an idle socket then costs no goroutine but its reader.
const writerLinger = time.Second

// writeLoop sends the socket's queue. It runs only while there is work (or
// for writerLinger after it), started by kickLocked: most sockets of a
// large idle population have no writer at all.
func (ws *WebSocket) writeLoop() {
	rt := ws.entry.rt
	conn := ws.conn
	linger := time.NewTimer(writerLinger)
	defer linger.Stop()
	var batch []outFrame
	for {
		ws.mu.Lock()
		if len(ws.queue) == 0 && !ws.overflow {
			ws.mu.Unlock()
			linger.Reset(writerLinger)
			select {
			case <-ws.wake:
			case <-ws.terminated:
				return
			case <-linger.C:
				ws.mu.Lock()
				if len(ws.queue) == 0 && !ws.overflow {
					ws.writing = false
					ws.mu.Unlock()
					return
				}
				ws.mu.Unlock()
			}
			continue
		}
		batch, ws.queue = ws.queue, batch[:0]
		ws.queueBytes = 0
		now := time.Now()
		if !ws.queuedAt.IsZero() {
			rt.metrics.sendDelay.Observe(now.Sub(ws.queuedAt).Seconds())
			ws.queuedAt = time.Time{}
		}
		if ws.overflow {
			// Too far behind: what is queued is dropped and the client
			// told to come back later; nothing more is queued.
			ws.overflow, ws.closing = false, true
			batch = append(batch[:0], outFrame{close: true, code: protocol.CloseTryAgainLater, reason: "slow consumer"})
		}
		ws.mu.Unlock()
		if len(batch) > 1 {
			ws.cork.Hold()
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
				ws.mu.Lock()
				ws.closing = true
				ws.mu.Unlock()
				// Give the peer a moment to answer the close, then give up.
				_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
				go func(code int, reason string) {
					select {
					case <-ws.terminated:
					case <-time.After(2 * time.Second):
						ws.terminate(code, reason)
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
				ws.abort()
				return
			}
			if !f.close && !f.ping && !f.pong {
				rt.metrics.wsFramesOut.Inc()
				rt.messagesOut.Add(1)
			}
		}
		if err := ws.cork.Release(); err != nil {
			ws.abort()
			return
		}
		clear(batch)
	}
}

// abort closes the connection after a write failure; the reader then ends
// the socket.
func (ws *WebSocket) abort() {
	ws.mu.Lock()
	conn := ws.conn
	ws.mu.Unlock()
	if conn != nil {
		_ = conn.Close()
	}
	// A parked socket has no reader to see the close: start one.
	if ws.entry.rt.idle.unpark(ws) {
		go ws.readLoop()
	}
}

// terminate ends the socket once: it leaves the object's socket list and the
// object gets OnClose.
func (ws *WebSocket) terminate(code int, reason string) {
	ws.mu.Lock()
	if ws.ended {
		ws.mu.Unlock()
		return
	}
	ws.ended = true
	conn := ws.conn
	ws.queue = nil
	if ws.expiry != nil {
		ws.expiry.Stop()
	}
	if ws.pinger != nil {
		ws.pinger.Stop()
	}
	ws.mu.Unlock()
	close(ws.terminated)
	ws.entry.rt.unadmit(ws)
	if conn != nil {
		_ = conn.Close()
	}
	ws.entry.rt.idle.unpark(ws) // closing the socket left the epoll set
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
