// Package runtime is Holocron's object model: a registry of object classes,
// namespaces that name objects, and the actor machinery that runs each object
// one event at a time with implicit transactions, an output gate, WebSockets
// that outlive their instance (hibernation) and durable alarms.
//
// The runtime reaches durable state only through storage.Store, so a
// replicated store can replace the local one without changes here.
package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holocron-run/holocron/protocol"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/holocron-run/holocron/internal/corkconn"
	"github.com/holocron-run/holocron/storage"
)

// Options configure a Runtime. Zero fields take the documented defaults.
type Options struct {
	// Store is where objects keep their state. Required.
	Store storage.Store
	// Registry lists the object classes. Required.
	Registry *Registry
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics, when set, receives the runtime's Prometheus collectors.
	Metrics prometheus.Registerer
	// IdleTimeout is how long an object instance lives without events before
	// it is evicted; its sockets stay open. Default 30s.
	IdleTimeout time.Duration
	// MailboxSize bounds the events queued for one object; senders block
	// (backpressure) beyond it. Default 1024.
	MailboxSize int
	// MaxMessageSize is the largest WebSocket message delivered to OnMessage;
	// larger ones reach OnError as ErrMessageTooLarge. Default 64 KiB.
	MaxMessageSize int
	// MaxFrameSize is the largest message read at all; beyond it the socket
	// is closed with 1009. Default 16 MiB.
	MaxFrameSize int
	// SocketQueueBytes bounds the frames waiting to be written to one socket;
	// a socket beyond it is closed as a slow consumer (1013). Default 8 MiB.
	SocketQueueBytes int
	// PingInterval is the keepalive period; a socket silent for two periods
	// is dropped. Default 30s.
	PingInterval time.Duration
	// WriteTimeout bounds one socket write. Default 10s.
	WriteTimeout time.Duration
	// MaxRequestBody bounds an HTTP request's body; a larger one is
	// answered 413 too_large without reaching the object. Default 1 MiB.
	MaxRequestBody int64
	// RequestBodyTimeout bounds the time a client may take to send a
	// request's body; a slower one is answered 408 request_timeout without
	// reaching the object. Default 10s.
	RequestBodyTimeout time.Duration
	// Director routes requests and calls to an object's owner (a cluster
	// node). nil: every object is served on this node.
	Director Director
	// Now is the clock for alarms. Default time.Now.
	Now func() time.Time
	// AlarmRetries is how many times a failing alarm is retried (with
	// exponential backoff from 1s) before it is dropped. Default 6.
	AlarmRetries int
	// MaxSocketsPerIP and MaxSocketsPerPrincipal bound the sockets one
	// client address and one authenticated player may hold on this node;
	// beyond them a socket is closed at once with 4008. Zero: no limit.
	MaxSocketsPerIP        int
	MaxSocketsPerPrincipal int
	// SocketRate, when positive, limits the messages one socket may send
	// per second (a token bucket of SocketBurst); excess messages are
	// dropped before they reach the object, and RateLimitedReply, if set,
	// is sent back for each (the wire protocol's rate_limited frame).
	SocketRate       float64
	SocketBurst      int
	RateLimitedReply []byte
}

type bodyAbortKey struct{}

// AbortBodyReads marks every request h serves so that ReadBody gives up
// waiting for the rest of a body once abort is done (answering 503
// unavailable): a server's graceful shutdown (http.Server.Shutdown waits
// for every request) is then not held up by a client that sent half a
// body. Cancel abort when the shutdown begins (RegisterOnShutdown).
func AbortBodyReads(abort context.Context, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), bodyAbortKey{}, abort)))
	})
}

// Defaults of Options.MaxRequestBody and Options.RequestBodyTimeout.
const (
	DefaultMaxRequestBody     = 1 << 20
	DefaultRequestBodyTimeout = 10 * time.Second
)

