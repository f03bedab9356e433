package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/holocron-run/holocron/protocol"
)

// Object-to-object calls. An object reaches another through a stub from
// State.Namespace: Stub.Fetch sends an HTTP request that the callee handles
// as one of its events, wherever it lives (in a cluster, over the peer
// link to its owner). docs/authoring.md describes the semantics; in short:
//
//   - A call ends the caller's implicit transaction: the writes (and
//     socket frames) of the event so far are committed and durable before
//     the request leaves, and what the event writes after the call is a
//     new batch. So a callee never sees the effect of a write its caller
//     could still lose, and a caller that records "about to call" before
//     the call finds the record after any crash.
//   - Calls from one stub arrive in the order they were made (Fetch
//     returns only once the callee answered).
//   - Call-chain re-entrancy: while an object waits for a call, a call
//     made on behalf of that same chain (A calls B, B calls A) is handled
//     by A at once, between the parts of A's waiting event, as Orleans'
//     call-chain re-entrancy does. Any other event waits its turn. So
//     A→B→A does not deadlock, and an object's state may change while it
//     waits in Fetch only by its own chain's calls.
//   - A call that no object ran (the callee's partition was moving and no
//     owner could be reached within the cluster's leader wait) fails with
//     a *CallError that matches ErrNotServed: it is safe to send again. A call whose outcome is unknown (the owner died after the
//     request reached it, the deadline passed) fails with a *CallError
//     that does not: a caller that sends it again must make it idempotent,
//     for instance with an Idempotency-Key the callee records.
//   - A call's deadline is its context's, DefaultCallTimeout when it has
//     none; the callee's request context ends when the caller gives up.
//   - The callee learns who called with CallerFrom.

// Director decides where an object's request is served. In a cluster,
// Direct serves r with local when this node owns the object, forwards it to
// the owner over the peer link otherwise, or answers it unavailable; while
// the object is moving it may try more than one of these (see
// HeaderNotServed). The runtime's Options.Director routes both what the
// gateway receives from clients and the calls objects make.
type Director interface {
	Direct(w http.ResponseWriter, r *http.Request, id ID, local http.Handler)
}

// Direct serves r for the object id through Options.Director, or with local
// on a single node.
func (rt *Runtime) Direct(w http.ResponseWriter, r *http.Request, id ID, local http.Handler) {
	if rt.opts.Director != nil {
		rt.opts.Director.Direct(w, r, id, local)
		return
	}
	local.ServeHTTP(w, r)
}

// CallPath is where calls between objects travel: CallPath + class + "/" +
// the callee's ID + the path the callee sees. Mount CallHandler there on
// the peer listener only; the client port must not serve it (a client
// would claim to be any object).
const CallPath = "/internal/call/"

// Headers of a call on the wire, meaningful only on CallPath.
const (
	headerCallerClass = "X-Holocron-Caller-Class"
	headerCallerName  = "X-Holocron-Caller-Name"
	headerCallerID    = "X-Holocron-Caller-Id"
	headerCalleeName  = "X-Holocron-Callee-Name"
	headerCallChain   = "X-Holocron-Call-Chain"
)

// DefaultCallTimeout bounds a call whose context has no deadline.
const DefaultCallTimeout = 30 * time.Second

// Caller is the object that made a call, as its callee sees it.
type Caller struct {
	Class string
	// Name is the name the caller was addressed by ("" for a unique ID).
	Name string
	ID   ID
}

type callerKey struct{}

// CallerFrom reports which object made the request whose context is ctx:
// false for a request from a client (or from outside any object's event).
// Use it to authorize calls: only the runtime sets it.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}

// CallError is a call's failure in the runtime, not an answer of the
// callee: Fetch returns it instead of a response.
type CallError struct {
	Class string
	ID    ID
	// Code and Message are the runtime's error body (code "unavailable",
	// "call_in_transaction", …).
	Code    string
	Message string
	// NotServed: no object ran the call; it is safe to send again.
	NotServed bool
	// Err is the cause, when there is one (a context's error).
	Err error
}

