package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/holocron-run/holocron/internal/corkconn"
	"github.com/holocron-run/holocron/protocol"
)

// In a cluster a client's WebSocket stays on the node it connected to, its
// edge, which runs the connection (read loop, rate limit, parking, pings,
// write queue); the object, on its owner, keeps the socket's record (tags,
// attachment) and sends its frames over the peer link. The cluster carries
// the traffic; the runtime gives it the two ends: an EdgeSocket on the edge
// and a RemoteSocket on the owner.

// EdgeUpstream receives what an edge socket's connection reads, in order,
// one call at a time. Message may block: that is the client's
// backpressure, as an object's mailbox is for a local socket.
type EdgeUpstream interface {
	// Message is a message the client sent.
	Message(m Message)
	// MessageTooLarge reports a message the connection refused for its
	// size (the object gets ErrMessageTooLarge in OnError).
	MessageTooLarge()
	// Ended reports that the connection ended, with the close code and
	// reason the client sent (or 1006 when it broke off).
	Ended(code int, reason string)
}

// EdgeSocket is a client's WebSocket held on this node (its edge) for an
// object another node owns. Frames may be queued before Upgrade; they are
// written once the client is upgraded.
type EdgeSocket struct {
	c  *socketConn
	up EdgeUpstream
}

// NewEdgeSocket prepares the connection of the client upgrade request r,
// counted against this node's socket limits (per IP and per principal):
// the edge is where the client's connection is.
func (rt *Runtime) NewEdgeSocket(r *http.Request, up EdgeUpstream) *EdgeSocket {
	remote := r.RemoteAddr
	var principal *Principal
	if p, ok := PrincipalFrom(r.Context()); ok {
		principal = &p
	}
	s := &EdgeSocket{up: up}
	ip, key := socketKeys(remote, principal)
	s.c = rt.newSocketConn(s, ip, key)
	if principal != nil {
		s.c.expires = principal.Expires
	}
	rt.mu.Lock()
	rt.edgeSockets[s.c] = struct{}{}
	rt.mu.Unlock()
	rt.metrics.edgeSockets.Inc()
	return s
}

// Upgrade answers r (the request NewEdgeSocket was given) with the
// WebSocket upgrade and starts the connection. On failure the client has
// been answered and the socket has ended.
func (s *EdgeSocket) Upgrade(w http.ResponseWriter, r *http.Request) error {
	rt := s.c.rt
	hj := &corkconn.Hijacker{ResponseWriter: w, Pool: &rt.corkBufs, ReaderSize: socketReadBuffer}
	conn, err := rt.upgrader.Upgrade(hj, r, nil)
	if err != nil {
		s.c.terminate(protocol.CloseAbnormal, "upgrade failed")
		return fmt.Errorf("edge socket upgrade: %w", err)
	}
	s.c.start(conn, hj.Conn, hj.Reader)
	return nil
}

// Send queues a text frame; sockets may share data.
func (s *EdgeSocket) Send(data []byte) { s.c.enqueue(outFrame{data: data}) }

// Close closes the socket with code and reason after the frames queued
// before it.
func (s *EdgeSocket) Close(code int, reason string) {
	s.c.enqueue(outFrame{close: true, code: code, reason: reason})
}

// Abort ends a socket that will not be upgraded (its object refused it).
func (s *EdgeSocket) Abort() { s.c.terminate(protocol.CloseAbnormal, "refused") }

func (s *EdgeSocket) message(m Message)      { s.up.Message(m) }
func (s *EdgeSocket) messageError(err error) { s.up.MessageTooLarge() }
func (s *EdgeSocket) ended(code int, reason string) {
	rt := s.c.rt
	rt.mu.Lock()
	delete(rt.edgeSockets, s.c)
	rt.mu.Unlock()
	rt.metrics.edgeSockets.Dec()
	s.up.Ended(code, reason)
}

// Cursor is what a frame sent with SendAt brings its socket up to: under
// Key (a stream of the object's, such as a chat room), Value.
type Cursor struct{ Key, Value string }

// Bounds of cursors, which a socket's edge keeps for as long as the socket
// is open.
const (
	MaxCursorKey   = 64
	MaxCursorValue = 256
	// MaxCursorKeys is how many keys an edge keeps per socket; beyond
	// them it forgets the key it heard of least recently.
	MaxCursorKeys = 32
)

// ErrCursorTooLong is returned by SendAt and BroadcastAt for a key or
// cursor beyond MaxCursorKey or MaxCursorValue, or an empty key.
var ErrCursorTooLong = errors.New("websocket cursor key empty or cursor too long")

func newCursor(key, value string) (*Cursor, error) {
	if key == "" || len(key) > MaxCursorKey || len(value) > MaxCursorValue {
		return nil, fmt.Errorf("cursor %q=%q: %w", key, value, ErrCursorTooLong)
	}
	return &Cursor{Key: key, Value: value}, nil
}

// Reattacher is implemented by objects that take a socket back when their
// owner changes: the old owner died, hung, was cut off or handed the
// object over, while the client's connection stayed open on another node
// (its edge). The edge then attaches the socket to the object on its new
// owner, and OnReattach runs, as an event, with the socket as it was: its
// tags, its attachment and, for each key, the cursor of the last frame
// sent with SendAt or BroadcastAt under it that reached the edge. The
// object sends the socket what it has missed since; frames of later events
// follow. Without it, such sockets are closed with 1012 and their clients
// reconnect.
type Reattacher interface {
	OnReattach(ctx context.Context, ws *WebSocket, cursors map[string]string)
}

