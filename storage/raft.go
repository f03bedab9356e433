package storage

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// A replicated node keeps each partition's Raft log and state in its one
// Pebble database beside the objects, so that the log, the state and the
// data the log applies commit in one fsync'd batch. This store owns that
// keyspace as it owns the objects'; the cluster's Raft engine reads and
// writes it through the methods below and WriteBatch, never through Pebble.
//
//	'r' partition(2) 'e' index(8)  a log entry (the engine's encoding)
//	'r' partition(2) suffix        the partition's RaftKey values
//	"\x00cluster-identity"         the node a data directory belongs to
const prefixRaft = 'r'

// RaftKey names one of a partition's Raft values; the engine chooses their
// encodings.
type RaftKey byte

// A partition's Raft values.
const (
	RaftHardState RaftKey = 'h' // term, vote, commit
	RaftConfState RaftKey = 'c' // membership as of the applied index
	RaftApplied   RaftKey = 'i' // the applied index
	RaftTruncated RaftKey = 't' // index and term of the entry before the log
)

const suffixRaftEntry = 'e'

func raftKey(part int, suffix byte) []byte {
	return []byte{prefixRaft, byte(part >> 8), byte(part), suffix}
}

func raftEntryKey(part int, index uint64) []byte {
	return binary.BigEndian.AppendUint64(raftKey(part, suffixRaftEntry), index)
}

var identityKey = []byte("\x00cluster-identity")

// Raft returns a partition's Raft value k.
func (s *PebbleStore) Raft(part int, k RaftKey) ([]byte, bool, error) {
	return s.getRaw(raftKey(part, byte(k)))
}

// RaftEntry returns a partition's log entry at index.
func (s *PebbleStore) RaftEntry(part int, index uint64) ([]byte, bool, error) {
	return s.getRaw(raftEntryKey(part, index))
}

// LastRaftEntry returns a partition's last log entry, if its log has one.
func (s *PebbleStore) LastRaftEntry(part int) ([]byte, bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: raftKey(part, suffixRaftEntry), UpperBound: raftKey(part, suffixRaftEntry+1)})
	if err != nil {
		return nil, false, fmt.Errorf("partition %d log: %w", part, err)
	}
	var out []byte
	found := it.Last()
	if found {
		out = append([]byte(nil), it.Value()...)
	}
	if err := it.Close(); err != nil {
		return nil, false, fmt.Errorf("partition %d log: %w", part, err)
	}
	return out, found, nil
}

// ScanRaftEntries calls fn with each of a partition's log entries at
// indexes lo..hi-1 that exist, in order, until fn returns false or an
// error. The value is valid only during the call.
func (s *PebbleStore) ScanRaftEntries(part int, lo, hi uint64, fn func(value []byte) (more bool, err error)) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: raftEntryKey(part, lo), UpperBound: raftEntryKey(part, hi)})
	if err != nil {
		return fmt.Errorf("partition %d entries: %w", part, err)
	}
	defer it.Close()
	for valid := it.First(); valid; valid = it.Next() {
		more, err := fn(it.Value())
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
}

// NodeIdentity returns what SetNodeIdentity recorded: which node (and
// cluster shape) the data directory belongs to.
func (s *PebbleStore) NodeIdentity() ([]byte, bool, error) { return s.getRaw(identityKey) }

// SetNodeIdentity records, durably, which node the data directory belongs
// to.
func (s *PebbleStore) SetNodeIdentity(v []byte) error { return s.db.Set(identityKey, v, pebble.Sync) }

// getRaw reads one raw key.
func (s *PebbleStore) getRaw(key []byte) ([]byte, bool, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("pebble get: %w", err)
	}
	out := append([]byte(nil), v...)
	closer.Close()
	return out, true, nil
}

// WriteBatch is one atomic write of the node's database for the Raft
// engine: the object batches a Ready applies, a snapshot's replacement of
// a partition's objects, and Raft log entries and values, committed
// together (fsync'd or not).
type WriteBatch struct {
	b       *pebble.Batch
	objects *batchWriter
	s       *PebbleStore
}

// NewWriteBatch starts a WriteBatch; Close it when done.
func (s *PebbleStore) NewWriteBatch() *WriteBatch {
	b := s.db.NewBatch()
	return &WriteBatch{b: b, objects: s.newBatchWriter(b), s: s}
}

// Apply adds an object's batch, as Commit would write it.
func (w *WriteBatch) Apply(b *Batch) error { return w.objects.Add(b) }

// SetRaft sets a partition's Raft value k.
func (w *WriteBatch) SetRaft(part int, k RaftKey, v []byte) error {
	return w.b.Set(raftKey(part, byte(k)), v, nil)
}

// SetRaftEntry sets a partition's log entry at index.
func (w *WriteBatch) SetRaftEntry(part int, index uint64, v []byte) error {
	return w.b.Set(raftEntryKey(part, index), v, nil)
}

// DeleteRaftEntries deletes a partition's log entries from..to-1.
func (w *WriteBatch) DeleteRaftEntries(part int, from, to uint64) error {
	return w.b.DeleteRange(raftEntryKey(part, from), raftEntryKey(part, to), nil)
}

// DeleteRaftLog deletes a partition's whole log.
func (w *WriteBatch) DeleteRaftLog(part int) error {
	return w.b.DeleteRange(raftEntryKey(part, 0), raftKey(part, suffixRaftEntry+1), nil)
}

// DeleteObjects deletes every key of the objects for which match is true
// (a partition's state, replaced by a snapshot).
func (w *WriteBatch) DeleteObjects(match func(ObjectID) bool) error {
	return w.s.ExportObjects(match, func(key, _ []byte) error { return w.b.Delete(key, nil) })
}

// ImportObjectKey sets a raw key exported by ExportObjects. It refuses keys
// outside the objects' ranges, so a snapshot cannot overwrite anything else
// in the database (the Raft state above all).
func (w *WriteBatch) ImportObjectKey(key, value []byte) error {
	if _, ok := objectOf(key); !ok {
		return fmt.Errorf("import: %q is not an object key", key)
	}
	return w.b.Set(key, value, nil)
}

// Commit writes the batch, waiting for its fsync when sync is set.
func (w *WriteBatch) Commit(sync bool) error {
	opt := pebble.NoSync
	if sync {
		opt = pebble.Sync
	}
	return w.b.Commit(opt)
}

// Close releases the batch.
func (w *WriteBatch) Close() error { return w.b.Close() }
