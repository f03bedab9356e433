package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holocron-run/holocron/protocol"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/storage"
)

type eventKind uint8

const (
	evHTTP eventKind = iota + 1
	evWSMessage
	evWSClose
	evWSError
	evAlarm
	evForget
	evRestore
)

func (k eventKind) String() string {
	switch k {
	case evHTTP:
		return "http"
	case evWSMessage:
		return "ws_message"
	case evWSClose:
		return "ws_close"
	case evWSError:
		return "ws_error"
	case evAlarm:
		return "alarm"
	case evForget:
		return "forget"
	case evRestore:
		return "restore"
	}
	return "unknown"
}

// event is one unit of work for an object's actor.
type event struct {
	kind eventKind
	// queued is when the event was handed to the object, for the queue
	// wait metric.
	queued time.Time
	// evHTTP
	req  *http.Request
	resp *gatedResponse
	done chan struct{}
	// evWS*
	ws     *WebSocket
	msg    Message
	code   int
	reason string
	err    error
	// evAlarm: called once the outcome is durable (true) or failed.
	alarmDone func(ok bool)
	// evAlarm: the alarm's time in the index, and whether this is its
	// last run: if it fails too, the event's batch deletes the alarm.
	alarmAt   time.Time
	lastAlarm bool
	// evForget, evRestore: called once the change is durable, or failed.
	replaceDone func(error)
	// evRestore: the batches that replace the object's state.
	restore []*storage.Batch
	// evHTTP of a call: the objects waiting on the calls that led to it,
	// outermost first.
	chain []ID
}

// entry is everything a node holds for one object: its mailbox, its sockets,
// its current instance (nil while hibernating) and its output gate.
type entry struct {
	rt    *Runtime
	class string
	ctor  Constructor
	id    ID

	mailbox chan event

	mu      sync.Mutex
	name    string
	running bool // an actor goroutine is running
	refs    int  // callers about to deliver
	sockets []*WebSocket
	byTag   map[string][]*WebSocket

	// Actor-goroutine state.
	state     *State
	instance  Object
	metaSaved bool
	// quotaPlaced: the object exists, or its class's quota gave it a
	// place (see placed).
	quotaPlaced bool
	// wroteBeforeCall: the current event committed writes before a call
	// (commitBeforeCall), so its failure later on is no "not served".
	wroteBeforeCall bool
	outbox          *[]outItem // the current event's outputs

	// chain is the current event's call chain (event.chain). calling
	// counts the calls the actor waits on; reentrant holds the events of
	// its chain's calls that arrived meanwhile, announced on reentry.
	chain     []ID
	calling   int // guarded by mu
	reentrant []event
	reentry   chan struct{}

	gate gate
	// stale asks the actor to drop its instance before the next event,
	// because another node may have changed the object's storage.
	stale atomic.Bool
}

func newEntry(rt *Runtime, class string, ctor Constructor, id ID, name string) *entry {
	e := &entry{
		rt:      rt,
		class:   class,
		ctor:    ctor,
		id:      id,
		name:    name,
		mailbox: make(chan event, rt.opts.MailboxSize),
		byTag:   map[string][]*WebSocket{},
		reentry: make(chan struct{}, 1),
	}
	e.state = &State{entry: e, storage: newStorage(storage.ObjectID(id), rt.opts.Store)}
	return e
}

// release drops a reference taken by acquire or terminate.
func (e *entry) release() {
	e.mu.Lock()
	e.refs--
	e.mu.Unlock()
	e.rt.maybeDrop(e)
}

// deliver queues ev, waiting for room in the mailbox, and makes sure an actor
// goroutine is running.
func (e *entry) deliver(ctx context.Context, ev event) error {
	ev.queued = time.Now()
	select {
	case e.mailbox <- ev:
	case <-ctx.Done():
		return fmt.Errorf("deliver %s event to %s: %w", ev.kind, e.id, ctx.Err())
	}
	e.mu.Lock()
	if !e.running {
		e.running = true
		go e.run()
	}
	e.mu.Unlock()
	return nil
}

// deliverBlocking delivers an event that has no caller to give up (socket
// traffic): it waits for mailbox room, which is the socket's backpressure.
func (e *entry) deliverBlocking(ev event) { _ = e.deliver(context.Background(), ev) }

// run is the actor: it handles events one at a time and evicts the instance
// after IdleTimeout without events.
func (e *entry) run() {
	idle := time.NewTimer(e.rt.opts.IdleTimeout)
	defer idle.Stop()
	for {
		select {
		case ev := <-e.mailbox:
			e.handle(ev)
			if !idle.Stop() {
				select {
				case <-idle.C:
				default:
				}
			}
			idle.Reset(e.rt.opts.IdleTimeout)
		case <-idle.C:
			if e.tryEvict() {
				return
			}
			idle.Reset(e.rt.opts.IdleTimeout)
		case <-e.rt.ctx.Done():
			// Shutting down: finish what is queued, then go.
			if len(e.mailbox) > 0 {
				continue
			}
			e.gate.waitIdle()
			if e.tryEvict() {
				return
			}
		}
	}
}

