package storage

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Key layout of the node's Pebble database. Every object gets a disjoint
// range, so DeleteAll is one range deletion and a scan never crosses objects.
//
//	'o' id 0x00 userkey  object data
//	'm' id               ObjectMeta (JSON)
//	'a' id               the object's alarm (8-byte big-endian unix nanos)
//	't' nanos id         alarm index, value ObjectMeta (JSON)
//	'w' id               the object's last write (8-byte big-endian unix nanos)
const (
	prefixData       = 'o'
	prefixMeta       = 'm'
	prefixAlarm      = 'a'
	prefixAlarmIndex = 't'
	prefixWritten    = 'w'
)

// PebbleOptions configure a PebbleStore. The zero value is ready to use.
type PebbleOptions struct {
	// Logger receives Pebble's own log lines; nil discards them.
	Logger *slog.Logger
	// MaxGroupBytes bounds the size of one group commit. Zero means 8 MiB.
	MaxGroupBytes int
	// Metrics, when non-nil, is told about every group commit.
	Metrics CommitObserver
	// OnFailure, when set, is called once, with the cause, when the store
	// fails: a commit failed (Pebble could not write or fsync its WAL, or a
	// batch could not be built) or Fail was called. It runs before any
	// commit learns of the failure, on the goroutine that failed (the
	// commit loop, the Raft engine, one of Pebble's), and must not block.
	// A failed store refuses every later commit, for good (see fail): its
	// owner should fail-stop, and let a restart replay the WAL.
	OnFailure func(error)
	// CacheBytes sizes Pebble's block cache. Zero means 64 MiB.
	CacheBytes int64
	// MemTableBytes sizes each Pebble memtable. Zero means 64 MiB: most of
	// what a node writes is short-lived (a room record rewritten per
	// message, trimmed history, a partition's Raft log entries deleted a
	// few seconds after they are applied), and a memtable that outlives
	// it flushes little and leaves little to compact. With Pebble's 4 MiB
	// default, a 3-node cluster spent a quarter of its CPU flushing and
	// compacting Raft entries that were about to be deleted. Memory is
	// taken only as it is written; the WAL replayed at start grows alike.
	MemTableBytes uint64
	// FS is the file system Pebble keeps its files on. Nil means the
	// operating system's (vfs.Default). Tests pass a fault-injecting one
	// (Pebble's vfs/errorfs) to make the real store fail as a failing disk
	// makes it fail.
	FS vfs.FS
}

// CommitObserver is told about each group commit, for metrics.
type CommitObserver interface {
	ObserveGroupCommit(batches int, bytes int, took time.Duration)
}

// PebbleStore is the local Store: one Pebble database, fsync'd group commits.
type PebbleStore struct {
	db   *pebble.DB
	opts PebbleOptions

	queue chan pendingCommit
	wg    sync.WaitGroup

	mu     sync.RWMutex // guards closed against concurrent Commit
	closed bool

	failOnce sync.Once
	failure  atomic.Pointer[error] // why the store failed; nil while it works
}

type pendingCommit struct {
	batch *Batch
	done  func(error)
}

var _ Store = (*PebbleStore)(nil)

// OpenPebble opens (creating if needed) the Pebble database in dir.
func OpenPebble(dir string, opts PebbleOptions) (*PebbleStore, error) {
	if opts.MaxGroupBytes == 0 {
		opts.MaxGroupBytes = 8 << 20
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 64 << 20
	}
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 64 << 20
	}
	cache := pebble.NewCache(opts.CacheBytes)
	defer cache.Unref() // the database holds its own reference
	s := &PebbleStore{opts: opts, queue: make(chan pendingCommit, 4096)}
	popts := &pebble.Options{Logger: fatalLogger{pebbleLogger{opts.Logger}, s.fail}, Cache: cache, MemTableSize: opts.MemTableBytes, FS: opts.FS}
	// Flushes, compactions, WAL and table lifecycles, at debug level: what
	// an operator reads next to a latency spike.
	events := pebble.MakeLoggingEventListener(pebbleLogger{opts.Logger})
	popts.EventListener = &events
	for i := range popts.Levels {
		// Objects look up keys that mostly do not exist yet (a message's
		// clientMsgId, before it is stored): a filter answers those without
		// reading and decompressing a block of every level.
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("open pebble in %s: %w", dir, err)
	}
	s.db = db
	s.wg.Add(1)
	go s.commitLoop()
	return s, nil
}

