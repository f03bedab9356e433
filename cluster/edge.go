package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// Edge sockets. A client's WebSocket stays on the node it connected to,
// its edge, even when another node owns the object it is for. The edge
// runs the connection (runtime.EdgeSocket: read loop, rate limit, parking,
// pings); the owner keeps the socket's record (runtime.RemoteSocket). Each
// edge keeps one session with each owner it has sockets at: one HTTP/2
// stream over the peer link, full duplex, that carries every socket's
// upgrade, messages and end one way, and frames and closes the other way
// (edgewire.go). A broadcast crosses each session once: the owner's queue
// sends consecutive frames of the same data as one message naming the
// sockets, and the edge writes it to each.
//
// When a session breaks (the owner died, or moved away and closed it),
// the edge closes its sockets with 1012 and their clients reconnect and
// resume, as a socket on the owner itself does when the object moves.

// EdgePath is where an edge opens its session with an owner.
const EdgePath = "/internal/edge"

// Bounds of a session's queues. The owner's must never hold up an object's
// commit: an edge that falls this far behind loses its session (and its
// clients reconnect). The edge's waits for room instead: the clients'
// messages wait in their sockets.
const (
	edgeOwnerQueueBytes = 64 << 20
	edgeEdgeQueueBytes  = 16 << 20
)

// maxEdgeAnswerBody bounds the body of an owner's refusal of an upgrade.
const maxEdgeAnswerBody = 64 << 10

// SetRuntime gives the node the runtime its edge sockets run in; until it
// is set, WebSockets for objects other nodes own are refused.
func (n *Node) SetRuntime(rt *runtime.Runtime) { n.rt.Store(rt) }

// EdgeHandler serves EdgePath on the peer listener: one edge's session,
// whose upgrade requests go through objects (the node's object routes, with
// authentication) as any forwarded request does.
func (n *Node) EdgeHandler(objects http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor < 2 {
			http.Error(w, "edge session needs HTTP/2", http.StatusHTTPVersionNotSupported)
			return
		}
		rc := http.NewResponseController(w)
		w.WriteHeader(http.StatusOK)
		if err := rc.Flush(); err != nil {
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(n.ctx, cancel)
		defer stop()
		s := &ownerSession{
			n:         n,
			objects:   objects,
			ctx:       ctx,
			out:       newEdgeQueue(edgeOwnerQueueBytes),
			sockets:   map[uint64]*runtime.RemoteSocket{},
			attaching: map[uint64]bool{},
		}
		// The session ends when either direction fails or the node stops:
		// closing the request body ends the read, a past write deadline
		// a write the edge does not take.
		stopRead := context.AfterFunc(ctx, func() { r.Body.Close() })
		defer stopRead()
		if m := n.metrics; m != nil {
			m.edgeSessions.WithLabelValues("owner").Inc()
			s.out.sentOut = func(sockets int) {
				m.edgeMessages.Inc()
				m.edgeFrames.Add(float64(sockets))
			}
		}
		written := make(chan error, 1)
		go func() {
			err := s.out.run(w, rc.Flush)
			cancel()
			written <- err
		}()
		err := s.read(ctx, bufio.NewReaderSize(r.Body, 32<<10))
		s.out.close()
		cancel()
		_ = rc.SetWriteDeadline(time.Now())
		<-written
		s.end()
		if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
			n.log.Warn("edge session ended", "edge", peerNameOf(r), "err", err)
		}
	})
}

func peerNameOf(r *http.Request) string {
	if name, ok := PeerName(r); ok && name != "" {
		return name
	}
	return r.RemoteAddr
}

// ownerSession is the owner's end of one edge's session.
type ownerSession struct {
	n       *Node
	objects http.Handler
	ctx     context.Context
	out     *edgeQueue

	mu      sync.Mutex
	sockets map[uint64]*runtime.RemoteSocket
	// attaching are upgrades being decided; true once the edge said the
	// client went away meanwhile.
	attaching map[uint64]bool
	ended     bool
	wg        sync.WaitGroup
}

