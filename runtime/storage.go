package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/holocron-run/holocron/storage"
)

// ErrNoEvent is returned by a write outside an event (for example from a
// goroutine the object started), where there is no transaction to join.
var ErrNoEvent = errors.New("storage write outside an event")

// KV is one key and its value (the store's own type, so that a listing
// and an export are the same thing).
type KV = storage.KV

// ListOptions select keys for Storage.List, as in Cloudflare's storage.list.
type ListOptions struct {
	Prefix  string
	Start   string // inclusive
	End     string // exclusive; empty means no bound
	Reverse bool
	Limit   int // zero means no limit
}

// Storage is one object's durable key-value storage.
//
// Writes made during an event are buffered and committed as one atomic batch
// when the handler returns (the implicit transaction); reads see them at
// once. While earlier batches are still on their way to disk the object keeps
// running, and reads see those too; nothing the object sends leaves before
// every write it could have seen is durable (the output gate).
//
// Storage methods are called only from the object's own event handlers.
type Storage struct {
	obj   storage.ObjectID
	store storage.Store

	// layers are the writes of open transactions of the current event,
	// innermost last; nil between events.
	layers []*writeSet

	// pending holds batches submitted but not yet committed, oldest first.
	// It is shared with the commit callback, hence the mutex.
	mu      sync.Mutex
	pending []*writeSet
}

// writeSet is an ordered list of writes with an index for point reads.
type writeSet struct {
	ops     []storage.Op
	index   map[string]int // key → position in ops of its latest write
	cleared bool           // a DeleteAll hides everything below this set
	alarm   *storage.AlarmChange
}

func newWriteSet() *writeSet { return &writeSet{index: map[string]int{}} }

func (w *writeSet) empty() bool { return len(w.ops) == 0 && w.alarm == nil }

func (w *writeSet) put(key string, value []byte) {
	// Own the bytes: the caller may reuse its slice, and the store reads
	// this one on its commit goroutine.
	w.putOwned(key, bytes.Clone(value))
}

// putOwned is put for bytes the set may keep as they are.
func (w *writeSet) putOwned(key string, value []byte) {
	w.index[key] = len(w.ops)
	w.ops = append(w.ops, storage.Op{Kind: storage.OpPut, Key: key, Value: value})
}

func (w *writeSet) del(key string) {
	w.index[key] = len(w.ops)
	w.ops = append(w.ops, storage.Op{Kind: storage.OpDelete, Key: key})
}

func (w *writeSet) deleteAll() {
	clear(w.index)
	w.cleared = true
	w.ops = append(w.ops, storage.Op{Kind: storage.OpDeleteAll})
}

// lookup reports what this set says about key: found (a put or a delete in
// this set, or hidden by its DeleteAll) and, if put, the value.
func (w *writeSet) lookup(key string) (value []byte, present, decided bool) {
	if i, ok := w.index[key]; ok {
		op := w.ops[i]
		return op.Value, op.Kind == storage.OpPut, true
	}
	return nil, false, w.cleared
}

// apply appends the writes of child (a committed nested transaction).
func (w *writeSet) apply(child *writeSet) {
	for _, op := range child.ops {
		switch op.Kind {
		case storage.OpPut:
			w.putOwned(op.Key, op.Value) // the child's own copy, now the parent's
		case storage.OpDelete:
			w.del(op.Key)
		case storage.OpDeleteAll:
			w.deleteAll()
		}
	}
	if child.alarm != nil {
		w.alarm = child.alarm
	}
}

func newStorage(obj storage.ObjectID, store storage.Store) *Storage {
	return &Storage{obj: obj, store: store}
}

// begin opens the implicit transaction of an event.
func (s *Storage) begin() { s.layers = []*writeSet{newWriteSet()} }

// end closes the event's transaction and returns its writes.
func (s *Storage) end() *writeSet {
	if len(s.layers) == 0 {
		return newWriteSet()
	}
	w := s.layers[0]
	s.layers = nil
	return w
}