// Flush writes the memtable to a table file now (a test of a failing disk
// needs its data in files to fail a read).
func (s *PebbleStore) Flush() error { return s.db.Flush() }

// Flushes is how many memtable flushes Pebble has made since it opened.
func (s *PebbleStore) Flushes() int64 { return s.db.Metrics().Flush.Count }

func dataPrefix(obj ObjectID) []byte {
	k := make([]byte, 0, 2+len(obj))
	k = append(k, prefixData)
	k = append(k, obj[:]...)
	return append(k, 0)
}

func dataKey(obj ObjectID, key string) []byte {
	return append(dataPrefix(obj), key...)
}

func objKey(prefix byte, obj ObjectID) []byte {
	k := make([]byte, 0, 1+len(obj))
	k = append(k, prefix)
	return append(k, obj[:]...)
}

func alarmIndexKey(at time.Time, obj ObjectID) []byte {
	k := make([]byte, 0, 9+len(obj))
	k = append(k, prefixAlarmIndex)
	k = binary.BigEndian.AppendUint64(k, uint64(at.UnixNano()))
	return append(k, obj[:]...)
}

// Get implements Store.
func (s *PebbleStore) Get(obj ObjectID, key string) ([]byte, bool, error) {
	return s.get(dataKey(obj, key))
}

func (s *PebbleStore) get(k []byte) ([]byte, bool, error) {
	if err := s.readable(); err != nil {
		return nil, false, err
	}
	v, closer, err := s.db.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble get: %w", err)
	}
	out := bytes.Clone(v)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("pebble get: %w", err)
	}
	return out, true, nil
}

// Scan implements Store.
func (s *PebbleStore) Scan(obj ObjectID, opts ScanOptions, fn func(key string, value []byte) bool) error {
	if err := s.readable(); err != nil {
		return err
	}
	base := dataPrefix(obj)
	lower := append(bytes.Clone(base), opts.Prefix...)
	if opts.Start > opts.Prefix {
		lower = append(bytes.Clone(base), opts.Start...)
	}
	var upper []byte
	if opts.Prefix != "" {
		if succ, ok := prefixSuccessor(opts.Prefix); ok {
			upper = append(bytes.Clone(base), succ...)
		}
	}
	if upper == nil {
		upper = bytes.Clone(base)
		upper[len(upper)-1] = 1
	}
	if opts.End != "" {
		if e := append(bytes.Clone(base), opts.End...); bytes.Compare(e, upper) < 0 {
			upper = e
		}
	}
	if bytes.Compare(lower, upper) >= 0 {
		return nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("pebble scan: %w", err)
	}
	valid := it.First()
	next := it.Next
	if opts.Reverse {
		valid, next = it.Last(), it.Prev
	}
	for ; valid; valid = next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("pebble scan: %w", err)
		}
		if !fn(string(it.Key()[len(base):]), bytes.Clone(v)) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("pebble scan: %w", err)
	}
	return nil
}

// prefixSuccessor returns the smallest string greater than every string with
// prefix p, or false when there is none (p is all 0xff).
func prefixSuccessor(p string) (string, bool) {
	b := []byte(p)
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] < 0xff {
			b[i]++
			return string(b[:i+1]), true
		}
	}
	return "", false
}

// PrefixSuccessor is exported for layers above that merge their own view of
// a prefix range with a Scan.
func PrefixSuccessor(p string) (string, bool) { return prefixSuccessor(p) }

// Alarm implements Store.
func (s *PebbleStore) Alarm(obj ObjectID) (time.Time, bool, error) {
	v, ok, err := s.get(objKey(prefixAlarm, obj))
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	return decodeTime(v), true, nil
}