// read handles what the edge sends until the session ends.
func (s *ownerSession) read(ctx context.Context, r *bufio.Reader) error {
	for {
		m, err := readEdgeMsg(r)
		if err != nil {
			return err
		}
		switch m.kind {
		case edgeAttach:
			s.mu.Lock()
			_, dup := s.attaching[m.sid]
			_, open := s.sockets[m.sid]
			if !dup && !open {
				s.attaching[m.sid] = false
			}
			s.mu.Unlock()
			if dup || open {
				return fmt.Errorf("%w: socket %d attached twice", errEdgeMalformed, m.sid)
			}
			s.wg.Add(1)
			go s.attach(ctx, m)
		case edgeIn, edgeInBinary, edgeTooLarge:
			s.mu.Lock()
			rs := s.sockets[m.sid]
			s.mu.Unlock()
			switch {
			case rs == nil:
				// Ended here already (the object closed it): the edge
				// will hear of it.
			case m.kind == edgeTooLarge:
				rs.MessageTooLarge()
			default:
				rs.Message(runtime.Message{Data: m.data, Binary: m.kind == edgeInBinary})
			}
		case edgeEnded:
			s.mu.Lock()
			rs := s.sockets[m.sid]
			delete(s.sockets, m.sid)
			if _, ok := s.attaching[m.sid]; ok {
				s.attaching[m.sid] = true
			}
			s.mu.Unlock()
			if rs != nil {
				rs.Ended(m.code, m.text)
			}
		default:
			return fmt.Errorf("%w: kind %d from an edge", errEdgeMalformed, m.kind)
		}
	}
}

// attach runs a client's upgrade request through the object routes, as
// the edge's client sent it, and answers it.
func (s *ownerSession) attach(ctx context.Context, m *edgeMsg) {
	defer s.wg.Done()
	attached := false
	a := &runtime.EdgeAttach{Link: s, SID: m.sid, Attached: func(rs *runtime.RemoteSocket) {
		attached = true
		s.mu.Lock()
		gone := s.attaching[m.sid] || s.ended
		delete(s.attaching, m.sid)
		if !gone {
			s.sockets[m.sid] = rs
		}
		s.mu.Unlock()
		if gone {
			go rs.Ended(protocol.CloseAbnormal, "client gone before upgrade")
		}
	}}
	req, err := http.NewRequestWithContext(runtime.WithEdgeAttach(ctx, a), http.MethodGet, m.text, http.NoBody)
	if err != nil {
		s.refuse(m.sid, http.StatusBadRequest, nil, []byte(err.Error()))
		return
	}
	req.Header = m.header
	// The client's upgrade, as the runtime checks it (the edge upgrades
	// the client itself and sent only what the object may read).
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "edge")
	req.RequestURI = m.text
	answer := &edgeAnswer{header: http.Header{}}
	s.objects.ServeHTTP(answer, req)
	if attached {
		return // the runtime told the edge (Accepted)
	}
	s.mu.Lock()
	delete(s.attaching, m.sid)
	s.mu.Unlock()
	s.refuse(m.sid, answer.status, answer.header, answer.body)
}

func (s *ownerSession) refuse(sid uint64, status int, h http.Header, body []byte) {
	if status == 0 {
		status = http.StatusOK
	}
	s.out.push(edgeMsg{kind: edgeRefused, sid: sid, code: status, header: h, data: body}, false)
}

// Send, Close and Accepted are the session as the runtime's EdgeLink: they
// never wait. An edge whose queue is full is cut off.
func (s *ownerSession) Send(sid uint64, data []byte) {
	s.push(edgeMsg{kind: edgeOut, sid: sid, data: data})
}

// Close asks the edge to close socket sid.
func (s *ownerSession) Close(sid uint64, code int, reason string) {
	s.push(edgeMsg{kind: edgeClose, sid: sid, code: code, text: reason})
}

// Accepted tells the edge to upgrade socket sid's client.
func (s *ownerSession) Accepted(sid uint64) { s.push(edgeMsg{kind: edgeAccepted, sid: sid}) }

func (s *ownerSession) push(m edgeMsg) {
	if !s.out.push(m, false) {
		// Closed, or the edge is too far behind: it loses the session.
		s.out.close()
	}
}

// end ends every socket of the session, as if each client had gone away.
func (s *ownerSession) end() {
	s.mu.Lock()
	s.ended = true
	socks := s.sockets
	s.sockets = map[uint64]*runtime.RemoteSocket{}
	s.mu.Unlock()
	for _, rs := range socks {
		rs.Ended(protocol.CloseAbnormal, "edge session ended")
	}
	s.wg.Wait()
}

// edgeAnswer records what the object routes answered an upgrade request
// that the object did not accept.
type edgeAnswer struct {
	header http.Header
	status int
	body   []byte
}

func (a *edgeAnswer) Header() http.Header { return a.header }

