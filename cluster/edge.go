package cluster

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// Edge sockets. A client's WebSocket stays on the node it connected to,
// its edge, even when another node owns the object it is for. The edge
// runs the connection (runtime.EdgeSocket: read loop, rate limit, parking,
// pings); the owner keeps the socket's record (runtime.RemoteSocket). Each
// edge keeps one session with each owner it has sockets at, over the peer
// link: a long response stream (GET EdgePath) carries frames, closes and
// records from the owner, and requests of their own (POST EdgeInPath, one
// at a time, so in order) carry every socket's upgrade, messages and end
// from the edge (edgewire.go's messages both ways). The response stream is
// HTTP/2's well-trodden path; a request body streamed at once with its
// response stalled under load in testing, with the owner never seeing data
// the edge's transport had taken. A broadcast crosses each session once: the owner's queue
// sends consecutive frames of the same data as one message naming the
// sockets, and the edge writes it to each.
//
// When a session breaks (the owner died, or moved away and closed it),
// the edge closes its sockets with 1012 and their clients reconnect and
// resume, as a socket on the owner itself does when the object moves.

// EdgePath is where an edge opens its session with an owner (GET, a
// response stream); EdgeInPath is where it sends the session's messages
// (POST, ?session= the ID the stream's header gave).
const (
	EdgePath   = "/internal/edge"
	EdgeInPath = "/internal/edge/in"
)

// edgeSessionHeader carries an owner session's ID.
const edgeSessionHeader = "X-Holocron-Edge-Session"

// Bounds of a session's queues. The owner's must never hold up an object's
// commit: an edge that falls this far behind loses its session (and its
// clients reconnect). The edge's waits for room instead: the clients'
// messages wait in their sockets.
const (
	edgeOwnerQueueBytes = 64 << 20
	edgeEdgeQueueBytes  = 16 << 20
)

// maxEdgeBatch bounds one batch of an edge's messages.
const maxEdgeBatch = 64 << 20

// maxEdgeAnswerBody bounds the body of an owner's refusal of an upgrade.
const maxEdgeAnswerBody = 64 << 10

// SetRuntime gives the node the runtime its edge sockets run in; until it
// is set, WebSockets for objects other nodes own are refused.
func (n *Node) SetRuntime(rt *runtime.Runtime) { n.rt.Store(rt) }

// EdgeHandler serves EdgePath and EdgeInPath on the peer listener: edges'
// sessions, whose upgrade requests go through objects (the node's object
// routes, with authentication) as any forwarded request does.
func (n *Node) EdgeHandler(objects http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+EdgePath, func(w http.ResponseWriter, r *http.Request) { n.serveOwnerSession(w, r, objects) })
	mux.HandleFunc("POST "+EdgeInPath, n.serveEdgeIn)
	return mux
}

// serveOwnerSession runs one edge's session: it streams what the owner
// sends until the edge goes, the stream breaks or the node stops.
func (n *Node) serveOwnerSession(w http.ResponseWriter, r *http.Request, objects http.Handler) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	s := &ownerSession{
		n:         n,
		objects:   objects,
		ctx:       ctx,
		cancel:    cancel,
		out:       newEdgeQueue(edgeOwnerQueueBytes),
		sockets:   map[uint64]*runtime.RemoteSocket{},
		attaching: map[uint64]bool{},
	}
	id := fmt.Sprintf("%x", n.edgeSIDs.Add(1)) + "-" + rand.Text()
	n.edgeMu.Lock()
	n.ownerSessions[id] = s
	n.edgeMu.Unlock()
	defer func() {
		n.edgeMu.Lock()
		delete(n.ownerSessions, id)
		n.edgeMu.Unlock()
	}()
	if m := n.metrics; m != nil {
		m.edgeSessions.WithLabelValues("owner").Inc()
		s.out.sentOut = func(sockets int) {
			m.edgeMessages.Inc()
			m.edgeFrames.Add(float64(sockets))
		}
	}
	rc := http.NewResponseController(w)
	w.Header().Set(edgeSessionHeader, id)
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	written := make(chan error, 1)
	go func() {
		err := s.out.run(w, rc.Flush)
		cancel()
		written <- err
	}()
	<-ctx.Done()
	s.out.close()
	// A write the edge does not take ends now.
	_ = rc.SetWriteDeadline(time.Now())
	err := <-written
	s.end()
	if err != nil && n.ctx.Err() == nil {
		n.log.Info("edge session ended", "edge", peerNameOf(r), "err", err)
	}
}