func (e *CallError) Error() string {
	outcome := "outcome unknown"
	if e.NotServed {
		outcome = "not served"
	}
	return fmt.Sprintf("call %s %s: %s (%s): %s", e.Class, e.ID, e.Code, outcome, e.Message)
}

// Is makes a call nothing ran match ErrNotServed.
func (e *CallError) Is(target error) bool { return e.NotServed && target == ErrNotServed }

// ErrNotServed is the runtime's one value for "not served: no object
// handled it, so it is safe to send again, whatever it was" (on the wire,
// HeaderNotServed). A request turned away while its object's partition
// moves, or a call that could reach no owner, is not served; one whose
// object may have run it is not, whatever else went wrong.
var ErrNotServed = errors.New("not served: no object handled it; safe to send again")

func (e *CallError) Unwrap() error { return e.Err }

// Namespace is the namespace of class, for calls made by this object (a
// namespace of an unregistered class gives stubs whose calls fail). Use its
// stubs from this object's event handlers only.
func (s *State) Namespace(class string) *Namespace {
	ctor, _ := s.entry.rt.opts.Registry.Lookup(class)
	return &Namespace{rt: s.entry.rt, class: class, ctor: ctor, caller: s.entry}
}

// Fetch sends req to the object as one of its events and returns its
// answer; see the package's notes on calls for the semantics. The request's
// URL path is the path the callee sees; its host and scheme are ignored.
// A non-nil error is a *CallError (or the request's own error); the
// caller closes the response's body.
//
// From inside an event (a stub of State.Namespace) the event's writes so
// far are committed first; Fetch may not be called inside
// Storage.Transaction.
func (s *Stub) Fetch(ctx context.Context, req *http.Request) (*http.Response, error) {
	if s.ns.ctor == nil {
		return nil, &CallError{Class: s.ns.class, ID: s.id, Code: protocol.CodeNotFound, Message: "unknown object class", NotServed: true, Err: ErrUnknownClass}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
	}
	// The call is a request of its own: the caller's request context
	// (its client, the peer that forwarded it, the principal) does not go
	// with it; only its deadline and cancellation do.
	ctx, cancel := detached(ctx)
	defer cancel()
	out, err := s.request(ctx, req)
	if err != nil {
		return nil, err
	}
	// Calls from one stub arrive in the order made: from outside objects
	// one at a time; from an object's events they are sequential anyway
	// (the actor waits for each), and a lock would deadlock a re-entrant
	// event that calls through a stub its waiting event holds.
	caller := s.ns.caller
	if caller == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.send(ctx, out)
	}
	if err := caller.commitBeforeCall(); err != nil {
		code := protocol.CodeUnavailable
		if errors.Is(err, errCallInTransaction) || errors.Is(err, ErrNoEvent) {
			code = protocol.CodeCallOutsideEvent
		}
		return nil, &CallError{Class: s.ns.class, ID: s.id, Code: code, Message: err.Error(), NotServed: true, Err: err}
	}
	defer caller.state.storage.begin()
	return caller.awaitCall(func() (*http.Response, error) { return s.send(ctx, out) })
}

// detached is a context with ctx's deadline and cancellation but none of
// its values.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancelCause(context.Background())
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	if dl, ok := ctx.Deadline(); ok {
		var cancelDeadline context.CancelFunc
		out, cancelDeadline = context.WithDeadline(out, dl)
		return out, func() { stop(); cancelDeadline(); cancel(context.Canceled) }
	}
	return out, func() { stop(); cancel(context.Canceled) }
}