// LastWrite is when obj's latest batch was committed, if recorded.
func (s *PebbleStore) LastWrite(obj ObjectID) (time.Time, bool, error) {
	v, ok, err := s.get(objKey(prefixWritten, obj))
	if err != nil || !ok {
		return time.Time{}, false, err
	}
	return decodeTime(v), true, nil
}

// Meta implements Store.
func (s *PebbleStore) Meta(obj ObjectID) (ObjectMeta, bool, error) {
	v, ok, err := s.get(objKey(prefixMeta, obj))
	if err != nil || !ok {
		return ObjectMeta{}, false, err
	}
	var m ObjectMeta
	if err := json.Unmarshal(v, &m); err != nil {
		return ObjectMeta{}, false, fmt.Errorf("decode object meta: %w", err)
	}
	return m, true, nil
}

func encodeTime(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func decodeTime(v []byte) time.Time {
	if len(v) != 8 {
		return time.Time{}
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
}

// Commit implements Store.
func (s *PebbleStore) Commit(b *Batch, done func(error)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		done(ErrClosed)
		return
	}
	s.queue <- pendingCommit{batch: b, done: done}
}

// commitLoop is the group committer: it takes every batch queued while the
// previous fsync ran and writes them as one Pebble batch with one fsync.
func (s *PebbleStore) commitLoop() {
	defer s.wg.Done()
	group := make([]pendingCommit, 0, 256)
	for first := range s.queue {
		group = append(group[:0], first)
		size := batchSize(first.batch)
	drain:
		for size < s.opts.MaxGroupBytes {
			select {
			case p, ok := <-s.queue:
				if !ok {
					break drain
				}
				group = append(group, p)
				size += batchSize(p.batch)
			default:
				break drain
			}
		}
		start := time.Now()
		var err error
		if failed := s.Err(); failed != nil {
			err = fmt.Errorf("%w earlier: %w: %w", ErrFailed, failed, ErrNotWritten)
		} else if err = s.commitGroup(group); err != nil {
			s.fail(err) // before the group learns of it: see OnFailure
		}
		if s.opts.Metrics != nil {
			s.opts.Metrics.ObserveGroupCommit(len(group), size, time.Since(start))
		}
		for _, p := range group {
			p.done(err)
		}
	}
}

func batchSize(b *Batch) int {
	n := 64
	for _, op := range b.Ops {
		n += len(op.Key) + len(op.Value) + 8
	}
	return n
}

func (s *PebbleStore) commitGroup(group []pendingCommit) error {
	pb := s.db.NewBatch()
	defer pb.Close()
	// Alarm changes and metas written earlier in this group, which the
	// database cannot show yet.
	g := groupState{alarms: map[ObjectID]*time.Time{}, metas: map[ObjectID]ObjectMeta{}}
	for _, p := range group {
		if err := s.addBatch(pb, p.batch, &g); err != nil {
			return err
		}
	}
	if err := syncCommit(pb); err != nil {
		return fmt.Errorf("commit %d batches: %w", len(group), err)
	}
	return nil
}

// syncCommit commits pb with an fsync, returning a failed write as an
// error. Pebble does not: when it cannot write or fsync its WAL it calls
// its logger's Fatalf ("fatal commit error", pebble db.go:885), which
// fails the store and panics (fatalLogger), or it panics itself (db.go:997
// once the WAL writer holds an error; rotateWAL, db.go:2822 and 2835). That
// panic, an error, is recovered here, so the store fails in order (fail)
// rather than crash the process. Other panics (Pebble's assertions, runtime
// errors: bugs) go on.
func syncCommit(pb *pebble.Batch) (err error) {
	defer func() {
		if r := recover(); r != nil {
			perr, ok := r.(error)
			if _, bug := r.(interface{ RuntimeError() }); !ok || bug {
				panic(r)
			}
			err = perr
		}
	}()
	return pb.Commit(pebble.Sync)
}

// fail makes the store refuse every later commit, for good, and tells the
// owner (OnFailure), once, before any commit hears of it. Later batches may
// have been computed on the writes that were just lost (an object pipelines
// its events): none may land. And after a failed write or fsync the WAL's
// state is unknown: retrying cannot be trusted (PostgreSQL's "fsyncgate";
// etcd exits on a failed WAL write). What was acknowledged is in the WAL,
// which the next open replays: the way out is a restart.
func (s *PebbleStore) fail(cause error) {
	s.failOnce.Do(func() {
		s.failure.Store(&cause)
		if s.opts.Logger != nil {
			s.opts.Logger.Error("storage failed; every later commit is refused", "err", cause)
		}
		if s.opts.OnFailure != nil {
			s.opts.OnFailure(cause)
		}
	})
}

// Fail fails the store with cause, as a failed commit does (see fail). The
// Raft engine, which commits its own WriteBatches, reports their failures here,
// so that the node has one notion of "its storage failed".
func (s *PebbleStore) Fail(cause error) { s.fail(cause) }

// readable refuses reads once the store failed: Pebble makes a batch
// visible in its memtable before it learns that its WAL write or fsync
// failed, so a read could show a write that was never durable (and is gone
// after a restart).
func (s *PebbleStore) readable() error {
	if err := s.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrFailed, err)
	}
	return nil
}