// tryEvict ends the actor if no event waits and no commit is in flight. The
// sockets stay; the next event builds a new instance from storage.
func (e *entry) tryEvict() bool {
	if !e.gate.idle() {
		return false
	}
	rt := e.rt
	rt.mu.Lock()
	e.mu.Lock()
	if len(e.mailbox) > 0 {
		e.mu.Unlock()
		rt.mu.Unlock()
		return false
	}
	e.running = false
	if e.instance != nil {
		rt.metrics.evictions.Inc()
	}
	e.instance = nil
	e.metaSaved = false
	drop := e.refs == 0 && len(e.sockets) == 0 && rt.entries[e.id] == e
	if drop {
		delete(rt.entries, e.id)
		rt.metrics.objectsActive.Dec()
	}
	e.mu.Unlock()
	rt.mu.Unlock()
	return true
}

// outItem is one output held by the gate: a frame for a socket, or a
// callback that releases an HTTP response or reports an alarm's outcome.
type outItem struct {
	ws    *WebSocket
	frame outFrame
	done  func(err error)
}

// emit records an output of the current event.
func (e *entry) emit(it outItem) {
	if e.outbox == nil {
		// Outside an event (misuse): still never ahead of pending writes.
		e.gate.after(nil, []outItem{it})
		return
	}
	*e.outbox = append(*e.outbox, it)
}

func (e *entry) handle(ev event) {
	switch ev.kind {
	case evForget:
		e.replace([]*storage.Batch{{Object: storage.ObjectID(e.id), Forget: true}}, protocol.CloseNormal, "object deleted", ev)
		return
	case evRestore:
		e.replace(ev.restore, protocol.CloseMoved, "object restored", ev)
		return
	}
	rt := e.rt
	start := time.Now()
	rt.metrics.queueSeconds.Observe(start.Sub(ev.queued).Seconds())
	if e.gate.broken() || e.stale.Swap(false) {
		e.reset()
	}
	var out []outItem
	e.outbox = &out
	e.chain = ev.chain
	e.wroteBeforeCall = false
	st := e.state.storage
	st.begin()
	ctx := context.WithValue(rt.ctx, stateKey, e.state)
	if ev.req != nil {
		ctx = context.WithValue(ev.req.Context(), stateKey, e.state)
	}
	alarm := alarmSkipped
	panicked, cause := e.safely(ev, func() {
		if e.instance == nil {
			obj, err := e.ctor(e.state)
			if err != nil {
				panic(fmt.Errorf("construct %s %s: %w", e.class, e.id, err))
			}
			e.instance = obj
			rt.metrics.activations.Inc()
		}
		alarm = e.dispatch(ctx, ev)
	})
	e.outbox = nil
	var w *writeSet
	if panicked {
		st.discard()
		w = newWriteSet()
		e.instance = nil // its memory may be inconsistent
		out = e.failureOutputs(ev, cause)
	} else {
		w = st.end()
		if !w.empty() {
			if err := e.placed(); err != nil {
				// Not created: nothing of the event is written or sent.
				w = newWriteSet()
				out = e.refusedOutputs(ev, err)
			}
		}
	}
	if ev.kind == evAlarm {
		ok := !panicked && alarm != alarmFailed
		if ok && alarm == alarmFired && w.alarm == nil {
			// Done with this alarm, unless the handler set a new one.
			w.alarm = &storage.AlarmChange{Delete: true}
		}
		if !ok && ev.lastAlarm {
			// Given up. The deletion goes with this event's batch, in the
			// object's commit order, so the scheduler, told after it is
			// durable, cannot find the alarm due again; and an alarm set
			// anew meanwhile is not the one given up, so it stays.
			if at, set, err := st.GetAlarm(); err == nil && set && at.Equal(ev.alarmAt) {
				w.alarm = &storage.AlarmChange{Delete: true}
			}
		}
		done := ev.alarmDone
		out = append(out, outItem{done: func(err error) { done(ok && err == nil) }})
	}
	if ev.kind == evHTTP {
		resp, doneCh, partial := ev.resp, ev.done, e.wroteBeforeCall
		out = append(out, outItem{done: func(err error) {
			if partial && errors.Is(err, storage.ErrNotWritten) {
				// Part of the event is written: sending the request
				// again would do that part twice.
				err = fmt.Errorf("%s (the event had written before a call): %w", err, errCommitFailed)
			}
			resp.failed = err
			close(doneCh)
		}})
	}
	e.commit(w, out)
	rt.metrics.events.WithLabelValues(ev.kind.String()).Inc()
	rt.metrics.eventSeconds.Observe(time.Since(start).Seconds())
}