// discard drops the event's writes (the handler panicked).
func (s *Storage) discard() { s.layers = nil }

func (s *Storage) top() (*writeSet, error) {
	if len(s.layers) == 0 {
		return nil, ErrNoEvent
	}
	return s.layers[len(s.layers)-1], nil
}

// pushPending records w as submitted; it stays visible to reads until
// popPending after its commit.
func (s *Storage) pushPending(w *writeSet) {
	s.mu.Lock()
	s.pending = append(s.pending, w)
	s.mu.Unlock()
}

func (s *Storage) popPending() {
	s.mu.Lock()
	s.pending[0] = nil
	s.pending = s.pending[1:]
	s.mu.Unlock()
}

// visibleLayers returns every uncommitted layer, newest first.
func (s *Storage) visibleLayers() []*writeSet {
	s.mu.Lock()
	out := make([]*writeSet, 0, len(s.layers)+len(s.pending))
	for i := len(s.layers) - 1; i >= 0; i-- {
		out = append(out, s.layers[i])
	}
	for i := len(s.pending) - 1; i >= 0; i-- {
		out = append(out, s.pending[i])
	}
	s.mu.Unlock()
	return out
}

// Get returns the value of key.
func (s *Storage) Get(key string) ([]byte, bool, error) {
	if err := storage.CheckKey(key); err != nil {
		return nil, false, err
	}
	for _, l := range s.visibleLayers() {
		if v, present, decided := l.lookup(key); decided {
			return bytes.Clone(v), present, nil
		}
	}
	v, ok, err := s.store.Get(s.obj, key)
	if err != nil {
		return nil, false, fmt.Errorf("get %q: %w", key, err)
	}
	return v, ok, nil
}

// GetMany returns the values of the keys that exist.
func (s *Storage) GetMany(keys []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	for _, k := range keys {
		v, ok, err := s.Get(k)
		if err != nil {
			return nil, err
		}
		if ok {
			out[k] = v
		}
	}
	return out, nil
}

// Put stores value under key as part of the current event's transaction.
func (s *Storage) Put(key string, value []byte) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	if err := storage.CheckValue(value); err != nil {
		return fmt.Errorf("put %q: %w", key, err)
	}
	w, err := s.top()
	if err != nil {
		return err
	}
	w.put(key, value)
	return nil
}

// PutMany stores every entry; it checks all of them before writing any.
func (s *Storage) PutMany(entries map[string][]byte) error {
	for k, v := range entries {
		if err := storage.CheckKey(k); err != nil {
			return err
		}
		if err := storage.CheckValue(v); err != nil {
			return fmt.Errorf("put %q: %w", k, err)
		}
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := s.Put(k, entries[k]); err != nil {
			return err
		}
	}
	return nil
}

// Delete removes key.
func (s *Storage) Delete(key string) error {
	if err := storage.CheckKey(key); err != nil {
		return err
	}
	w, err := s.top()
	if err != nil {
		return err
	}
	w.del(key)
	return nil
}

