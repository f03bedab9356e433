package runtime

import (
	"context"
	"fmt"
	"net/http"
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

// EdgeLink carries the frames of an owner's remote sockets to the edge
// that holds their connections, in the order given.
type EdgeLink interface {
	// Send queues a text frame for the edge's socket sid. Consecutive
	// sends of the same data (a broadcast) may cross as one message.
	Send(sid uint64, data []byte)
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
	default:
		c.link.Send(c.sid, f.data)
	}
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
	c.link.Accepted(c.sid)
}