// commit submits w, the writes of (part of) an event, and holds out, its
// outputs, until they and every earlier batch are durable.
func (e *entry) commit(w *writeSet, out []outItem) {
	rt, st := e.rt, e.state.storage
	var batch *storage.Batch
	if !w.empty() {
		batch = &storage.Batch{Object: storage.ObjectID(e.id), Ops: w.ops, Written: rt.opts.Now()}
		if w.alarm != nil {
			batch.Alarm = *w.alarm
		}
		if !e.metaSaved {
			e.mu.Lock()
			batch.Meta = &storage.ObjectMeta{Class: e.class, Name: e.name}
			e.mu.Unlock()
			e.metaSaved = true
		}
		st.pushPending(w)
	}
	if batch == nil && e.gate.idle() {
		// Nothing of this event to commit, and nothing before it in
		// flight: its answers leave now, unless the store has lost the
		// right to answer for the object since its last commit (a lapsed
		// lease). Then they are refused as a lost commit would be: not
		// served, sockets closed 1012, the instance rebuilt.
		if l, ok := rt.opts.Store.(storage.Leased); ok && !l.Serves(storage.ObjectID(e.id)) {
			e.gate.after(&storage.Batch{Object: storage.ObjectID(e.id)}, out)
			e.gate.committed(errLeaseLapsed, e)
			return
		}
	}
	e.gate.after(batch, out)
	if batch == nil {
		return
	}
	submitted := time.Now()
	finish := func(err error) {
		rt.metrics.commitSeconds.Observe(time.Since(submitted).Seconds())
		st.popPending()
		if batch.Alarm.Set {
			rt.alarms.poke()
		}
		e.gate.committed(err, e)
	}
	if e.gate.broken() {
		// An earlier batch failed while this event ran, which may have
		// read its writes: this one is never submitted.
		finish(errAfterFailure)
		return
	}
	rt.opts.Store.Commit(batch, finish)
}

// replace swaps the object's whole state for what batches write (its
// deletion, or a restored backup), after every earlier batch: the instance
// is dropped and the sockets are closed with code and reason, so nothing of
// the old state lives on. ev.replaceDone hears when the last batch is
// durable, or the first failure.
//
// The object handles nothing more until the batches are durable, and only
// then are its sockets closed: the replacement's writes bypass the event
// cache, so an event run before they are durable (the closes' OnClose
// first of all) would read the old state from storage and write it back
// over the new one; and a client told "restored" must find the restore.
func (e *entry) replace(batches []*storage.Batch, code int, reason string, ev event) {
	e.gate.waitIdle()
	e.instance = nil
	e.metaSaved = batches[0].Meta != nil
	// The outcome, set when the last batch is durable (or one failed):
	// waitIdle returns after that.
	var outcome error
	for i, b := range batches {
		var out []outItem
		if i == len(batches)-1 {
			out = []outItem{{done: func(err error) { outcome = err }}}
		}
		e.gate.after(b, out)
		e.rt.opts.Store.Commit(b, func(err error) { e.gate.committed(err, e) })
	}
	e.gate.waitIdle()
	if ev.kind == evForget && outcome == nil && e.rt.opts.Registry.limit(e.class) > 0 {
		// A deleted object gives its place back, before the deletion is
		// reported done: a create that follows it finds the place free.
		if err := e.askQuota("/release"); err != nil {
			e.rt.log.Warn("deleted object's quota place not released", "class", e.class, "object", e.id.String(), "err", err)
		}
	}
	e.quotaPlaced = false
	ev.replaceDone(outcome)
	e.mu.Lock()
	socks := append([]*WebSocket(nil), e.sockets...)
	e.mu.Unlock()
	for _, ws := range socks {
		ws.enqueue(outFrame{close: true, code: code, reason: reason})
	}
	e.rt.metrics.events.WithLabelValues(ev.kind.String()).Inc()
}

// alarmOutcome is what became of an alarm event.
type alarmOutcome uint8

const (
	alarmSkipped alarmOutcome = iota // not due any more (moved or deleted)
	alarmFired                       // handled (or no handler): delete it
	alarmFailed                      // handler failed: keep it for a retry
)

