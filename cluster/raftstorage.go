package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Raft state of a partition lives in the node's Pebble database beside the
// object data, under 'r' partition(2 bytes) and a suffix:
//
//	'e' index(8)  log entry (protobuf)
//	'h'           HardState
//	'c'           ConfState as of the applied index
//	'i'           applied index (8 bytes)
//	't'           truncated state: index(8) term(8) of the entry before the log
const prefixRaft = 'r'

const (
	suffixEntry     = 'e'
	suffixHardState = 'h'
	suffixConfState = 'c'
	suffixApplied   = 'i'
	suffixTruncated = 't'
)

func raftKey(part int, suffix byte) []byte {
	return []byte{prefixRaft, byte(part >> 8), byte(part), suffix}
}

func entryKey(part int, index uint64) []byte {
	return binary.BigEndian.AppendUint64(raftKey(part, suffixEntry), index)
}

// raftStorage is raft.Storage over Pebble for one partition. Raft reads it
// only from the engine goroutine, which is also the only writer, so the
// cached fields need no lock. Writes go through the engine's shared Pebble
// batch; the cache is updated once that batch is committed.
type raftStorage struct {
	db   *pebble.DB
	part int

	hard       *pb.HardState
	conf       *pb.ConfState
	applied    uint64
	truncIndex uint64
	truncTerm  uint64
	last       uint64
	lastTerm   uint64
	// snapshot builds a snapshot of the partition at the applied index (set
	// by the engine, which knows which objects belong to the partition).
	snapshot func() (*pb.Snapshot, error)
}

var _ raft.Storage = (*raftStorage)(nil)

// loadRaftStorage reads a partition's Raft state; ok is false when the node
// holds none for it.
func loadRaftStorage(db *pebble.DB, part int) (*raftStorage, bool, error) {
	s := &raftStorage{db: db, part: part, hard: &pb.HardState{}, conf: &pb.ConfState{}}
	found := false
	if v, ok, err := dbGet(db, raftKey(part, suffixHardState)); err != nil {
		return nil, false, err
	} else if ok {
		found = true
		if err := proto.Unmarshal(v, s.hard); err != nil {
			return nil, false, fmt.Errorf("partition %d hard state: %w", part, err)
		}
	}
	if v, ok, err := dbGet(db, raftKey(part, suffixConfState)); err != nil {
		return nil, false, err
	} else if ok {
		found = true
		if err := proto.Unmarshal(v, s.conf); err != nil {
			return nil, false, fmt.Errorf("partition %d conf state: %w", part, err)
		}
	}
	if v, ok, err := dbGet(db, raftKey(part, suffixApplied)); err != nil {
		return nil, false, err
	} else if ok && len(v) == 8 {
		s.applied = binary.BigEndian.Uint64(v)
	}
	if v, ok, err := dbGet(db, raftKey(part, suffixTruncated)); err != nil {
		return nil, false, err
	} else if ok && len(v) == 16 {
		s.truncIndex, s.truncTerm = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	}
	s.last, s.lastTerm = s.truncIndex, s.truncTerm
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: raftKey(part, suffixEntry), UpperBound: raftKey(part, suffixEntry+1)})
	if err != nil {
		return nil, false, fmt.Errorf("partition %d log: %w", part, err)
	}
	if it.Last() {
		found = true
		var e pb.Entry
		if err := proto.Unmarshal(it.Value(), &e); err != nil {
			it.Close()
			return nil, false, fmt.Errorf("partition %d last entry: %w", part, err)
		}
		s.last, s.lastTerm = e.GetIndex(), e.GetTerm()
	}
	if err := it.Close(); err != nil {
		return nil, false, fmt.Errorf("partition %d log: %w", part, err)
	}
	return s, found, nil
}