// request is req addressed to the callee on CallPath, with the caller's
// identity and call chain.
func (s *Stub) request(ctx context.Context, req *http.Request) (*http.Request, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, s.ns.rt.opts.MaxRequestBody+1))
		req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("call %s %s: read the request body: %w", s.ns.class, s.id, err)
		}
		if int64(len(b)) > s.ns.rt.opts.MaxRequestBody {
			return nil, &CallError{Class: s.ns.class, ID: s.id, Code: protocol.CodeTooLarge, Message: fmt.Sprintf("request body over %d bytes", s.ns.rt.opts.MaxRequestBody), NotServed: true}
		}
		body = b
	}
	path := req.URL.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Path: CallPath + s.ns.class + "/" + s.id.String() + path, RawQuery: req.URL.RawQuery}
	out, err := http.NewRequestWithContext(ctx, req.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("call %s %s: %w", s.ns.class, s.id, err)
	}
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = http.Header{}
	}
	out.Host = "holocron.internal"
	out.RemoteAddr = "object-call"
	for _, h := range []string{headerCallerClass, headerCallerName, headerCallerID, headerCalleeName, headerCallChain} {
		out.Header.Del(h)
	}
	if s.name != "" {
		out.Header.Set(headerCalleeName, url.PathEscape(s.name))
	}
	if c := s.ns.caller; c != nil {
		out.Header.Set(headerCallerClass, c.class)
		c.mu.Lock()
		name := c.name
		c.mu.Unlock()
		if name != "" {
			out.Header.Set(headerCallerName, url.PathEscape(name))
		}
		out.Header.Set(headerCallerID, c.id.String())
		chain := append(slices.Clone(c.chain), c.id)
		ids := make([]string, len(chain))
		for i, id := range chain {
			ids[i] = id.String()
		}
		out.Header.Set(headerCallChain, strings.Join(ids, ","))
	}
	return out, nil
}

// send delivers out through the runtime's CallHandler (the director routes
// it to the owner) and turns what came back into a response or an error.
func (s *Stub) send(ctx context.Context, out *http.Request) (*http.Response, error) {
	rec := newGatedResponse()
	s.ns.rt.CallHandler().ServeHTTP(rec, out)
	if ctx.Err() != nil {
		// The cause: the caller's deadline (context.DeadlineExceeded) or
		// its cancellation, whichever of the caller's context and the
		// detached one noticed first.
		return nil, &CallError{Class: s.ns.class, ID: s.id, Code: protocol.CodeRequestTimeout, Message: "the call's context ended before the callee answered", Err: context.Cause(ctx)}
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if code := rec.header.Get(HeaderRuntimeError); code != "" {
		e := &CallError{Class: s.ns.class, ID: s.id, Code: code, NotServed: rec.header.Get(HeaderNotServed) != ""}
		var body struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(rec.body.Bytes(), &body) == nil {
			e.Message = body.Message
		}
		return nil, e
	}
	return &http.Response{
		Status:        fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)),
		StatusCode:    rec.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        rec.header,
		Body:          io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()),
		Request:       out,
	}, nil
}

// CallHandler serves CallPath: it routes each call to its callee (through
// the director, to the owner) and delivers it there as an event. Mount it
// on the peer listener, whose peers are the cluster's nodes; Fetch uses it
// in-process.
func (rt *Runtime) CallHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, CallPath)
		class, rest, _ := strings.Cut(rest, "/")
		idText, path, _ := strings.Cut(rest, "/")
		id, err := ParseID(idText)
		if !ok || class == "" || err != nil {
			WriteError(w, http.StatusNotFound, protocol.CodeNotFound, "not a call path: "+r.URL.Path)
			return
		}
		ns, err := rt.Namespace(class)
		if err != nil {
			w.Header().Set(HeaderNotServed, "1")
			WriteError(w, http.StatusNotFound, protocol.CodeNotFound, err.Error())
			return
		}
		name, _ := url.PathUnescape(r.Header.Get(headerCalleeName))
		stub := ns.Get(id)
		stub.name = name
		var caller *Caller
		if cls := r.Header.Get(headerCallerClass); cls != "" {
			cid, err := ParseID(r.Header.Get(headerCallerID))
			if err != nil {
				WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "a call's caller ID is malformed")
				return
			}
			cname, _ := url.PathUnescape(r.Header.Get(headerCallerName))
			caller = &Caller{Class: cls, Name: cname, ID: cid}
		}
		var chain []ID
		if s := r.Header.Get(headerCallChain); s != "" {
			for _, part := range strings.Split(s, ",") {
				cid, err := ParseID(part)
				if err != nil {
					WriteError(w, http.StatusBadRequest, protocol.CodeBadRequest, "a call's chain is malformed")
					return
				}
				chain = append(chain, cid)
			}
		}
		local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r2 := r.Clone(r.Context())
			if caller != nil {
				r2 = r2.WithContext(context.WithValue(r2.Context(), callerKey{}, *caller))
			}
			r2.URL.Path = "/" + path
			r2.URL.RawPath = ""
			for _, h := range []string{headerCallerClass, headerCallerName, headerCallerID, headerCalleeName, headerCallChain} {
				r2.Header.Del(h)
			}
			stub.serve(w, r2, chain)
		})
		rt.Direct(w, r, id, local)
	})
}