// ForwardedForHeader carries the client's address when a request was
// forwarded by another node of the cluster (the socket limits count the
// client, not the forwarding node).
const ForwardedForHeader = "X-Forwarded-For"

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.MailboxSize == 0 {
		o.MailboxSize = 1024
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = 64 << 10
	}
	if o.MaxFrameSize == 0 {
		o.MaxFrameSize = 16 << 20
	}
	if o.SocketQueueBytes == 0 {
		o.SocketQueueBytes = 8 << 20
	}
	if o.PingInterval == 0 {
		o.PingInterval = 30 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxRequestBody == 0 {
		o.MaxRequestBody = DefaultMaxRequestBody
	}
	if o.RequestBodyTimeout == 0 {
		o.RequestBodyTimeout = DefaultRequestBodyTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AlarmRetries == 0 {
		o.AlarmRetries = 6
	}
	if o.SocketRate > 0 && o.SocketBurst <= 0 {
		o.SocketBurst = max(1, int(o.SocketRate))
	}
}

// Runtime runs the objects of one node.
type Runtime struct {
	opts     Options
	log      *slog.Logger
	started  time.Time // with its monotonic reading: see sinceStart
	metrics  *metrics
	upgrader websocket.Upgrader
	corkBufs sync.Pool // of *[]byte, lent to sockets' corkconn.Conns
	// idle holds quiet sockets without a goroutine each.
	idle   *idlePoller
	alarms *alarmScheduler

	ctx    context.Context
	cancel context.CancelFunc

	socketSeq atomic.Uint64
	// messagesIn and messagesOut count WebSocket messages for Stats.
	messagesIn  atomic.Uint64
	messagesOut atomic.Uint64

	mu      sync.Mutex
	entries map[ID]*entry
	closed  bool
	// Admission counters of open sockets.
	socketsByIP map[string]int
	// edgeSockets are the connections this node holds as the edge of
	// other nodes' objects (see EdgeSocket).
	edgeSockets        map[*socketConn]struct{}
	socketsByPrincipal map[string]int
}

// New starts a runtime over opts.Store.
func New(opts Options) (*Runtime, error) {
	if opts.Store == nil || opts.Registry == nil {
		return nil, errors.New("runtime: Options.Store and Options.Registry are required")
	}
	opts.setDefaults()
	if len(opts.Registry.limits) > 0 {
		if _, ok := opts.Registry.classes[QuotaClass]; !ok {
			opts.Registry.classes[QuotaClass] = newQuota(opts.Registry)
		}
	}
	m, err := newMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("runtime metrics: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rt := &Runtime{
		opts:    opts,
		log:     opts.Logger,
		metrics: m,
		upgrader: websocket.Upgrader{
			// 0: read through the Hijacker's reader (socketReadBuffer),
			// whose contents the socket's reader can see.
			ReadBufferSize:  0,
			WriteBufferSize: 1024,
			WriteBufferPool: &sync.Pool{},
			// Origin policy belongs to the gateway's auth layer; the runtime
			// accepts what the gateway routed to it.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		ctx:                ctx,
		cancel:             cancel,
		entries:            map[ID]*entry{},
		socketsByIP:        map[string]int{},
		edgeSockets:        map[*socketConn]struct{}{},
		socketsByPrincipal: map[string]int{},
	}
	rt.started = time.Now()
	rt.idle = newIdlePoller(rt.log, m.socketsParked)
	rt.alarms = newAlarmScheduler(rt)
	go rt.alarms.run(ctx)
	return rt, nil
}

// Namespace returns the namespace of a registered class.
func (rt *Runtime) Namespace(class string) (*Namespace, error) {
	ctor, ok := rt.opts.Registry.Lookup(class)
	if !ok {
		return nil, fmt.Errorf("namespace %q: %w", class, ErrUnknownClass)
	}
	return &Namespace{rt: rt, class: class, ctor: ctor}, nil
}

// ErrUnknownClass is returned for a class that is not registered.
var ErrUnknownClass = errors.New("unknown object class")

// ErrClosed is returned once the runtime is shutting down.
var ErrClosed = errors.New("runtime closed")

// ActiveObjects returns how many objects have a live instance or sockets.
func (rt *Runtime) ActiveObjects() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return len(rt.entries)
}

// LiveInstances returns how many objects have a constructed instance (are
// not hibernating or idle).
func (rt *Runtime) LiveInstances() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	n := 0
	for _, e := range rt.entries {
		e.mu.Lock()
		if e.running {
			n++
		}
		e.mu.Unlock()
	}
	return n
}