// Err returns why the store failed, or nil while it works.
func (s *PebbleStore) Err() error {
	if p := s.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// groupState is what earlier batches of one group commit wrote that later
// batches of the same group must see.
type groupState struct {
	alarms map[ObjectID]*time.Time
	metas  map[ObjectID]ObjectMeta
}

func (s *PebbleStore) addBatch(pb *pebble.Batch, b *Batch, g *groupState) error {
	if b.Forget {
		return s.forget(pb, b.Object, g)
	}
	alarms := g.alarms
	obj := b.Object
	for _, op := range b.Ops {
		var err error
		switch op.Kind {
		case OpPut:
			err = pb.Set(dataKey(obj, op.Key), op.Value, nil)
		case OpDelete:
			err = pb.Delete(dataKey(obj, op.Key), nil)
		case OpDeleteAll:
			lo := dataPrefix(obj)
			hi := bytes.Clone(lo)
			hi[len(hi)-1] = 1
			err = pb.DeleteRange(lo, hi, nil)
		default:
			err = fmt.Errorf("unknown op kind %d", op.Kind)
		}
		if err != nil {
			return fmt.Errorf("batch for object %x: %w", obj[:4], err)
		}
	}
	if !b.Written.IsZero() {
		if err := pb.Set(objKey(prefixWritten, obj), binary.BigEndian.AppendUint64(nil, uint64(b.Written.UnixNano())), nil); err != nil {
			return fmt.Errorf("batch last write: %w", err)
		}
	}
	var meta ObjectMeta
	if b.Meta != nil {
		meta = *b.Meta
		g.metas[obj] = meta
		v, err := json.Marshal(meta)
		if err != nil {
			return fmt.Errorf("encode object meta: %w", err)
		}
		if err := pb.Set(objKey(prefixMeta, obj), v, nil); err != nil {
			return fmt.Errorf("batch meta: %w", err)
		}
	}
	if !b.Alarm.Set && !b.Alarm.Delete {
		return nil
	}
	// Replace the old index entry, if any.
	var old *time.Time
	if prev, ok := alarms[obj]; ok {
		old = prev
	} else {
		at, ok, err := s.Alarm(obj)
		if err != nil {
			return err
		}
		if ok {
			old = &at
		}
	}
	if old != nil {
		if err := pb.Delete(alarmIndexKey(*old, obj), nil); err != nil {
			return fmt.Errorf("batch alarm: %w", err)
		}
	}
	if b.Alarm.Delete {
		alarms[obj] = nil
		return pb.Delete(objKey(prefixAlarm, obj), nil)
	}
	if b.Meta == nil {
		if m, ok := g.metas[obj]; ok {
			meta = m
		} else {
			m, _, err := s.Meta(obj)
			if err != nil {
				return err
			}
			meta = m
		}
	}
	mv, err := json.Marshal(meta)
	if err != nil {
		return fmt.Errorf("encode object meta: %w", err)
	}
	at := b.Alarm.At
	alarms[obj] = &at
	if err := pb.Set(objKey(prefixAlarm, obj), encodeTime(at), nil); err != nil {
		return fmt.Errorf("batch alarm: %w", err)
	}
	return pb.Set(alarmIndexKey(at, obj), mv, nil)
}

// forget removes every trace of obj: data, meta, alarm and its index entry.
func (s *PebbleStore) forget(pb *pebble.Batch, obj ObjectID, g *groupState) error {
	lo := dataPrefix(obj)
	hi := bytes.Clone(lo)
	hi[len(hi)-1] = 1
	if err := pb.DeleteRange(lo, hi, nil); err != nil {
		return fmt.Errorf("forget object %x: %w", obj[:4], err)
	}
	var old *time.Time
	if prev, ok := g.alarms[obj]; ok {
		old = prev
	} else if at, ok, err := s.Alarm(obj); err != nil {
		return err
	} else if ok {
		old = &at
	}
	if old != nil {
		if err := pb.Delete(alarmIndexKey(*old, obj), nil); err != nil {
			return err
		}
	}
	g.alarms[obj] = nil
	delete(g.metas, obj)
	if err := pb.Delete(objKey(prefixAlarm, obj), nil); err != nil {
		return err
	}
	if err := pb.Delete(objKey(prefixWritten, obj), nil); err != nil {
		return err
	}
	return pb.Delete(objKey(prefixMeta, obj), nil)
}

// ObjectSummary describes one stored object, for operators.
type ObjectSummary struct {
	ID    ObjectID
	Meta  ObjectMeta
	Keys  int
	Bytes int64
	Alarm *time.Time
	// LastWrite is when the object's latest batch was committed (nil for
	// objects written before the store recorded it).
	LastWrite *time.Time
}

// ListObjects returns up to limit stored objects with IDs after after (all
// from the start when after is nil) in ID order, for which match (if not
// nil) is true. Objects are those with recorded meta.
func (s *PebbleStore) ListObjects(after *ObjectID, limit int, match func(ObjectID, ObjectMeta) bool) ([]ObjectSummary, error) {
	lower := []byte{prefixMeta}
	if after != nil {
		lower = append(objKey(prefixMeta, *after), 0)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: []byte{prefixMeta + 1}})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	defer it.Close()
	var out []ObjectSummary
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		id, ok := objectOf(it.Key())
		if !ok {
			continue
		}
		var meta ObjectMeta
		if err := json.Unmarshal(it.Value(), &meta); err != nil {
			return nil, fmt.Errorf("list objects: meta of %x: %w", id[:4], err)
		}
		if match != nil && !match(id, meta) {
			continue
		}
		sum := ObjectSummary{ID: id, Meta: meta}
		if err := s.Scan(id, ScanOptions{}, func(k string, v []byte) bool {
			sum.Keys++
			sum.Bytes += int64(len(k) + len(v))
			return true
		}); err != nil {
			return nil, err
		}
		if at, ok, err := s.Alarm(id); err != nil {
			return nil, err
		} else if ok {
			sum.Alarm = &at
		}
		if at, ok, err := s.LastWrite(id); err != nil {
			return nil, err
		} else if ok {
			sum.LastWrite = &at
		}
		out = append(out, sum)
	}
	return out, nil
}

