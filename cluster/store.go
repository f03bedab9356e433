package cluster

import (
	"sync"
	"time"

	"github.com/holocron-run/holocron/storage"
)

// replicatedStore is the Store the runtime sees in a cluster. Reads come
// from this node's Pebble database, which holds every applied entry of the
// partitions it is a member of; a commit is a Raft proposal in the object's
// partition, done once committed by a majority and applied here. Only the
// partition's serving leader may commit: elsewhere Commit fails with
// storage.ErrNotOwner.
// Serves implements storage.Leased: this node leads obj's partition and
// holds its lease now.
func (s *replicatedStore) Serves(obj storage.ObjectID) bool { return s.engine.Serving(s.part(obj)) }

type replicatedStore struct {
	local  *storage.PebbleStore
	engine *Engine
	part   func(storage.ObjectID) int

	// chains are the objects with batches in flight. An object pipelines:
	// its next batch may build on writes still in flight. So every batch
	// of a chain carries the serving epoch from when the chain began, and
	// after a gap in service the rest of the chain is refused with it,
	// never committed without a refused predecessor.
	mu     sync.Mutex
	chains map[storage.ObjectID]*chain
}

// chain is one object's batches in flight, answered in the order they were
// submitted, as storage.Store promises: the engine refuses a batch at once
// while an earlier one is still in flight, and fails the pending ones of a
// partition it lost in no order, so an answer waits for every earlier
// batch's. (The runtime matches answers to batches by that order: out of
// order, a refusal was taken for the earlier, written batch, which the
// client then retried, and the written batch's success for the refused
// one, whose client got a 503 it could not retry.)
type chain struct {
	epoch   uint64
	waiting []*answer
	// delivering is set while one goroutine hands the answers out.
	delivering bool
}

// answer is one batch's outcome, once known.
type answer struct {
	done  func(error)
	err   error
	known bool
}

var _ storage.Store = (*replicatedStore)(nil)

func (s *replicatedStore) Get(obj storage.ObjectID, key string) ([]byte, bool, error) {
	return s.local.Get(obj, key)
}

func (s *replicatedStore) Scan(obj storage.ObjectID, opts storage.ScanOptions, fn func(string, []byte) bool) error {
	return s.local.Scan(obj, opts, fn)
}

func (s *replicatedStore) Alarm(obj storage.ObjectID) (time.Time, bool, error) {
	return s.local.Alarm(obj)
}

func (s *replicatedStore) Meta(obj storage.ObjectID) (storage.ObjectMeta, bool, error) {
	return s.local.Meta(obj)
}

func (s *replicatedStore) Commit(b *storage.Batch, done func(error)) {
	p := s.part(b.Object)
	s.mu.Lock()
	c := s.chains[b.Object]
	if c == nil {
		if s.chains == nil {
			s.chains = map[storage.ObjectID]*chain{}
		}
		c = &chain{epoch: s.engine.Epoch(p)}
		s.chains[b.Object] = c
	}
	a := &answer{done: done}
	c.waiting = append(c.waiting, a)
	epoch := c.epoch
	s.mu.Unlock()
	s.engine.ProposeAt(p, epoch, storage.AppendBatch(nil, b), func(err error) { s.answered(b.Object, c, a, err) })
}

// answered records a's outcome and hands out every answer of c that no
// earlier one holds back, in order.
func (s *replicatedStore) answered(obj storage.ObjectID, c *chain, a *answer, err error) {
	s.mu.Lock()
	a.err, a.known = err, true
	if c.delivering {
		s.mu.Unlock() // the goroutine delivering will reach it
		return
	}
	c.delivering = true
	for len(c.waiting) > 0 && c.waiting[0].known {
		head := c.waiting[0]
		c.waiting = c.waiting[1:]
		s.mu.Unlock()
		// The object hears first: a batch it submits meanwhile still
		// belongs to this chain.
		head.done(head.err)
		s.mu.Lock()
	}
	c.delivering = false
	if len(c.waiting) == 0 {
		delete(s.chains, obj)
	}
	s.mu.Unlock()
}

// Alarms returns only the due alarms of partitions this node serves: every
// replica holds the alarm index, but only the leader fires.
func (s *replicatedStore) Alarms(until time.Time, limit int) ([]storage.Alarm, error) {
	all, err := s.local.Alarms(until, 1<<16)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, a := range all {
		if len(out) == limit {
			break
		}
		if s.engine.Serving(s.part(a.Object)) {
			out = append(out, a)
		}
	}
	return out, nil
}

func (s *replicatedStore) NextAlarm() (time.Time, bool, error) { return s.local.NextAlarm() }

// Close is a no-op: the node closes the engine and the local store.
func (s *replicatedStore) Close() error { return nil }