// serveEdgeIn handles one batch of an edge's messages, in order, and
// answers once they are delivered (the edge sends the next batch then).
// A batch for a session that is gone is answered 410: the edge ends it.
func (n *Node) serveEdgeIn(w http.ResponseWriter, r *http.Request) {
	n.edgeMu.Lock()
	s := n.ownerSessions[r.URL.Query().Get("session")]
	n.edgeMu.Unlock()
	if s == nil {
		http.Error(w, "no such edge session", http.StatusGone)
		return
	}
	body := bufio.NewReaderSize(io.LimitReader(r.Body, maxEdgeBatch), 32<<10)
	for {
		m, err := readEdgeMsg(body)
		if errors.Is(err, io.EOF) {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if err == nil {
			err = s.handle(m)
		}
		if err != nil {
			// A batch that does not decode, or breaks off: the
			// session is over (its messages' order is lost).
			s.cancel()
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
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
	cancel  context.CancelFunc
	out     *edgeQueue

	mu      sync.Mutex
	sockets map[uint64]*runtime.RemoteSocket
	// attaching are upgrades being decided; true once the edge said the
	// client went away meanwhile.
	attaching map[uint64]bool
	ended     bool
	wg        sync.WaitGroup
}

// handle handles one message from the edge.
func (s *ownerSession) handle(m *edgeMsg) error {
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
		go s.attach(s.ctx, m)
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
	return nil
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
	if m.reattach {
		a.Reattach = &runtime.EdgeReattach{Tags: m.tags, Attachment: m.attachment, Cursors: m.cursors}
	}
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
func (s *ownerSession) Send(sids []uint64, data []byte, cursor *runtime.Cursor) {
	s.push(edgeMsg{kind: edgeOut, sids: sids, data: data, cursor: cursor})
}

// Record sends the edge socket sid's record.
func (s *ownerSession) Record(sid uint64, tags []string, attachment []byte) {
	s.push(edgeMsg{kind: edgeRecord, sid: sid, tags: tags, attachment: attachment})
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
	// id is the session's name at the owner; stream its response stream.
	id     string
	stream io.Closer

	mu      sync.Mutex
	sockets map[uint64]*edgeConn
	ended   bool
}

// edgeConn is one client socket this node holds as its edge. It outlives
// the sessions it is carried by: when its object's owner changes, it is
// attached to the next one (move) and its client notices nothing.
type edgeConn struct {
	n    *Node
	sock *runtime.EdgeSocket
	// p, uri and header route the socket and attach it again.
	p      int
	uri    string
	header http.Header

	mu   sync.Mutex
	cond *sync.Cond // signalled when a move ends or the socket ends
	cl   *edgeClient
	sid  uint64 // the socket's name in cl
	// answer receives the owner's accepted or refused for the attach in
	// flight; nil: its session ended first. answered is set once it came.
	answer   chan *edgeMsg
	answered bool
	moving   bool
	ended    bool
	// The record the owner keeps of the socket, mirrored to attach it to a
	// new owner: its tags, attachment, and each key's last cursor (in the
	// order heard of last, for the bound MaxCursorKeys).
	tags       []string
	attachment []byte
	cursors    map[string]string
	cursorKeys []string
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
	ctx, cancel := context.WithTimeout(ctx, edgeDialTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(n.ctx, http.MethodGet, n.peer.URL(addr, EdgePath), nil)
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
		resp, err := n.peer.EdgeRoundTripper().RoundTrip(req)
		got <- result{resp, err}
	}()
	var res result
	select {
	case res = <-got:
	case <-ctx.Done():
		go func() {
			if r := <-got; r.resp != nil {
				r.resp.Body.Close()
			}
		}()
		return nil, fmt.Errorf("edge session with %s: %w", addr, ctx.Err())
	}
	if res.err != nil {
		return nil, res.err
	}
	id := res.resp.Header.Get(edgeSessionHeader)
	if res.resp.StatusCode != http.StatusOK || id == "" {
		res.resp.Body.Close()
		return nil, fmt.Errorf("edge session with %s: %s", addr, res.resp.Status)
	}
	cl = &edgeClient{n: n, addr: addr, id: id, stream: res.resp.Body, out: newEdgeQueue(edgeEdgeQueueBytes), sockets: map[uint64]*edgeConn{}}
	n.edgeMu.Lock()
	if other := n.edgeClients[addr]; other != nil {
		n.edgeMu.Unlock()
		res.resp.Body.Close()
		return other, nil
	}
	n.edgeClients[addr] = cl
	n.edgeMu.Unlock()
	if m := n.metrics; m != nil {
		m.edgeSessions.WithLabelValues("edge").Inc()
	}
	go func() {
		var batch bytes.Buffer
		err := cl.out.run(&batch, func() error {
			defer batch.Reset()
			return cl.post(batch.Bytes())
		})
		cl.fail(err)
	}()
	go func() {
		err := cl.read(bufio.NewReaderSize(res.resp.Body, 32<<10))
		res.resp.Body.Close()
		cl.fail(err)
	}()
	return cl, nil
}

// edgeDialTimeout bounds opening a session, and edgePostTimeout one batch
// of an edge's messages: an owner that takes longer is taken for gone.
const (
	edgeDialTimeout = 5 * time.Second
	edgePostTimeout = 10 * time.Second
)

// post sends one batch of the session's messages and waits until the
// owner has them.
func (cl *edgeClient) post(batch []byte) error {
	ctx, cancel := context.WithTimeout(cl.n.ctx, edgePostTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cl.n.peer.URL(cl.addr, EdgeInPath+"?session="+url.QueryEscape(cl.id)), bytes.NewReader(batch))
	if err != nil {
		return err
	}
	req.Header.Set(HopHeader, cl.n.cfg.NodeName)
	resp, err := cl.n.peer.EdgeRoundTripper().RoundTrip(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("edge session with %s: batch answered %s", cl.addr, resp.Status)
	}
	return nil
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
					if m.cursor != nil {
						c.setCursor(*m.cursor)
					}
					c.sock.Send(m.data)
				}
			}
			cl.mu.Unlock()
		case edgeRecord:
			if c := cl.socket(m.sid); c != nil {
				c.mu.Lock()
				c.tags, c.attachment = m.tags, m.attachment
				c.mu.Unlock()
			}
		case edgeClose:
			c := cl.socket(m.sid)
			switch {
			case c == nil:
			case m.code == protocol.CloseMoved && m.text == protocol.ReasonMoved:
				// The object left its owner: attach the socket to
				// the next one. The old owner lets its record go.
				cl.drop(c)
				cl.out.push(edgeMsg{kind: edgeEnded, sid: m.sid, code: protocol.CloseMoved, text: protocol.ReasonMoved}, false)
				go c.move(cl)
			default:
				c.sock.Close(m.code, m.text)
			}
		case edgeAccepted, edgeRefused:
			c := cl.socket(m.sid)
			if m.kind == edgeRefused {
				cl.drop(c)
			}
			if c != nil {
				c.answerWith(cl, m)
			}
		default:
			return fmt.Errorf("%w: kind %d from an owner", errEdgeMalformed, m.kind)
		}
	}
}