// Close closes every socket with 1001 (going away), waits until each
// object's queued events are handled and their writes durable, and stops the
// alarm scheduler. The Store is the caller's to close afterwards.
func (rt *Runtime) Close(ctx context.Context) error {
	rt.mu.Lock()
	rt.closed = true
	entries := make([]*entry, 0, len(rt.entries))
	for _, e := range rt.entries {
		entries = append(entries, e)
	}
	rt.mu.Unlock()
	rt.cancel()
	// Parked sockets get their readers back, to hear the peers' answers to
	// the close frames below.
	rt.idle.shutdown()
	goingAway := outFrame{close: true, code: protocol.CloseGoingAway, reason: "server shutting down"}
	for _, e := range entries {
		e.mu.Lock()
		socks := append([]*WebSocket(nil), e.sockets...)
		e.mu.Unlock()
		for _, ws := range socks {
			ws.enqueue(goingAway)
		}
	}
	rt.mu.Lock()
	edges := slices.Collect(maps.Keys(rt.edgeSockets))
	rt.mu.Unlock()
	for _, c := range edges {
		c.enqueue(goingAway)
	}
	// The scheduler may be reading the store, which the caller closes once
	// Close returns (and Pebble panics on a read after its Close).
	select {
	case <-rt.alarms.stopped:
	case <-ctx.Done():
		return fmt.Errorf("runtime close: alarm scheduler still running: %w", ctx.Err())
	}
	for {
		rt.mu.Lock()
		n := len(rt.entries)
		rt.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("runtime close: %d objects still busy: %w", n, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// CheckAlarms makes the alarm scheduler look at the alarm index now rather
// than at its next wake-up: for a test clock that was just moved forward.
func (rt *Runtime) CheckAlarms() { rt.alarms.poke() }

// ObjectInfo describes one object with state on this node (a live
// instance, open sockets, or both).
type ObjectInfo struct {
	ID      ID     `json:"id"`
	Class   string `json:"class"`
	Name    string `json:"name,omitempty"`
	Sockets int    `json:"sockets"`
	// Live is false while the object hibernates (sockets open, no instance).
	Live bool `json:"live"`
}

// Objects lists the objects active on this node, for operators.
func (rt *Runtime) Objects() []ObjectInfo {
	rt.mu.Lock()
	entries := make([]*entry, 0, len(rt.entries))
	for _, e := range rt.entries {
		entries = append(entries, e)
	}
	rt.mu.Unlock()
	out := make([]ObjectInfo, 0, len(entries))
	for _, e := range entries {
		e.mu.Lock()
		out = append(out, ObjectInfo{ID: e.id, Class: e.class, Name: e.name, Sockets: len(e.sockets), Live: e.running})
		e.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Class+"/"+a.Name, b.Class+"/"+b.Name) })
	return out
}

// Stats are the node's running totals, for dashboards.
type Stats struct {
	Objects int `json:"objects"`
	Sockets int `json:"sockets"`
	// MessagesIn and MessagesOut count WebSocket messages since start;
	// a dashboard derives messages/s from two readings.
	MessagesIn  uint64 `json:"messagesIn"`
	MessagesOut uint64 `json:"messagesOut"`
	// ParkedSockets are the open sockets quiet long enough to wait in the
	// idle poller, costing no goroutine (Linux only).
	ParkedSockets int `json:"parkedSockets"`
}

// Stats reports the node's running totals.
func (rt *Runtime) Stats() Stats {
	st := Stats{MessagesIn: rt.messagesIn.Load(), MessagesOut: rt.messagesOut.Load(), ParkedSockets: rt.idle.count()}
	for _, o := range rt.Objects() {
		st.Objects++
		st.Sockets += o.Sockets
	}
	return st
}

// Evict is for a node that stopped owning some objects (its Raft group lost
// leadership, or the object is being moved): every object for which match
// returns true has its sockets closed with code and reason (1012 "moved"
// tells clients to reconnect through any node) and drops its instance before
// its next event, so a later activation starts from replicated storage. It
// returns how many objects matched.
func (rt *Runtime) Evict(match func(ID) bool, code int, reason string) int {
	rt.mu.Lock()
	var hit []*entry
	for id, e := range rt.entries {
		if match(id) {
			hit = append(hit, e)
		}
	}
	rt.mu.Unlock()
	for _, e := range hit {
		e.stale.Store(true)
		e.mu.Lock()
		socks := append([]*WebSocket(nil), e.sockets...)
		e.mu.Unlock()
		for _, ws := range socks {
			ws.enqueue(outFrame{close: true, code: code, reason: reason})
		}
	}
	return len(hit)
}

// Forget deletes the object's whole storage and alarm, for operators: it
// runs after the object's queued events, drops its instance, closes its
// sockets (1000 "object deleted") and returns once the deletion is durable
// (replicated, in a cluster). The object itself lives on, empty.
func (ns *Namespace) Forget(ctx context.Context, id ID) error {
	if err := ns.replace(ctx, id, "", event{kind: evForget}); err != nil {
		return fmt.Errorf("forget %s %s: %w", ns.class, id, err)
	}
	return nil
}

// Restore replaces the object's whole state (data, alarm, name) with exp, a
// backup's record of it, for operators restoring a backup. Like Forget it
// runs after the object's queued events, drops its instance and closes its
// sockets (1012 "object restored", so clients come back and see the
// restored state), and returns once every write is durable. The data goes
// in batches of about 512 KiB; the object is not given other events until
// all are written, but a crash in between can leave part of it restored, so
// a failed restore is repeated, not resumed.
func (ns *Namespace) Restore(ctx context.Context, exp storage.ObjectExport) error {
	id := ID(exp.ID)
	if exp.Meta.Class != ns.class {
		return fmt.Errorf("restore %s %s: the record is of class %q", ns.class, id, exp.Meta.Class)
	}
	batches := storage.RestoreBatches(exp, 512<<10, ns.rt.opts.Now())
	if err := ns.replace(ctx, id, exp.Meta.Name, event{kind: evRestore, restore: batches}); err != nil {
		return fmt.Errorf("restore %s %s: %w", ns.class, id, err)
	}
	return nil
}

// replace delivers ev (evForget or evRestore) to id and waits until its
// writes are durable.
func (ns *Namespace) replace(ctx context.Context, id ID, name string, ev event) error {
	e, err := ns.rt.acquire(ns.class, ns.ctor, id, name)
	if err != nil {
		return err
	}
	defer e.release()
	res := make(chan error, 1)
	ev.replaceDone = func(err error) { res <- err }
	if err := e.deliver(ctx, ev); err != nil {
		return err
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Namespace names the objects of one class.
type Namespace struct {
	rt    *Runtime
	class string
	ctor  Constructor
	// caller is the object whose calls the namespace's stubs make (see
	// State.Namespace); nil outside objects.
	caller *entry
}

// Class is the namespace's class name.
func (ns *Namespace) Class() string { return ns.class }

// IDFromName returns the deterministic ID of the object called name.
func (ns *Namespace) IDFromName(name string) ID { return idFromName(ns.class, name) }

// IDFromString parses an ID's string form.
func (ns *Namespace) IDFromString(s string) (ID, error) { return ParseID(s) }

// NewUniqueID returns a fresh random ID.
func (ns *Namespace) NewUniqueID() ID { return newUniqueID() }

// Get returns a stub for the object with id.
func (ns *Namespace) Get(id ID) *Stub { return &Stub{ns: ns, id: id} }

// GetByName returns a stub for the object called name; the name is
// recorded with the object so operators and State.Name can see it.
func (ns *Namespace) GetByName(name string) *Stub {
	return &Stub{ns: ns, id: ns.IDFromName(name), name: name}
}

// sinceStart is a monotonic clock for intervals that must not jump with the
// wall clock (an NTP step, a resumed VM).
func (rt *Runtime) sinceStart() time.Duration { return time.Since(rt.started) }

// socketReadBuffer is the size of each socket's read buffer.
const socketReadBuffer = 1024

// HeaderNotServed marks a 503 answer to a request that left no trace in any
// object's durable state (the object was moving, or the runtime closing): a
// node that forwarded it may send it to the object's new owner, whatever its
// method, and so may a client. It is ErrNotServed on the wire.
const HeaderNotServed = "X-Holocron-Not-Served"

// Stub addresses one object. Its methods may be called from any goroutine,
// except that a stub from State.Namespace calls from its object's events.
type Stub struct {
	ns   *Namespace
	id   ID
	name string
	// mu orders the stub's calls: one at a time, in the order made.
	mu sync.Mutex
}

// ID is the object's ID.
func (s *Stub) ID() ID { return s.id }

// ServeHTTP delivers r to the object as one event and writes its response
// once the event's writes are durable. If the object accepted a WebSocket,
// the connection is upgraded here.
//
// The body is read first, bounded in size (MaxRequestBody) and time
// (RequestBodyTimeout), outside the object's event: a client that sends
// half a body holds its own request, never the object, whose other
// clients go on being served.
func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r, nil) }

// serve is ServeHTTP for a request that is a call of chain (nil: from a
// client).
func (s *Stub) serve(w http.ResponseWriter, r *http.Request, chain []ID) {
	rt := s.ns.rt
	if _, ok := ReadBody(w, r, rt.opts.MaxRequestBody, rt.opts.RequestBodyTimeout); !ok {
		return
	}
	e, err := rt.acquire(s.ns.class, s.ns.ctor, s.id, s.name)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			w.Header().Set(HeaderNotServed, "1")
		}
		WriteError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, err.Error())
		return
	}
	ev := event{kind: evHTTP, req: r, resp: newGatedResponse(), done: make(chan struct{}), chain: chain}
	if chain != nil {
		err = e.deliverCall(r.Context(), ev)
	} else {
		err = e.deliver(r.Context(), ev)
	}
	e.release()
	if err != nil {
		WriteError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, err.Error())
		return
	}
	select {
	case <-ev.done:
	case <-r.Context().Done():
		// The client left; the event still runs and commits. A socket it
		// accepted can never be upgraded now.
		go func() {
			<-ev.done
			if ev.resp.socket != nil {
				ev.resp.socket.terminate(protocol.CloseAbnormal, "client gone before upgrade")
			}
		}()
		return
	}
	resp := ev.resp
	if resp.failed != nil {
		if resp.socket != nil {
			resp.socket.terminate(protocol.CloseInternalError, "commit failed")
		}
		if errors.Is(resp.failed, storage.ErrNotWritten) {
			w.Header().Set(HeaderNotServed, "1")
		}
		WriteError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, resp.failed.Error())
		return
	}
	if resp.socket != nil {
		if rc, ok := resp.socket.conn.(*remoteConn); ok {
			a, _ := edgeAttachFrom(r.Context())
			rc.accepted(a)
			return
		}
		hj := &corkconn.Hijacker{ResponseWriter: w, Pool: &rt.corkBufs, ReaderSize: socketReadBuffer}
		conn, err := rt.upgrader.Upgrade(hj, r, nil)
		if err != nil {
			// Upgrade has already answered the client.
			resp.socket.terminate(protocol.CloseAbnormal, "upgrade failed")
			return
		}
		resp.socket.conn.(*socketConn).start(conn, hj.Conn, hj.Reader)
		return
	}
	resp.writeTo(w)
}

