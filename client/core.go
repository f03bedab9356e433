package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/protocol"
)

// stableAfter is how long a connection must have lasted for the next
// reconnection to start again from MinBackoff; a connection that keeps
// failing sooner backs off further each time.
const stableAfter = 10 * time.Second

// maxFrameBytes bounds one server frame. History pages are capped near
// 1 MiB by the server; this leaves room for any future growth.
const maxFrameBytes = 16 << 20

// hooks is what a ChatClient or GameClient adds to the core: what its
// frames mean and how to restore its rooms on a new connection.
type hooks interface {
	// frame handles a frame that is not a failure answering a call. c is
	// the call whose requestId the frame echoes, if one waits. It runs on
	// the reader goroutine, one frame at a time.
	frame(env *envelope, raw []byte, c *call)
	// rejoin returns the calls that restore the rooms on a new
	// connection, in order; the core writes them before anything else.
	rejoin() []*call
	// lost says the connection ended: internal work in flight is void.
	lost()
}

// core is what ChatClient and GameClient share: the connection, the
// supervisor that replaces it, the requests waiting for answers and the
// event queue.
type core struct {
	opts  Options
	log   *slog.Logger
	path  string // WebSocket path, e.g. /api/lobby/websocket
	hooks hooks

	ctx       context.Context // ends at Close
	cancel    context.CancelFunc
	events    *eventQueue
	httpc     *http.Client
	transport *http.Transport // ours to release at Close; nil if the caller gave one
	stopped   chan struct{}   // closed when the supervisor returned
	first     *wsConn         // the connection newCore made, until run

	mu       sync.Mutex
	nodes    *rotation
	conn     *wsConn // where requests go; nil while reconnecting
	addr     string  // address of the current or last connection
	pending  map[string]*call
	seq      uint64
	err      error     // why the client stopped; nil while it runs
	resentAt time.Time // when rateLimited last re-sent requests
}

// newCore connects to one of addrs (one pass over them); run then starts
// the supervisor. ctx bounds only this first connection, as in
// net.Dialer.DialContext.
func newCore(ctx context.Context, addrs []string, opts Options, path string, h hooks) (*core, error) {
	nodes, err := parseNodes(addrs)
	if err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	s := &core{
		opts:    opts,
		log:     opts.Logger,
		path:    path,
		hooks:   h,
		httpc:   opts.HTTPClient,
		nodes:   newRotation(nodes, opts.InOrder),
		pending: map[string]*call{},
		stopped: make(chan struct{}),
	}
	if s.httpc == nil {
		s.transport = http.DefaultTransport.(*http.Transport).Clone()
		s.transport.TLSClientConfig = opts.TLSConfig
		s.httpc = &http.Client{Transport: s.transport, Timeout: time.Minute}
	}
	var errs []error
	for range nodes {
		n := s.takeNode()
		cn, err := s.dial(ctx, n)
		if err == nil {
			s.first, s.addr = cn, cn.addr
			return s, nil
		}
		var e *Error
		if errors.As(err, &e) && terminalStatus(e.Status) {
			s.release()
			return nil, err
		}
		if ctx.Err() != nil {
			s.release()
			return nil, fmt.Errorf("connect: %w", ctx.Err())
		}
		errs = append(errs, err)
	}
	s.release()
	return nil, fmt.Errorf("connect: no server reachable: %w", errors.Join(errs...))
}

// run starts the supervisor on the first connection. The hooks must be
// ready: frames flow from here on.
func (s *core) run() {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.events = newEventQueue()
	cn := s.first
	s.first = nil
	go s.supervise(cn)
}

// dropConnection closes the current connection without a close frame, so
// the supervisor replaces it (with backoff, to any node).
func (s *core) dropConnection() {
	s.mu.Lock()
	cn := s.conn
	s.mu.Unlock()
	if cn != nil {
		_ = cn.ws.Close()
	}
}

func (s *core) release() {
	if s.transport != nil {
		s.transport.CloseIdleConnections()
	}
}

func (s *core) takeNode() node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nodes.take()
}

// dial opens one WebSocket. A refused upgrade becomes an *Error carrying
// the HTTP status and the server's {code, message}.
func (s *core) dial(ctx context.Context, n node) (*wsConn, error) {
	h := http.Header{}
	if s.opts.Token != "" {
		h.Set("Authorization", "Bearer "+s.opts.Token)
	}
	u := n.wsBase + s.path
	ws, resp, err := s.opts.Dialer.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			return nil, fmt.Errorf("dial %s: %w", u, httpError(resp.StatusCode, body))
		}
		return nil, fmt.Errorf("dial %s: %w", u, err)
	}
	ws.SetReadLimit(maxFrameBytes)
	return newWSConn(ws, n.addr, &s.opts), nil
}