func (cl *edgeClient) socket(sid uint64) *edgeConn {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return cl.sockets[sid]
}

// drop takes c out of the session (its frames there are no longer its).
func (cl *edgeClient) drop(c *edgeConn) {
	if c == nil {
		return
	}
	c.mu.Lock()
	sid := c.sid
	c.mu.Unlock()
	cl.mu.Lock()
	if cl.sockets[sid] == c {
		delete(cl.sockets, sid)
	}
	cl.mu.Unlock()
}

// fail ends the session once: attaches waiting for an answer fail, and
// every attached socket moves to its object's next owner.
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
	cl.out.close()
	cl.stream.Close()
	cl.n.edgeMu.Lock()
	if cl.n.edgeClients[cl.addr] == cl {
		delete(cl.n.edgeClients, cl.addr)
	}
	cl.n.edgeMu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) && cl.n.ctx.Err() == nil {
		cl.n.log.Info("edge session ended", "owner", cl.addr, "err", err)
	}
	for _, c := range socks {
		if !c.answerWith(cl, nil) {
			go c.move(cl)
		}
	}
}

// add registers c under a new name in the session, for an attach.
func (cl *edgeClient) add(c *edgeConn) bool {
	sid := cl.n.edgeSIDs.Add(1)
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.ended {
		return false
	}
	c.mu.Lock()
	c.cl, c.sid, c.answer, c.answered = cl, sid, make(chan *edgeMsg, 1), false
	c.mu.Unlock()
	cl.sockets[sid] = c
	return true
}