// ReadBody reads r's whole body into memory, within max bytes and timeout,
// puts it back as r.Body and returns it; it answers the client (413
// too_large, 408 request_timeout, 400 bad_request) and reports false when
// the body is too large, too slow or broken off. The runtime reads every
// request's body so before the object's event starts, and a node that
// forwards requests before it routes them: a client that sends half a
// body holds up only its own request.
func ReadBody(w http.ResponseWriter, r *http.Request, max int64, timeout time.Duration) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return []byte{}, true
	}
	if r.ContentLength > max {
		WriteError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, fmt.Sprintf("request body over %d bytes", max))
		return nil, false
	}
	rc := http.NewResponseController(w)
	// Where the connection cannot take a deadline (a test's recorder), a
	// timer closes the body instead.
	deadlined := rc.SetReadDeadline(time.Now().Add(timeout)) == nil
	if !deadlined {
		t := time.AfterFunc(timeout, func() { r.Body.Close() })
		defer t.Stop()
	}
	// A server shutting down does not wait for a body still on its way.
	abort, _ := r.Context().Value(bodyAbortKey{}).(context.Context)
	if abort != nil {
		stop := context.AfterFunc(abort, func() {
			if rc.SetReadDeadline(time.Now()) != nil {
				r.Body.Close()
			}
		})
		defer stop()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil && abort != nil && abort.Err() != nil {
		w.Header().Set("Connection", "close")
		WriteError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "the server is shutting down; send the request again")
		return nil, false
	}
	if err != nil {
		// The rest of the body is not waited for: the connection closes
		// after the answer (the deadline stays, so net/http does not wait
		// for the rest either).
		w.Header().Set("Connection", "close")
	} else if deadlined {
		rc.SetReadDeadline(time.Time{})
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		WriteError(w, http.StatusRequestEntityTooLarge, protocol.CodeTooLarge, fmt.Sprintf("request body over %d bytes", max))
		return nil, false
	case isTimeout(err):
		WriteError(w, http.StatusRequestTimeout, protocol.CodeRequestTimeout, fmt.Sprintf("request body not sent within %s", timeout))
		return nil, false
	case err != nil:
		WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "request body broke off: "+err.Error())
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return body, true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// acquire returns the entry of id, creating it, with a reference held so it
// cannot be dropped before the caller delivers its event.
func (rt *Runtime) acquire(class string, ctor Constructor, id ID, name string) (*entry, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.closed {
		return nil, ErrClosed
	}
	e := rt.entries[id]
	if e == nil {
		e = newEntry(rt, class, ctor, id, name)
		rt.entries[id] = e
		rt.metrics.objectsActive.Inc()
	} else if e.class != class {
		return nil, fmt.Errorf("object %s is a %s, not a %s", id, e.class, class)
	}
	e.mu.Lock()
	e.refs++
	if e.name == "" && name != "" {
		e.name = name
	}
	e.mu.Unlock()
	return e, nil
}

// maybeDrop forgets an entry that has no instance, sockets or references.
func (rt *Runtime) maybeDrop(e *entry) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.running || e.refs > 0 || len(e.sockets) > 0 || len(e.mailbox) > 0 || rt.entries[e.id] != e {
		return
	}
	delete(rt.entries, e.id)
	rt.metrics.objectsActive.Dec()
}

// HeaderRuntimeError marks an answer the runtime (or the cluster's
// routing) wrote, not the object: its value is the error's code. Fetch
// reports such answers as a *CallError.
const HeaderRuntimeError = "X-Holocron-Runtime-Error"

// WriteError writes the runtime's error answer: status, the protocol's
// error body {"code","message"}, HeaderRuntimeError, and Retry-After on a
// 503.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set(HeaderRuntimeError, code)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	protocol.WriteHTTPError(w, status, &protocol.Error{Code: code, Message: msg})
}