// supervise keeps the client connected until Close or a terminal failure.
func (s *core) supervise(cn *wsConn) {
	defer close(s.stopped)
	failures := 0
	for {
		s.connected(cn)
		select {
		case <-cn.done:
		case <-s.ctx.Done():
			cn.shutdown(websocket.CloseNormalClosure, "client closed", time.Second)
			s.disconnected(cn)
			s.stop(ErrClosed)
			return
		}
		cn.abort()
		code, reason := cn.closeCode()
		s.disconnected(cn)
		if s.ctx.Err() != nil {
			s.stop(ErrClosed)
			return
		}
		if code == protocol.CloseAuthFailed {
			// Reconnecting with the same token would fail again.
			e := &Error{Code: protocol.CodeUnauthorized, Message: cmp.Or(reason, "authentication failed or token expired")}
			s.log.Warn("holocron client: closed with 4001, not reconnecting", "addr", cn.addr, "reason", reason)
			s.finish(e, e, &Disconnected{Addr: cn.addr, Code: code, Reason: reason, Err: e})
			return
		}
		s.log.Debug("holocron client: connection lost", "addr", cn.addr, "code", code, "reason", reason, "err", cn.err)
		s.events.push(&Disconnected{Addr: cn.addr, Code: code, Reason: reason, Err: cn.err, Retrying: true})

		if time.Since(cn.opened) >= stableAfter {
			failures = 0
		}
		var delay time.Duration
		switch code {
		case protocol.CloseGoingAway, protocol.CloseMoved:
			// Come back at once (to another node), spread over MinBackoff.
			delay = rand.N(s.opts.MinBackoff)
		case protocol.CloseTryAgainLater, protocol.ClosePolicy:
			failures++
			delay = backoff(failures, s.opts.MinBackoff, s.opts.MaxBackoff)
		default:
			delay = backoff(failures, s.opts.MinBackoff, s.opts.MaxBackoff)
			failures++
		}
		down := time.Now()
		next, attempts, err := s.reconnect(delay, &failures)
		if err != nil {
			if s.ctx.Err() != nil {
				s.stop(ErrClosed)
				return
			}
			s.log.Warn("holocron client: not reconnecting", "err", err)
			var e *Error
			if !errors.As(err, &e) {
				e = &Error{Code: protocol.CodeUnauthorized, Message: err.Error()}
			}
			s.finish(err, e, &Disconnected{Addr: cn.addr, Err: err})
			return
		}
		s.log.Debug("holocron client: reconnected", "addr", next.addr, "attempts", attempts)
		s.events.push(&Reconnected{Addr: next.addr, Attempts: attempts, Downtime: time.Since(down)})
		cn = next
	}
}

// reconnect dials the rotation until a connection is up, the client is
// closed, or the server refuses the credentials.
func (s *core) reconnect(delay time.Duration, failures *int) (*wsConn, int, error) {
	for attempts := 1; ; attempts++ {
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return nil, attempts - 1, ErrClosed
		case <-t.C:
		}
		cn, err := s.dial(s.ctx, s.takeNode())
		if err == nil {
			return cn, attempts, nil
		}
		var e *Error
		if errors.As(err, &e) && terminalStatus(e.Status) {
			return nil, attempts, err
		}
		if s.ctx.Err() != nil {
			return nil, attempts, ErrClosed
		}
		s.log.Debug("holocron client: reconnect attempt failed", "attempt", attempts, "err", err)
		delay = backoff(*failures, s.opts.MinBackoff, s.opts.MaxBackoff)
		*failures = min(*failures+1, 32)
	}
}

// connected makes cn the connection requests go to: first the rooms are
// rejoined, then every request still waiting is (re-)sent in the order it
// was made, and only then may new requests go out, so none overtakes them.
func (s *core) connected(cn *wsConn) {
	rejoins := s.hooks.rejoin()
	s.mu.Lock()
	for _, c := range rejoins {
		s.register(c)
		s.write(c, cn)
	}
	var waiting []*call
	for _, c := range s.pending {
		if c.conn == nil {
			waiting = append(waiting, c)
		}
	}
	slices.SortFunc(waiting, func(a, b *call) int { return cmp.Compare(a.seq, b.seq) })
	for _, c := range waiting {
		s.write(c, cn)
	}
	s.conn, s.addr = cn, cn.addr
	s.mu.Unlock()
	cn.start(s.dispatch)
}

// disconnected settles the calls written to cn: repeatable ones wait for
// the next connection, the others fail with ErrConnectionLost.
func (s *core) disconnected(cn *wsConn) {
	s.mu.Lock()
	if s.conn == cn {
		s.conn = nil
	}
	var settle []*call
	var results []result
	for id, c := range s.pending {
		if c.conn != cn {
			continue
		}
		c.conn = nil
		switch {
		case c.retry:
			continue
		case c.lostOK:
			results = append(results, result{})
		case c.internal:
			results = append(results, result{err: ErrConnectionLost})
		default:
			results = append(results, result{err: fmt.Errorf("%s: %w", c.final, ErrConnectionLost)})
		}
		settle = append(settle, c)
		delete(s.pending, id)
	}
	s.mu.Unlock()
	for i, c := range settle {
		c.done <- results[i]
	}
	s.hooks.lost()
}

// finish stops the client on its own (not by Close): err for requests and
// Err, evs as its last events.
func (s *core) finish(err error, evs ...Event) {
	s.stop(err)
	for _, e := range evs {
		s.events.push(e)
	}
	s.events.finish()
}