// DeleteMany removes every key.
func (s *Storage) DeleteMany(keys []string) error {
	for _, k := range keys {
		if err := s.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// DeleteAll removes every key of the object. The alarm is left alone.
func (s *Storage) DeleteAll() error {
	w, err := s.top()
	if err != nil {
		return err
	}
	w.deleteAll()
	return nil
}

// Transaction runs fn with a nested transaction: fn's writes become part of
// the event's batch if fn returns nil, and are dropped if it returns an
// error. fn receives this same Storage; reads inside fn see fn's writes.
func (s *Storage) Transaction(fn func(tx *Storage) error) error {
	if len(s.layers) == 0 {
		return ErrNoEvent
	}
	child := newWriteSet()
	s.layers = append(s.layers, child)
	err := fn(s)
	s.layers = s.layers[:len(s.layers)-1]
	if err != nil {
		return err
	}
	s.layers[len(s.layers)-1].apply(child)
	return nil
}

// List returns the keys in opts' range in key order (reversed with
// opts.Reverse), at most opts.Limit of them.
func (s *Storage) List(opts ListOptions) ([]KV, error) {
	if opts.Limit < 0 {
		return nil, fmt.Errorf("list: negative limit %d", opts.Limit)
	}
	inRange := func(k string) bool {
		if len(k) < len(opts.Prefix) || k[:len(opts.Prefix)] != opts.Prefix {
			return false
		}
		return k >= opts.Start && (opts.End == "" || k < opts.End)
	}
	// Fold the uncommitted layers, oldest first, into one view.
	layers := s.visibleLayers()
	view := map[string]*storage.Op{}
	storeHidden := false
	for i := len(layers) - 1; i >= 0; i-- {
		for j := range layers[i].ops {
			op := &layers[i].ops[j]
			switch op.Kind {
			case storage.OpDeleteAll:
				clear(view)
				storeHidden = true
			default:
				view[op.Key] = op
			}
		}
	}
	var mine []string
	for k := range view {
		if inRange(k) {
			mine = append(mine, k)
		}
	}
	slices.Sort(mine)
	if opts.Reverse {
		slices.Reverse(mine)
	}
	before := func(a, b string) bool {
		if opts.Reverse {
			return a > b
		}
		return a < b
	}
	var out []KV
	full := func() bool { return opts.Limit > 0 && len(out) >= opts.Limit }
	emitMine := func(k string) {
		if op := view[k]; op.Kind == storage.OpPut {
			out = append(out, KV{Key: k, Value: bytes.Clone(op.Value)})
		}
	}
	i := 0
	if !storeHidden {
		err := s.store.Scan(s.obj, storage.ScanOptions{Prefix: opts.Prefix, Start: opts.Start, End: opts.End, Reverse: opts.Reverse},
			func(key string, value []byte) bool {
				for i < len(mine) && before(mine[i], key) && !full() {
					emitMine(mine[i])
					i++
				}
				if full() {
					return false
				}
				if i < len(mine) && mine[i] == key {
					emitMine(key)
					i++
				} else if _, shadowed := view[key]; !shadowed {
					out = append(out, KV{Key: key, Value: value})
				}
				return !full()
			})
		if err != nil {
			return nil, fmt.Errorf("list: %w", err)
		}
	}
	for ; i < len(mine) && !full(); i++ {
		emitMine(mine[i])
	}
	return out, nil
}

// SetAlarm schedules the object's alarm (replacing any earlier one). The
// runtime calls OnAlarm at or after t, at least once, even across restarts.
func (s *Storage) SetAlarm(t time.Time) error {
	w, err := s.top()
	if err != nil {
		return err
	}
	w.alarm = &storage.AlarmChange{Set: true, At: t.UTC()}
	return nil
}

// DeleteAlarm cancels the object's alarm.
func (s *Storage) DeleteAlarm() error {
	w, err := s.top()
	if err != nil {
		return err
	}
	w.alarm = &storage.AlarmChange{Delete: true}
	return nil
}

// GetAlarm returns the object's alarm time, if one is set.
func (s *Storage) GetAlarm() (time.Time, bool, error) {
	for _, l := range s.visibleLayers() {
		if l.alarm != nil {
			return l.alarm.At, l.alarm.Set, nil
		}
	}
	at, ok, err := s.store.Alarm(s.obj)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("get alarm: %w", err)
	}
	return at, ok, nil
}

// GetJSON reads key and decodes its JSON value into a T.
func GetJSON[T any](s *Storage, key string) (T, bool, error) {
	var v T
	raw, ok, err := s.Get(key)
	if err != nil || !ok {
		return v, ok, err
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, false, fmt.Errorf("decode %q: %w", key, err)
	}
	return v, true, nil
}

// PutJSON encodes v as JSON and stores it under key.
func PutJSON(s *Storage, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return s.Put(key, raw)
}