// EdgeReattach is what an edge sends with a socket it attaches to a new
// owner.
type EdgeReattach struct {
	Tags       []string
	Attachment []byte
	Cursors    map[string]string
}

// EdgeLink carries the frames of an owner's remote sockets to the edge
// that holds their connections, in the order given.
type EdgeLink interface {
	// Send queues a text frame for the edge's sockets sids, with the
	// cursor it brings them to (nil: none): a broadcast crosses as one
	// message.
	Send(sids []uint64, data []byte, cursor *Cursor)
	// Record tells the edge the socket's tags and attachment, which it
	// keeps to attach the socket to a new owner.
	Record(sid uint64, tags []string, attachment []byte)
	// Close asks the edge to close socket sid with code and reason.
	Close(sid uint64, code int, reason string)
	// Accepted tells the edge that the object accepted socket sid: it
	// upgrades its client.
	Accepted(sid uint64)
}

// EdgeAttach is what an upgrade request that an edge sent its owner
// carries in its context (WithEdgeAttach): the object's AcceptWebSocket
// then makes a remote socket, whose frames go over Link as socket SID, and
// the runtime answers the request by calling Attached and Link.Accepted
// instead of upgrading a connection.
type EdgeAttach struct {
	Link EdgeLink
	SID  uint64
	// Reattach, when set, attaches an open socket to the object after its
	// owner changed: the object's OnReattach runs instead of ServeHTTP.
	Reattach *EdgeReattach
	// Attached receives the accepted socket's owner end, to which the
	// edge's traffic for it is delivered.
	Attached func(*RemoteSocket)
}

type edgeAttachKey struct{}

// WithEdgeAttach returns ctx carrying a.
func WithEdgeAttach(ctx context.Context, a *EdgeAttach) context.Context {
	return context.WithValue(ctx, edgeAttachKey{}, a)
}

func edgeAttachFrom(ctx context.Context) (*EdgeAttach, bool) {
	a, ok := ctx.Value(edgeAttachKey{}).(*EdgeAttach)
	return a, ok
}

// RemoteSocket is the owner's end of a socket whose connection is on
// another node: what its edge reads is delivered here.
type RemoteSocket struct{ ws *WebSocket }

// Message delivers a message the client sent; it waits for room in the
// object's mailbox.
func (s *RemoteSocket) Message(m Message) { s.ws.message(m) }

// MessageTooLarge tells the object of a message the edge refused.
func (s *RemoteSocket) MessageTooLarge() { s.ws.messageError(ErrMessageTooLarge) }

// Ended reports that the client's connection ended: the object gets
// OnClose. Later calls do nothing.
func (s *RemoteSocket) Ended(code int, reason string) {
	s.ws.conn.(*remoteConn).end(code, reason, false)
}

// remoteConn is the connection of a remote socket as its owner sees it:
// frames go to the edge over the link.
type remoteConn struct {
	ws   *WebSocket
	link EdgeLink
	sid  uint64

	mu      sync.Mutex
	closing bool
	ended   bool
}

func (c *remoteConn) enqueue(f outFrame) {
	c.mu.Lock()
	if c.ended || c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = f.close
	c.mu.Unlock()
	switch {
	case f.close:
		c.link.Close(c.sid, f.code, f.reason)
	case f.ping || f.pong:
		// The edge keeps the connection alive.
	case f.record != nil:
		c.link.Record(c.sid, f.record.tags, f.record.attachment)
	default:
		c.link.Send([]uint64{c.sid}, f.data, f.cursor)
	}
}

// sendable reports whether frames may still go to the socket.
func (c *remoteConn) sendable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.ended && !c.closing
}

// terminate ends the socket here and asks the edge to close it.
func (c *remoteConn) terminate(code int, reason string) { c.end(code, reason, true) }

// end ends the socket once; tell asks the edge to close it too.
func (c *remoteConn) end(code int, reason string, tell bool) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		return
	}
	c.ended = true
	closing := c.closing
	c.mu.Unlock()
	if tell && !closing {
		c.link.Close(c.sid, code, reason)
	}
	c.ws.ended(code, reason)
}

// accepted answers an edge's upgrade request whose object accepted it.
func (c *remoteConn) accepted(a *EdgeAttach) {
	if a.Attached != nil {
		a.Attached(&RemoteSocket{ws: c.ws})
	}
	// The record as accepted (AcceptWebSocket's tags); later changes
	// follow with the frames (recordChanged).
	e := c.ws.entry
	e.mu.Lock()
	tags, attachment := slices.Clone(c.ws.tags), c.ws.attachment
	e.mu.Unlock()
	if len(tags) > 0 || attachment != nil {
		c.link.Record(c.sid, tags, attachment)
	}
	c.link.Accepted(c.sid)
}

// reattach runs ev, an edge's request to attach an open socket to this
// object after its owner changed (a.Reattach): the object's OnReattach, or,
// for an object without one, an answer that makes the edge close the
// socket (1012) for its client to reconnect.
func (e *entry) reattach(ctx context.Context, ev event, a *EdgeAttach) {
	h, ok := e.instance.(Reattacher)
	if !ok {
		WriteError(ev.resp, http.StatusConflict, protocol.CodeUnavailable, "the object does not take sockets back after a move; reconnect")
		return
	}
	ws := e.newSocket(ev.req, a.Reattach.Tags, a.Reattach.Attachment)
	ev.resp.socket = ws
	h.OnReattach(ctx, ws, a.Reattach.Cursors)
}