// Alarms implements Store.
func (s *PebbleStore) Alarms(until time.Time, limit int) ([]Alarm, error) {
	if err := s.readable(); err != nil {
		return nil, err
	}
	lower := []byte{prefixAlarmIndex}
	upper := binary.BigEndian.AppendUint64([]byte{prefixAlarmIndex}, uint64(until.UnixNano())+1)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("scan alarms: %w", err)
	}
	var out []Alarm
	for valid := it.First(); valid && len(out) < limit; valid = it.Next() {
		k := it.Key()
		if len(k) != 1+8+len(ObjectID{}) {
			continue
		}
		var a Alarm
		a.At = decodeTime(k[1:9])
		copy(a.Object[:], k[9:])
		v, err := it.ValueAndErr()
		if err == nil {
			err = json.Unmarshal(v, &a.Meta)
		}
		if err != nil {
			it.Close()
			return nil, fmt.Errorf("scan alarms: %w", err)
		}
		out = append(out, a)
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("scan alarms: %w", err)
	}
	return out, nil
}

// NextAlarm implements Store.
func (s *PebbleStore) NextAlarm() (time.Time, bool, error) {
	if err := s.readable(); err != nil {
		return time.Time{}, false, err
	}
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixAlarmIndex},
		UpperBound: []byte{prefixAlarmIndex + 1},
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next alarm: %w", err)
	}
	defer it.Close()
	if !it.First() {
		return time.Time{}, false, nil
	}
	return decodeTime(it.Key()[1:9]), true, nil
}