func dbGet(db *pebble.DB, key []byte) ([]byte, bool, error) {
	v, closer, err := db.Get(key)
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

// InitialState implements raft.Storage.
func (s *raftStorage) InitialState() (*pb.HardState, *pb.ConfState, error) {
	return proto.Clone(s.hard).(*pb.HardState), proto.Clone(s.conf).(*pb.ConfState), nil
}

// Entries implements raft.Storage.
func (s *raftStorage) Entries(lo, hi, maxSize uint64) ([]*pb.Entry, error) {
	if lo <= s.truncIndex {
		return nil, raft.ErrCompacted
	}
	if hi > s.last+1 {
		return nil, fmt.Errorf("partition %d entries [%d,%d) beyond last %d: %w", s.part, lo, hi, s.last, raft.ErrUnavailable)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: entryKey(s.part, lo), UpperBound: entryKey(s.part, hi)})
	if err != nil {
		return nil, fmt.Errorf("partition %d entries: %w", s.part, err)
	}
	defer it.Close()
	var out []*pb.Entry
	var size uint64
	next := lo
	for valid := it.First(); valid; valid = it.Next() {
		e := &pb.Entry{}
		if err := proto.Unmarshal(it.Value(), e); err != nil {
			return nil, fmt.Errorf("partition %d entry: %w", s.part, err)
		}
		if e.GetIndex() != next {
			return nil, fmt.Errorf("partition %d log gap at %d: %w", s.part, next, raft.ErrUnavailable)
		}
		size += uint64(proto.Size(e))
		if len(out) > 0 && size > maxSize {
			break
		}
		out = append(out, e)
		next++
	}
	if len(out) == 0 && lo < hi {
		return nil, fmt.Errorf("partition %d entries [%d,%d) missing: %w", s.part, lo, hi, raft.ErrUnavailable)
	}
	return out, nil
}

// Term implements raft.Storage.
func (s *raftStorage) Term(i uint64) (uint64, error) {
	switch {
	case i == s.truncIndex:
		return s.truncTerm, nil
	case i < s.truncIndex:
		return 0, raft.ErrCompacted
	case i > s.last:
		return 0, raft.ErrUnavailable
	case i == s.last:
		return s.lastTerm, nil
	}
	v, ok, err := dbGet(s.db, entryKey(s.part, i))
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, raft.ErrUnavailable
	}
	var e pb.Entry
	if err := proto.Unmarshal(v, &e); err != nil {
		return 0, fmt.Errorf("partition %d entry %d: %w", s.part, i, err)
	}
	return e.GetTerm(), nil
}

// LastIndex implements raft.Storage.
func (s *raftStorage) LastIndex() (uint64, error) { return s.last, nil }

// FirstIndex implements raft.Storage.
func (s *raftStorage) FirstIndex() (uint64, error) { return s.truncIndex + 1, nil }

// Snapshot implements raft.Storage: raft asks for one when a follower needs
// entries the log no longer has. It is built on demand from the applied
// state (Raft calls this on the engine goroutine, where applied state and
// the database agree).
func (s *raftStorage) Snapshot() (*pb.Snapshot, error) {
	if s.snapshot == nil {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return s.snapshot()
}

// appendEntries writes entries into the shared batch, removing any old tail
// they replace, and returns the cache update to apply once it commits.
func (s *raftStorage) appendEntries(b *pebble.Batch, ents []*pb.Entry) (last, lastTerm uint64, err error) {
	if len(ents) == 0 {
		return s.last, s.lastTerm, nil
	}
	for _, e := range ents {
		v, err := proto.Marshal(e)
		if err != nil {
			return 0, 0, fmt.Errorf("encode entry: %w", err)
		}
		if err := b.Set(entryKey(s.part, e.GetIndex()), v, nil); err != nil {
			return 0, 0, err
		}
	}
	le := ents[len(ents)-1]
	if le.GetIndex() < s.last {
		if err := b.DeleteRange(entryKey(s.part, le.GetIndex()+1), entryKey(s.part, s.last+1), nil); err != nil {
			return 0, 0, err
		}
	}
	return le.GetIndex(), le.GetTerm(), nil
}

func putProto(b *pebble.Batch, key []byte, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %T: %w", m, err)
	}
	return b.Set(key, v, nil)
}
