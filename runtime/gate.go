package runtime

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/holocron-run/holocron/protocol"

	"github.com/holocron-run/holocron/storage"
)

// gate is the output gate: outputs wait until every batch submitted before
// them is durable.
type gate struct {
	mu sync.Mutex
	// release is held while outputs are handed to sockets, taken after mu
	// and before mu is let go: so outputs of a later batch (or of an event
	// with no writes) never overtake those of an earlier one that another
	// goroutine is still releasing.
	release  sync.Mutex
	cond     *sync.Cond
	inflight []*[]outItem // per submitted batch, the outputs waiting on it
	failed   bool
	// moved is set when the failure was a lost ownership, not a storage
	// fault: sockets then close with 1012 "moved" and clients reconnect.
	moved bool
}

func (g *gate) idle() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.inflight) == 0
}

func (g *gate) broken() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failed
}

func (g *gate) clearBroken() {
	g.mu.Lock()
	g.failed = false
	g.moved = false
	g.mu.Unlock()
}

func (g *gate) waitIdle() {
	g.mu.Lock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	for len(g.inflight) > 0 {
		g.cond.Wait()
	}
	g.mu.Unlock()
	// The last batch's outputs may still be on their way to the sockets.
	g.release.Lock()
	g.release.Unlock()
}

// after holds out until batch (if any) and every earlier batch are durable.
// With nothing in flight and no batch, out is released at once.
func (g *gate) after(batch *storage.Batch, out []outItem) {
	g.mu.Lock()
	if batch != nil {
		held := out
		g.inflight = append(g.inflight, &held)
		g.mu.Unlock()
		return
	}
	if n := len(g.inflight); n > 0 {
		last := g.inflight[n-1]
		*last = append(*last, out...)
		g.mu.Unlock()
		return
	}
	failed := g.failed
	g.release.Lock()
	g.mu.Unlock()
	// Nothing of this event was written, whatever became of earlier ones.
	releaseOutputs(out, failed, storage.ErrNotWritten)
	g.release.Unlock()
}

// committed is called by the store, in submission order, for each batch.
func (g *gate) committed(err error, e *entry) {
	g.mu.Lock()
	out := g.inflight[0]
	g.inflight[0] = nil
	g.inflight = g.inflight[1:]
	if err != nil && !g.failed {
		g.failed = true
		g.moved = errors.Is(err, storage.ErrNotOwner)
		if g.moved {
			e.rt.log.Info("object moved; outputs dropped", "class", e.class, "object", e.id.String())
		} else {
			e.rt.log.Error("commit failed; outputs dropped", "class", e.class, "object", e.id.String(), "err", err)
		}
	}
	failed, moved := g.failed, g.moved
	if g.cond != nil {
		g.cond.Broadcast()
	}
	g.release.Lock()
	defer g.release.Unlock()
	g.mu.Unlock()
	releaseOutputs(*out, failed, err)
	if failed {
		// What the sockets saw may now be ahead of durable state: make the
		// clients reconnect and resync.
		e.mu.Lock()
		socks := append([]*WebSocket(nil), e.sockets...)
		e.mu.Unlock()
		code, reason := protocol.CloseInternalError, "storage failure"
		if moved {
			code, reason = protocol.CloseMoved, protocol.ReasonMoved
		}
		for _, ws := range socks {
			ws.enqueue(outFrame{close: true, code: code, reason: reason})
		}
	}
}

// releaseOutputs hands out to the sockets, or, when the object's storage
// failed, tells the outputs' waiters so with cause: their batch's own error
// (nil when it was written but an earlier batch failed).
func releaseOutputs(out []outItem, failed bool, cause error) {
	var err error
	switch {
	case failed && cause != nil:
		err = fmt.Errorf("%w: %w", errCommitFailed, cause)
	case failed:
		err = errCommitFailed
	}
	for i := 0; i < len(out); i++ {
		it := out[i]
		switch {
		case it.done != nil:
			it.done(err)
		case failed:
		case it.frame.data != nil && !it.frame.close:
			// A broadcast: the same frame for a run of sockets. Those on
			// other nodes get it as one message per node.
			j := i + 1
			for j < len(out) && out[j].done == nil && sameFrame(out[j].frame, it.frame) {
				j++
			}
			sendFrame(out[i:j])
			i = j - 1
		default:
			it.ws.enqueue(it.frame)
		}
	}
}

// sameFrame reports whether a and b are one frame (a broadcast's): the same
// bytes in memory and the same cursor.
func sameFrame(a, b outFrame) bool {
	return len(a.data) == len(b.data) && len(a.data) > 0 && &a.data[0] == &b.data[0] &&
		a.cursor == b.cursor && !b.close && b.record == nil
}

// sendFrame hands one frame to each socket of run: to a local socket's
// connection, and, for the sockets whose connections are on other nodes,
// once per node (EdgeLink), naming them.
func sendFrame(run []outItem) {
	f := run[0].frame
	if len(run) == 1 {
		run[0].ws.enqueue(f)
		return
	}
	var links []EdgeLink
	var sids [][]uint64
	for _, it := range run {
		rc, remote := it.ws.conn.(*remoteConn)
		if !remote {
			it.ws.enqueue(f)
			continue
		}
		if !rc.sendable() {
			continue
		}
		k := slices.Index(links, rc.link)
		if k < 0 {
			links, sids = append(links, rc.link), append(sids, nil)
			k = len(links) - 1
		}
		sids[k] = append(sids[k], rc.sid)
	}
	for k, l := range links {
		l.Send(sids[k], f.data, f.cursor)
	}
}

var errCommitFailed = fmt.Errorf("object storage commit failed")

// errLeaseLapsed refuses the answers of an event that wrote nothing when
// the node's lease on the object lapsed before they left (storage.Leased).
var errLeaseLapsed = fmt.Errorf("this node's lease on the object lapsed before the answer left: %w: %w", storage.ErrNotOwner, storage.ErrNotWritten)

// errAfterFailure answers a batch computed while an earlier batch of the
// same object failed: it was not submitted.
var errAfterFailure = fmt.Errorf("an earlier batch of the object failed: %w", storage.ErrNotWritten)