// stop fails every waiting request with err; no request is accepted after.
func (s *core) stop(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	calls := s.pending
	s.pending = map[string]*call{}
	s.conn = nil
	s.mu.Unlock()
	for _, c := range calls {
		c.done <- result{err: err}
	}
}

// register gives c its requestId and makes it wait for an answer. Called
// with s.mu held.
func (s *core) register(c *call) {
	s.seq++
	c.assign(s.seq)
	s.pending[c.id] = c
}

// write queues c on cn. Called with s.mu held.
func (s *core) write(c *call, cn *wsConn) {
	c.conn = cn
	c.sends++
	cn.send(c.data)
}

// errNoConnection refuses internal calls while reconnecting: the rejoin
// redoes what they were for.
var errNoConnection = errors.New("not connected")

// start registers c and writes it if a connection is up; otherwise it
// waits for the next one.
func (s *core) start(c *call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if c.internal && s.conn == nil {
		return errNoConnection
	}
	s.register(c)
	if s.conn != nil {
		s.write(c, s.conn)
	}
	return nil
}

// do sends c and waits for its answer or the end of ctx.
func (s *core) do(ctx context.Context, c *call) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, err
	}
	if err := s.start(c); err != nil {
		return result{}, err
	}
	select {
	case r := <-c.done:
		return r, r.err
	case <-ctx.Done():
		s.mu.Lock()
		if s.pending[c.id] == c {
			delete(s.pending, c.id)
		}
		s.mu.Unlock()
		select {
		case r := <-c.done:
			return r, r.err
		default:
		}
		return result{}, ctx.Err()
	}
}

// complete ends c with r, once.
func (s *core) complete(c *call, r result) {
	s.mu.Lock()
	if s.pending[c.id] != c {
		s.mu.Unlock()
		return
	}
	delete(s.pending, c.id)
	s.mu.Unlock()
	c.done <- r
}

// dispatch routes one server frame: answers complete their call, failures
// nobody waits for become *Error events, and the object's hooks turn the
// rest into events.
func (s *core) dispatch(raw []byte) {
	env, err := decodeEnvelope(raw)
	if err != nil {
		s.log.Warn("holocron client: undecodable frame", "err", err, "frame", string(raw[:min(len(raw), 200)]))
		return
	}
	var c *call
	sends := 0
	if env.RequestID != "" {
		s.mu.Lock()
		if c = s.pending[env.RequestID]; c != nil {
			sends = c.sends
		}
		s.mu.Unlock()
	}
	if isFailure(env.Type) {
		e := env.failure()
		if c == nil {
			if e.Code == protocol.CodeRateLimited {
				s.rateLimited()
			}
			s.events.push(e)
			return
		}
		if c.onFrame != nil {
			c.onFrame(env, raw)
		}
		if c.okOnRetry != "" && e.Code == c.okOnRetry && sends > 1 {
			s.complete(c, result{env: env, raw: raw})
			return
		}
		s.complete(c, result{err: e})
		return
	}
	if c != nil {
		if c.onFrame != nil {
			c.onFrame(env, raw)
		}
		if env.Type == c.final {
			s.complete(c, result{env: env, raw: raw})
		}
	}
	s.hooks.frame(env, raw, c)
}

// rateLimited reacts to a rate_limited frame. The server dropped a frame
// without saying which (the answer carries no requestId), so whatever
// waits for an answer on this connection may wait forever: the client
// halves its pace and sends again, once per second at most, the waiting
// requests that are safe to repeat.
func (s *core) rateLimited() {
	s.mu.Lock()
	defer s.mu.Unlock()
	cn := s.conn
	if cn == nil || time.Since(s.resentAt) < time.Second {
		return
	}
	s.resentAt = time.Now()
	if cn.pace != nil {
		cn.pace.slowDown()
	}
	var again []*call
	for _, c := range s.pending {
		if c.conn == cn && (c.retry || c.internal) {
			again = append(again, c)
		}
	}
	slices.SortFunc(again, func(a, b *call) int { return cmp.Compare(a.seq, b.seq) })
	s.log.Warn("holocron client: rate limited by the server; slowing down", "resending", len(again))
	for _, c := range again {
		s.write(c, cn)
	}
}

// ping measures a round trip to the object.
func (s *core) ping(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	if _, err := s.do(ctx, &call{body: pingFrame, final: typePong}); err != nil {
		return 0, fmt.Errorf("ping: %w", err)
	}
	return time.Since(t0), nil
}

// currentAddr is the address of the current (or last) connection.
func (s *core) currentAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// stoppedErr is nil while the client runs, then why it stopped.
func (s *core) stoppedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// close stops the supervisor, the connection and the event queue, and
// waits for their goroutines (or for ctx).
func (s *core) close(ctx context.Context) error {
	s.cancel()
	select {
	case <-s.stopped:
	case <-ctx.Done():
		return fmt.Errorf("close: %w", ctx.Err())
	}
	s.events.stop()
	s.release()
	return nil
}