// dispatch calls the instance's handler for ev and, for an alarm, says how
// it went.
func (e *entry) dispatch(ctx context.Context, ev event) alarmOutcome {
	switch ev.kind {
	case evHTTP:
		if a, ok := edgeAttachFrom(ctx); ok && a.Reattach != nil {
			e.reattach(ctx, ev, a)
			return alarmSkipped
		}
		// ctx carries the State (StateFrom) on top of the request's own.
		e.instance.ServeHTTP(ev.resp, ev.req.WithContext(ctx))
	case evWSMessage, evWSClose, evWSError:
		h, ok := e.instance.(WebSocketHandler)
		if !ok {
			if ev.kind != evWSClose {
				ev.ws.Close(websocket.CloseUnsupportedData, "object does not handle websocket messages")
			}
			return alarmSkipped
		}
		switch ev.kind {
		case evWSMessage:
			h.OnMessage(ctx, ev.ws, ev.msg)
		case evWSClose:
			h.OnClose(ctx, ev.ws, ev.code, ev.reason)
		default:
			h.OnError(ctx, ev.ws, ev.err)
		}
	case evAlarm:
		st := e.state.storage
		at, ok, err := st.GetAlarm()
		if err != nil {
			panic(err)
		}
		if !ok || at.After(e.rt.opts.Now()) {
			return alarmSkipped // moved or deleted since it was scheduled
		}
		h, isHandler := e.instance.(AlarmHandler)
		if !isHandler {
			return alarmFired
		}
		if err := h.OnAlarm(ctx); err != nil {
			e.rt.log.Warn("alarm failed", "class", e.class, "object", e.id.String(), "err", err)
			st.discard()
			st.begin()
			*e.outbox = (*e.outbox)[:0]
			// Keep the alarm for the retry.
			return alarmFailed
		}
		e.rt.metrics.alarmsFired.Inc()
		return alarmFired
	}
	return alarmSkipped
}

// safely runs fn and reports whether it panicked, and with what, logging
// the panic.
func (e *entry) safely(ev event, fn func()) (panicked bool, cause any) {
	defer func() {
		if p := recover(); p != nil {
			panicked, cause = true, p
			e.rt.metrics.panics.Inc()
			e.rt.log.Error("object handler panicked", "class", e.class, "object", e.id.String(),
				"event", ev.kind.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		}
	}()
	fn()
	return false, nil
}

// failureOutputs is what the client sees when a handler panicked (cause):
// an HTTP 500 or an internal error frame, in the protocol's error shape;
// when the panic came from a failed store (the object could not even read
// its state), unavailable instead, which tells a client to retry (on
// another node: this one is going down).
func (e *entry) failureOutputs(ev event, cause any) []outItem {
	code, status, msg := protocol.CodeInternal, http.StatusInternalServerError, "internal error"
	if err, ok := cause.(error); ok && errors.Is(err, storage.ErrFailed) {
		code, status, msg = protocol.CodeUnavailable, http.StatusServiceUnavailable, "storage failed"
	}
	return errorOutputs(ev, status, code, msg)
}

// refusedOutputs answer an event whose writes would have created the
// object, refused by its class's quota (err): 429 limit_exceeded when the
// class is full; 503 unavailable, not served, when the quota could not be
// asked (nothing was written: the client may send it again).
func (e *entry) refusedOutputs(ev event, err error) []outItem {
	if errors.Is(err, errOverQuota) {
		e.rt.log.Info("object not created: its class is at its limit", "class", e.class, "object", e.id.String(), "limit", e.rt.opts.Registry.limit(e.class))
		return errorOutputs(ev, http.StatusTooManyRequests, protocol.CodeLimitExceeded, fmt.Sprintf("no more objects of class %s may be created (limit %d)", e.class, e.rt.opts.Registry.limit(e.class)))
	}
	e.rt.log.Warn("object not created: its quota could not be asked", "class", e.class, "object", e.id.String(), "err", err)
	if ev.kind == evHTTP {
		ev.resp.reset()
		ev.resp.Header().Set(HeaderNotServed, "1")
	}
	return errorOutputs(ev, http.StatusServiceUnavailable, protocol.CodeUnavailable, "the object could not be created now; try again")
}

// errorOutputs answer ev with the runtime's error: an HTTP error body, or
// an error frame on the socket of a message.
func errorOutputs(ev event, status int, code, msg string) []outItem {
	switch ev.kind {
	case evHTTP:
		ev.resp.reset()
		if status == http.StatusServiceUnavailable {
			ev.resp.Header().Set("Retry-After", "1")
		}
		WriteError(ev.resp, status, code, msg)
	case evWSMessage, evWSError:
		return []outItem{{ws: ev.ws, frame: outFrame{data: protocol.ErrorFrameJSON(&protocol.Error{Code: code, Message: msg})}}}
	}
	return nil
}

// reset throws away an instance whose writes failed, once every in-flight
// commit has finished, so the next event starts from durable state.
func (e *entry) reset() {
	e.gate.waitIdle()
	e.instance = nil
	e.metaSaved = false
	e.gate.clearBroken()
}