func (a *edgeAnswer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *edgeAnswer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	room := maxEdgeAnswerBody - len(a.body)
	a.body = append(a.body, b[:min(len(b), max(room, 0))]...)
	return len(b), nil
}

// edgeClient is an edge's session with one owner.
type edgeClient struct {
	n    *Node
	addr string
	out  *edgeQueue
	body *io.PipeWriter

	mu      sync.Mutex
	sockets map[uint64]*edgeConn
	ended   bool
	done    chan struct{}
}

// edgeConn is one socket of an edge session, as the edge holds it.
type edgeConn struct {
	cl     *edgeClient
	sid    uint64
	sock   *runtime.EdgeSocket
	answer chan *edgeMsg // the owner's accepted or refused; nil: the session ended
	// answered is set once the answer came: frames before it queue in
	// sock until the client is upgraded.
	answered atomic.Bool
}

// errEdgeSessionEnded fails an upgrade whose session ended before the
// owner answered: the object may have run its accept.
var errEdgeSessionEnded = errors.New("edge session ended before the owner answered")

// edgeSession returns the session with the owner at addr, opening it.
func (n *Node) edgeSession(ctx context.Context, addr string) (*edgeClient, error) {
	n.edgeMu.Lock()
	cl := n.edgeClients[addr]
	n.edgeMu.Unlock()
	if cl != nil {
		return cl, nil
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(n.ctx, http.MethodPost, n.peer.URL(addr, EdgePath), pr)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HopHeader, n.cfg.NodeName)
	type result struct {
		resp *http.Response
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := n.peer.RoundTripper().RoundTrip(req)
		got <- result{resp, err}
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		pw.CloseWithError(ctx.Err())
		go func() {
			if r := <-got; r.resp != nil {
				r.resp.Body.Close()
			}
		}()
		return nil, ctx.Err()
	}
	if res.err != nil {
		pw.CloseWithError(res.err)
		return nil, res.err
	}
	if res.resp.StatusCode != http.StatusOK {
		res.resp.Body.Close()
		pw.Close()
		return nil, fmt.Errorf("edge session with %s: %s", addr, res.resp.Status)
	}
	cl = &edgeClient{n: n, addr: addr, out: newEdgeQueue(edgeEdgeQueueBytes), body: pw, sockets: map[uint64]*edgeConn{}, done: make(chan struct{})}
	n.edgeMu.Lock()
	if other := n.edgeClients[addr]; other != nil {
		n.edgeMu.Unlock()
		res.resp.Body.Close()
		pw.Close()
		return other, nil
	}
	n.edgeClients[addr] = cl
	n.edgeMu.Unlock()
	if m := n.metrics; m != nil {
		m.edgeSessions.WithLabelValues("edge").Inc()
	}
	go func() {
		bw := bufio.NewWriterSize(pw, 32<<10)
		err := cl.out.run(bw, bw.Flush)
		cl.fail(err)
	}()
	go func() {
		err := cl.read(bufio.NewReaderSize(res.resp.Body, 32<<10))
		res.resp.Body.Close()
		cl.fail(err)
	}()
	return cl, nil
}

// read handles what the owner sends until the session ends.
func (cl *edgeClient) read(r *bufio.Reader) error {
	for {
		m, err := readEdgeMsg(r)
		if err != nil {
			return err
		}
		switch m.kind {
		case edgeOut:
			cl.mu.Lock()
			for _, sid := range m.sids {
				if c := cl.sockets[sid]; c != nil {
					c.sock.Send(m.data)
				}
			}
			cl.mu.Unlock()
		case edgeClose:
			cl.mu.Lock()
			c := cl.sockets[m.sid]
			cl.mu.Unlock()
			if c != nil {
				c.sock.Close(m.code, m.text)
			}
		case edgeAccepted, edgeRefused:
			cl.mu.Lock()
			c := cl.sockets[m.sid]
			if m.kind == edgeRefused {
				delete(cl.sockets, m.sid)
			}
			cl.mu.Unlock()
			if c != nil && !c.answered.Swap(true) {
				c.answer <- m
			}
		default:
			return fmt.Errorf("%w: kind %d from an owner", errEdgeMalformed, m.kind)
		}
	}
}