// Close implements Store: it waits for queued commits, then closes Pebble.
func (s *PebbleStore) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close pebble: %w", err)
	}
	return nil
}

// pebbleLogger routes Pebble's log lines to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	if p.l != nil {
		p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error(msg, "component", "pebble", "fatal", true)
	}
	panic(msg)
}

// fatalLogger is the logger Pebble runs with. Pebble calls Fatalf when it
// cannot go on, above all when a WAL write or fsync failed (pebble db.go:885,
// a full disk among others), and Fatalf must not return: Pebble would then
// treat the failed commit as done. It fails the store (one error line with
// the cause, OnFailure), then panics. On the goroutine of a commit,
// syncCommit recovers the panic into the commit's error. A Fatalf on one of
// Pebble's own goroutines (a MANIFEST write after a flush or compaction,
// version_set.go:671) cannot be recovered: the process crashes (exit 2),
// still fail-stop, after the failure was reported.
type fatalLogger struct {
	pebbleLogger
	fail func(error)
}

func (f fatalLogger) Fatalf(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	f.fail(err)
	panic(err)
}

// batchWriter adds Batches to a Pebble batch owned by the caller. A
// replicated store uses it to apply committed entries in the same atomic,
// fsync'd Pebble batch as its Raft log writes, with the same key layout and
// alarm index as the local store.
type batchWriter struct {
	s  *PebbleStore
	pb *pebble.Batch
	g  groupState
}

// newBatchWriter returns a writer that adds to pb. Batches added earlier to
// the same writer are seen by later ones (alarm and meta replacement).
func (s *PebbleStore) newBatchWriter(pb *pebble.Batch) *batchWriter {
	return &batchWriter{s: s, pb: pb, g: groupState{alarms: map[ObjectID]*time.Time{}, metas: map[ObjectID]ObjectMeta{}}}
}

// Add writes b into the Pebble batch.
func (w *batchWriter) Add(b *Batch) error { return w.s.addBatch(w.pb, b, &w.g) }

// objectOf returns the object a raw key of this store belongs to, if any.
func objectOf(key []byte) (ObjectID, bool) {
	var id ObjectID
	if len(key) == 0 {
		return id, false
	}
	switch key[0] {
	case prefixData, prefixMeta, prefixAlarm, prefixWritten:
		if len(key) < 1+len(id) {
			return id, false
		}
		copy(id[:], key[1:])
	case prefixAlarmIndex:
		if len(key) != 1+8+len(id) {
			return id, false
		}
		copy(id[:], key[9:])
	default:
		return id, false
	}
	return id, true
}

// objectPrefixes are the key ranges that hold objects' state.
var objectPrefixes = []byte{prefixData, prefixMeta, prefixAlarm, prefixAlarmIndex, prefixWritten}

// ExportObjects calls fn with every raw key and value (data, meta, alarm
// and alarm index) of the objects for which match is true. A replicated
// store streams a partition's state this way (Raft snapshots). It reads one
// consistent Pebble snapshot.
func (s *PebbleStore) ExportObjects(match func(ObjectID) bool, fn func(key, value []byte) error) error {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	for _, prefix := range objectPrefixes {
		it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: []byte{prefix + 1}})
		if err != nil {
			return fmt.Errorf("export objects: %w", err)
		}
		var lastID ObjectID
		lastOK, lastMatch := false, false
		for valid := it.First(); valid; valid = it.Next() {
			id, ok := objectOf(it.Key())
			if !ok {
				continue
			}
			if !lastOK || id != lastID {
				lastID, lastOK, lastMatch = id, true, match(id)
			}
			if !lastMatch {
				continue
			}
			v, err := it.ValueAndErr()
			if err == nil {
				err = fn(it.Key(), v)
			}
			if err != nil {
				it.Close()
				return fmt.Errorf("export objects: %w", err)
			}
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("export objects: %w", err)
		}
	}
	return nil
}