// answerWith hands the owner's answer to the attach in flight on cl, and
// reports whether there was one.
func (c *edgeConn) answerWith(cl *edgeClient, m *edgeMsg) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cl != cl || c.answered {
		return false
	}
	c.answered = true
	c.answer <- m
	return true
}

func (c *edgeConn) setCursor(cur runtime.Cursor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cursors == nil {
		c.cursors = map[string]string{}
	}
	if i := slices.Index(c.cursorKeys, cur.Key); i >= 0 {
		c.cursorKeys = slices.Delete(c.cursorKeys, i, i+1)
	} else if len(c.cursorKeys) == runtime.MaxCursorKeys {
		delete(c.cursors, c.cursorKeys[0])
		c.cursorKeys = slices.Delete(c.cursorKeys, 0, 1)
	}
	c.cursorKeys = append(c.cursorKeys, cur.Key)
	c.cursors[cur.Key] = cur.Value
}

// attach sends the socket's upgrade request (with its record, for a
// reattach) over cl and waits for the owner's answer: nil when the
// session ended first, or ctx did.
func (c *edgeConn) attach(ctx context.Context, cl *edgeClient, reattach bool) *edgeMsg {
	if !cl.add(c) {
		return nil
	}
	c.mu.Lock()
	m := edgeMsg{kind: edgeAttach, sid: c.sid, text: c.uri, header: c.header, reattach: reattach}
	if reattach {
		m.tags, m.attachment, m.cursors = c.tags, c.attachment, maps.Clone(c.cursors)
	}
	answer := c.answer
	c.mu.Unlock()
	if !cl.out.push(m, false) {
		cl.drop(c)
		return nil
	}
	select {
	case a := <-answer:
		return a
	case <-ctx.Done():
		// Given up: should the owner accept it yet, it lets it go.
		cl.drop(c)
		cl.out.push(edgeMsg{kind: edgeEnded, sid: m.sid, code: protocol.CloseGoingAway, text: "attach abandoned"}, false)
		return nil
	}
}

// watchEdges moves this node's edge sockets whose object's partition has a
// new leader while their session still stands: an owner that hangs
// (SIGSTOP, a frozen VM) keeps its connections open until the link's pings
// give up, and its sockets would wait for it meanwhile. Only this node's
// own Raft view counts (a member of the partition's group sees its new
// leader at once); gossip's slower word does not move sockets.
func (n *Node) watchEdges(ctx context.Context) {
	defer n.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		changed := n.engine.ViewsChanged()
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
		n.edgeMu.Lock()
		clients := slices.Collect(maps.Values(n.edgeClients))
		n.edgeMu.Unlock()
		for _, cl := range clients {
			cl.moveLeft()
		}
	}
}

// moveLeft moves the session's sockets whose partitions this node sees led
// by another node than the session's owner.
func (cl *edgeClient) moveLeft() {
	n := cl.n
	owner, ok := n.memberAt(cl.addr)
	if !ok {
		return
	}
	ownerID := RaftIDFor(owner)
	left := map[int]bool{}
	var moving []*edgeConn
	cl.mu.Lock()
	for _, c := range cl.sockets {
		gone, seen := left[c.p]
		if !seen {
			lead, _ := n.engine.Leader(c.p)
			gone = n.engine.InGroup(c.p) && lead != 0 && lead != ownerID
			left[c.p] = gone
		}
		if gone {
			moving = append(moving, c)
		}
	}
	cl.mu.Unlock()
	for _, c := range moving {
		c.mu.Lock()
		attached := c.cl == cl && c.answered && !c.moving
		sid := c.sid
		c.mu.Unlock()
		if !attached {
			continue
		}
		cl.drop(c)
		// The old owner, should it wake, lets the socket go.
		cl.out.push(edgeMsg{kind: edgeEnded, sid: sid, code: protocol.CloseMoved, text: protocol.ReasonMoved}, false)
		go c.move(cl)
	}
}

// edgeMoveTimeout bounds how long a socket waits for its object's next
// owner before it is closed (1012) for its client to reconnect;
// edgeAttachTimeout one attempt at a node (its session may be with a node
// that just died, which the edge learns of later).
const (
	edgeMoveTimeout   = 30 * time.Second
	edgeAttachTimeout = 5 * time.Second
)