// fail ends the session once: upgrades waiting for an answer fail, and
// every socket is closed with 1012 (its client reconnects, through any
// node, to the object's owner as it is then).
func (cl *edgeClient) fail(err error) {
	cl.mu.Lock()
	if cl.ended {
		cl.mu.Unlock()
		return
	}
	cl.ended = true
	socks := cl.sockets
	cl.sockets = map[uint64]*edgeConn{}
	cl.mu.Unlock()
	close(cl.done)
	cl.out.close()
	cl.body.CloseWithError(errors.Join(err, errEdgeSessionEnded))
	cl.n.edgeMu.Lock()
	if cl.n.edgeClients[cl.addr] == cl {
		delete(cl.n.edgeClients, cl.addr)
	}
	cl.n.edgeMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) && cl.n.ctx.Err() == nil {
		cl.n.log.Info("edge session ended", "owner", cl.addr, "err", err)
	}
	for _, c := range socks {
		if !c.answered.Swap(true) {
			c.answer <- nil
			continue
		}
		c.sock.Close(protocol.CloseMoved, "moved")
	}
}

// add registers a new socket of the session.
func (cl *edgeClient) add(c *edgeConn) bool {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.ended {
		return false
	}
	cl.sockets[c.sid] = c
	return true
}

// Message, MessageTooLarge and Ended are the socket's runtime.EdgeUpstream.
func (c *edgeConn) Message(m runtime.Message) {
	kind := edgeIn
	if m.Binary {
		kind = edgeInBinary
	}
	c.cl.out.push(edgeMsg{kind: kind, sid: c.sid, data: m.Data}, true)
}

// MessageTooLarge tells the owner of a message refused for its size.
func (c *edgeConn) MessageTooLarge() {
	c.cl.out.push(edgeMsg{kind: edgeTooLarge, sid: c.sid}, true)
}

// Ended tells the owner that the client's connection ended.
func (c *edgeConn) Ended(code int, reason string) {
	c.cl.mu.Lock()
	if c.cl.sockets[c.sid] == c {
		delete(c.cl.sockets, c.sid)
	}
	c.cl.mu.Unlock()
	c.cl.out.push(edgeMsg{kind: edgeEnded, sid: c.sid, code: code, text: reason}, true)
}

// edgeHeaders are the headers of a client's upgrade request that its
// owner sees (as a relayed request's): what authentication and objects
// read.
var edgeHeaders = []string{"Authorization", "Cookie", "Origin", "User-Agent", "Sec-WebSocket-Protocol"}

// serveEdgeSocket holds the client's WebSocket r here, for an object that
// the node at one of candidates owns: it asks the owner to accept it over
// their session, then upgrades the client, or passes the owner's refusal
// on. It reports retry, having written nothing, when no candidate could be
// reached or the one reached no longer serves the partition.
func (n *Node) serveEdgeSocket(w http.ResponseWriter, r *http.Request, p int, candidates []string) (retry bool) {
	rt := n.rt.Load()
	if rt == nil {
		unavailable(w, "this node does not hold sockets yet")
		return false
	}
	header := http.Header{}
	for _, k := range edgeHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			header[k] = v
		}
	}
	header.Set(HopHeader, n.cfg.NodeName)
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		header.Set(runtime.ForwardedForHeader, host)
	}
	for _, addr := range candidates {
		cl, err := n.edgeSession(r.Context(), addr)
		if err != nil {
			n.log.Debug("edge session failed", "to", addr, "err", err)
			continue
		}
		c := &edgeConn{cl: cl, sid: n.edgeSIDs.Add(1), answer: make(chan *edgeMsg, 1)}
		c.sock = rt.NewEdgeSocket(r, c)
		if !cl.add(c) || !cl.out.push(edgeMsg{kind: edgeAttach, sid: c.sid, text: r.URL.RequestURI(), header: header}, false) {
			c.sock.Abort()
			continue // the session ended before the request left
		}
		var m *edgeMsg
		select {
		case m = <-c.answer:
		case <-r.Context().Done():
			c.sock.Abort()
			return false
		}
		switch {
		case m == nil:
			c.sock.Abort()
			unavailable(w, fmt.Sprintf("partition %d: %v", p, errEdgeSessionEnded))
			return false
		case m.kind == edgeAccepted:
			if err := c.sock.Upgrade(w, r); err != nil {
				n.log.Debug("edge socket upgrade", "err", err)
			}
			return false
		}
		c.sock.Abort()
		if m.code == http.StatusServiceUnavailable && m.header.Get(runtime.HeaderNotServed) != "" {
			return true // it no longer serves the partition: route again
		}
		for k, v := range m.header {
			w.Header()[k] = v
		}
		w.WriteHeader(m.code)
		w.Write(m.data)
		return false
	}
	return true // no candidate could be reached: route again
}