// Checkpoint writes a consistent, openable copy of the whole database into
// dir (which must not exist), for backups. Files are hard-linked where the
// file system allows, so it is cheap even for a large store.
func (s *PebbleStore) Checkpoint(dir string) error {
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("checkpoint into %s: %w", dir, err)
	}
	return nil
}

// ObjectExport is one object's whole durable state at one instant: what a
// backup records and a restore writes back.
type ObjectExport struct {
	ID   ObjectID
	Meta ObjectMeta
	// Data holds the object's keys in key order.
	Data []KV
	// Alarm is the pending alarm, if any.
	Alarm *time.Time
	// LastWrite is when the object last committed a batch, if recorded.
	LastWrite *time.Time
}

// KV is one stored key and its value.
type KV struct {
	Key   string
	Value []byte
}

// ExportObject reads obj's meta, data, alarm and last write from one
// consistent snapshot. ok is false for an object with no recorded meta
// (never written, or forgotten).
func (s *PebbleStore) ExportObject(obj ObjectID) (exp ObjectExport, ok bool, err error) {
	snap := s.db.NewSnapshot()
	defer snap.Close()
	get := func(k []byte) ([]byte, bool, error) {
		v, closer, err := snap.Get(k)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("export object %x: %w", obj[:4], err)
		}
		defer closer.Close()
		return bytes.Clone(v), true, nil
	}
	exp.ID = obj
	v, ok, err := get(objKey(prefixMeta, obj))
	if err != nil || !ok {
		return exp, false, err
	}
	if err := json.Unmarshal(v, &exp.Meta); err != nil {
		return exp, false, fmt.Errorf("export object %x: meta: %w", obj[:4], err)
	}
	for _, t := range []struct {
		prefix byte
		into   **time.Time
	}{{prefixAlarm, &exp.Alarm}, {prefixWritten, &exp.LastWrite}} {
		v, ok, err := get(objKey(t.prefix, obj))
		if err != nil {
			return exp, false, err
		}
		if ok {
			at := decodeTime(v)
			*t.into = &at
		}
	}
	lo := dataPrefix(obj)
	hi := bytes.Clone(lo)
	hi[len(hi)-1] = 1
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return exp, false, fmt.Errorf("export object %x: %w", obj[:4], err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return exp, false, fmt.Errorf("export object %x: %w", obj[:4], err)
		}
		exp.Data = append(exp.Data, KV{Key: string(it.Key()[len(lo):]), Value: bytes.Clone(v)})
	}
	return exp, true, nil
}

// RestoreBatches turns an export back into batches that replace whatever
// the object holds with exactly the exported state: the first clears the
// object's data and sets its meta and alarm; the data follows in batches
// of about maxBytes each, so that no single batch (one Raft proposal, in a
// cluster) grows with the object. written stamps each batch.
func RestoreBatches(exp ObjectExport, maxBytes int, written time.Time) []*Batch {
	meta := exp.Meta
	first := &Batch{Object: exp.ID, Meta: &meta, Ops: []Op{{Kind: OpDeleteAll}}, Written: written}
	if exp.Alarm != nil {
		first.Alarm = AlarmChange{Set: true, At: *exp.Alarm}
	} else {
		first.Alarm = AlarmChange{Delete: true}
	}
	out := []*Batch{first}
	cur, size := first, 0
	for _, kv := range exp.Data {
		if size > 0 && size+len(kv.Key)+len(kv.Value) > maxBytes {
			cur = &Batch{Object: exp.ID, Written: written}
			out = append(out, cur)
			size = 0
		}
		cur.Ops = append(cur.Ops, Op{Kind: OpPut, Key: kv.Key, Value: kv.Value})
		size += len(kv.Key) + len(kv.Value)
	}
	return out
}