// move attaches the socket to its object's owner after it left from (the
// session ended, or the object moved away): the client's messages wait
// meanwhile, and the new owner catches the socket up (runtime.Reattacher).
func (c *edgeConn) move(from *edgeClient) {
	c.mu.Lock()
	if c.ended || c.moving || c.cl != from {
		c.mu.Unlock()
		return
	}
	c.moving = true
	c.mu.Unlock()
	n := c.n
	if m := n.metrics; m != nil {
		m.edgeMoves.WithLabelValues("started").Inc()
	}
	outcome := "closed"
	defer func() {
		c.mu.Lock()
		c.moving = false
		ended := c.ended
		cl, sid := c.cl, c.sid
		c.cond.Broadcast()
		c.mu.Unlock()
		if outcome == "attached" && ended {
			// The client left while the move was under way.
			cl.out.push(edgeMsg{kind: edgeEnded, sid: sid, code: protocol.CloseGoingAway}, false)
		}
		if m := n.metrics; m != nil {
			m.edgeMoves.WithLabelValues(outcome).Inc()
		}
	}()
	ctx, cancel := context.WithTimeout(n.ctx, edgeMoveTimeout)
	defer cancel()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		changed := n.engine.ViewsChanged()
		serve, candidates, _ := n.route(c.p, false)
		if serve {
			candidates = []string{n.cfg.PeerAddr}
		}
		for _, addr := range candidates {
			if c.isEnded() {
				return
			}
			cl, err := n.edgeSession(ctx, addr)
			if err != nil {
				n.log.Debug("edge socket move: no session", "to", addr, "err", err)
				continue
			}
			attempt, cancelAttempt := context.WithTimeout(ctx, edgeAttachTimeout)
			a := c.attach(attempt, cl, true)
			cancelAttempt()
			switch {
			case a == nil:
				continue // the session ended (or ctx): route again
			case a.kind == edgeAccepted:
				outcome = "attached"
				return
			case a.code == http.StatusServiceUnavailable && a.header.Get(runtime.HeaderNotServed) != "":
				continue // not the owner (any more)
			}
			// Refused: the object does not take sockets back, or the
			// client's credential no longer holds.
			c.sock.Close(protocol.CloseMoved, protocol.ReasonMoved)
			return
		}
		select {
		case <-changed:
		case <-poll.C:
		case <-ctx.Done():
			c.sock.Close(protocol.CloseMoved, protocol.ReasonMoved)
			return
		}
	}
}

func (c *edgeConn) isEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// Message, MessageTooLarge and Ended are the socket's runtime.EdgeUpstream.
// While the socket moves to a new owner they wait: that is the client's
// backpressure.
func (c *edgeConn) Message(m runtime.Message) {
	kind := edgeIn
	if m.Binary {
		kind = edgeInBinary
	}
	c.send(edgeMsg{kind: kind, data: m.Data})
}

// MessageTooLarge tells the owner of a message refused for its size.
func (c *edgeConn) MessageTooLarge() { c.send(edgeMsg{kind: edgeTooLarge}) }

// send sends m for the socket once it is attached.
func (c *edgeConn) send(m edgeMsg) {
	c.mu.Lock()
	for c.moving && !c.ended {
		c.cond.Wait()
	}
	cl, sid := c.cl, c.sid
	c.mu.Unlock()
	if cl == nil {
		return
	}
	m.sid = sid
	cl.out.push(m, true)
}

// Ended tells the owner that the client's connection ended.
func (c *edgeConn) Ended(code int, reason string) {
	c.mu.Lock()
	c.ended = true
	cl, sid, moving := c.cl, c.sid, c.moving
	c.cond.Broadcast()
	c.mu.Unlock()
	if cl == nil || moving {
		return // a move under way tells the next owner
	}
	cl.drop(c)
	cl.out.push(edgeMsg{kind: edgeEnded, sid: sid, code: code, text: reason}, true)
}

// edgeHeaders are the headers of a client's upgrade request that its
// owner sees (as a forwarded request's): what authentication and objects
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
		c := &edgeConn{n: n, p: p, uri: r.URL.RequestURI(), header: header}
		c.cond = sync.NewCond(&c.mu)
		c.sock = rt.NewEdgeSocket(r, c)
		m := c.attach(r.Context(), cl, false)
		switch {
		case m == nil && r.Context().Err() != nil:
			c.sock.Abort()
			return false
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