// commitBeforeCall ends the current event's implicit transaction before a
// call leaves: its writes and outputs so far are submitted, and it returns
// once every batch of the object is durable (or one failed). The caller
// begins the next transaction once the call is over.
func (e *entry) commitBeforeCall() error {
	st := e.state.storage
	switch {
	case len(st.layers) == 0:
		return ErrNoEvent
	case len(st.layers) > 1:
		return errCallInTransaction
	}
	w := st.end()
	if !w.empty() {
		if err := e.placed(); err != nil {
			st.begin()
			return fmt.Errorf("the caller's writes before the call would create it: %w", err)
		}
	}
	var out []outItem
	if e.outbox != nil {
		out = slices.Clone(*e.outbox)
		*e.outbox = (*e.outbox)[:0]
	}
	if !w.empty() {
		e.wroteBeforeCall = true
	}
	e.commit(w, out)
	e.gate.waitIdle()
	if e.gate.broken() {
		st.begin()
		return fmt.Errorf("the caller's writes before the call failed: %w", errCommitFailed)
	}
	return nil
}

var errCallInTransaction = errors.New("a call cannot be made inside Storage.Transaction")

// awaitCall runs call while the actor waits for it, handling meanwhile the
// events that arrive as calls of this object's own call chain (re-entrancy;
// see Fetch).
func (e *entry) awaitCall(call func() (*http.Response, error)) (*http.Response, error) {
	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	e.mu.Lock()
	e.calling++
	e.mu.Unlock()
	go func() {
		resp, err := call()
		done <- result{resp, err}
	}()
	for {
		select {
		case res := <-done:
			e.mu.Lock()
			e.calling--
			nested := e.reentrant
			e.reentrant = nil
			e.mu.Unlock()
			for _, ev := range nested {
				e.handleNested(ev)
			}
			return res.resp, res.err
		case <-e.reentry:
			e.mu.Lock()
			nested := e.reentrant
			e.reentrant = nil
			e.mu.Unlock()
			for _, ev := range nested {
				e.handleNested(ev)
			}
		}
	}
}

// handleNested handles ev, a call of the chain the current event waits on,
// in the middle of that event: between its transactions, with its outputs
// and chain put back afterwards.
func (e *entry) handleNested(ev event) {
	if e.gate.broken() || e.stale.Load() {
		// The instance is about to be rebuilt: not in the middle of an
		// event that still runs on it.
		ev.resp.Header().Set(HeaderNotServed, "1")
		WriteError(ev.resp, http.StatusServiceUnavailable, protocol.CodeUnavailable, "the object is being reloaded; send the call again")
		close(ev.done)
		return
	}
	outbox, chain, wrote := e.outbox, e.chain, e.wroteBeforeCall
	e.handle(ev)
	e.outbox, e.chain, e.wroteBeforeCall = outbox, chain, wrote
}

// deliverCall queues ev, a call of chain: to the actor waiting in a call
// of that chain when there is one (re-entrancy), to the mailbox otherwise.
func (e *entry) deliverCall(ctx context.Context, ev event) error {
	ev.queued = time.Now()
	e.mu.Lock()
	if e.calling > 0 && slices.Contains(ev.chain, e.id) {
		e.reentrant = append(e.reentrant, ev)
		e.mu.Unlock()
		select {
		case e.reentry <- struct{}{}:
		default: // already signalled
		}
		return nil
	}
	e.mu.Unlock()
	return e.deliver(ctx, ev)
}
