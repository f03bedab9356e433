package cluster

import (
	"encoding/binary"
	"fmt"

	"github.com/holocron-run/holocron/storage"
	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// raftStorage is raft.Storage for one partition over the node's store,
// which keeps the log and the partition's Raft values (storage.RaftKey)
// beside the objects; entries and values are protobuf. Raft reads it only
// from the engine goroutine, which is also the only writer, so the cached
// fields need no lock. Writes go through the engine's shared
// storage.WriteBatch; the cache is updated once that batch is committed.
type raftStorage struct {
	store *storage.PebbleStore
	part  int

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
func loadRaftStorage(store *storage.PebbleStore, part int) (*raftStorage, bool, error) {
	s := &raftStorage{store: store, part: part, hard: &pb.HardState{}, conf: &pb.ConfState{}}
	found := false
	if v, ok, err := store.Raft(part, storage.RaftHardState); err != nil {
		return nil, false, err
	} else if ok {
		found = true
		if err := proto.Unmarshal(v, s.hard); err != nil {
			return nil, false, fmt.Errorf("partition %d hard state: %w", part, err)
		}
	}
	if v, ok, err := store.Raft(part, storage.RaftConfState); err != nil {
		return nil, false, err
	} else if ok {
		found = true
		if err := proto.Unmarshal(v, s.conf); err != nil {
			return nil, false, fmt.Errorf("partition %d conf state: %w", part, err)
		}
	}
	if v, ok, err := store.Raft(part, storage.RaftApplied); err != nil {
		return nil, false, err
	} else if ok && len(v) == 8 {
		s.applied = binary.BigEndian.Uint64(v)
	}
	if v, ok, err := store.Raft(part, storage.RaftTruncated); err != nil {
		return nil, false, err
	} else if ok && len(v) == 16 {
		s.truncIndex, s.truncTerm = binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
	}
	s.last, s.lastTerm = s.truncIndex, s.truncTerm
	if v, ok, err := store.LastRaftEntry(part); err != nil {
		return nil, false, err
	} else if ok {
		found = true
		var e pb.Entry
		if err := proto.Unmarshal(v, &e); err != nil {
			return nil, false, fmt.Errorf("partition %d last entry: %w", part, err)
		}
		s.last, s.lastTerm = e.GetIndex(), e.GetTerm()
	}
	return s, found, nil
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
	var out []*pb.Entry
	var size uint64
	next := lo
	err := s.store.ScanRaftEntries(s.part, lo, hi, func(v []byte) (bool, error) {
		e := &pb.Entry{}
		if err := proto.Unmarshal(v, e); err != nil {
			return false, fmt.Errorf("partition %d entry: %w", s.part, err)
		}
		if e.GetIndex() != next {
			return false, fmt.Errorf("partition %d log gap at %d: %w", s.part, next, raft.ErrUnavailable)
		}
		size += uint64(proto.Size(e))
		if len(out) > 0 && size > maxSize {
			return false, nil
		}
		out = append(out, e)
		next++
		return true, nil
	})
	if err != nil {
		return nil, err
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
	v, ok, err := s.store.RaftEntry(s.part, i)
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
func (s *raftStorage) appendEntries(b *storage.WriteBatch, ents []*pb.Entry) (last, lastTerm uint64, err error) {
	if len(ents) == 0 {
		return s.last, s.lastTerm, nil
	}
	for _, e := range ents {
		v, err := proto.Marshal(e)
		if err != nil {
			return 0, 0, fmt.Errorf("encode entry: %w", err)
		}
		if err := b.SetRaftEntry(s.part, e.GetIndex(), v); err != nil {
			return 0, 0, err
		}
	}
	le := ents[len(ents)-1]
	if le.GetIndex() < s.last {
		if err := b.DeleteRaftEntries(s.part, le.GetIndex()+1, s.last+1); err != nil {
			return 0, 0, err
		}
	}
	return le.GetIndex(), le.GetTerm(), nil
}

// putProto sets a partition's Raft value k to m.
func putProto(b *storage.WriteBatch, part int, k storage.RaftKey, m proto.Message) error {
	v, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %T: %w", m, err)
	}
	return b.SetRaft(part, k, v)
}

// truncatedValue encodes storage.RaftTruncated: the index and term of the
// entry before the log.
func truncatedValue(index, term uint64) []byte {
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, index), term)
}
