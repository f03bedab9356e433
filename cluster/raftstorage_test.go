package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/holocron-run/holocron/storage"
)

func openTestStore(t *testing.T, dir string) *storage.PebbleStore {
	t.Helper()
	s, err := storage.OpenPebble(dir, storage.PebbleOptions{})
	if err != nil {
		t.Fatalf("OpenPebble: %v", err)
	}
	return s
}

// newRaftStorage returns the empty storage of a partition, as the engine
// creates it for a new group.
func newRaftStorage(store *storage.PebbleStore, part int) *raftStorage {
	return &raftStorage{store: store, part: part, hard: &pb.HardState{}, conf: &pb.ConfState{}}
}

func ent(index, term uint64) *pb.Entry {
	return &pb.Entry{
		Index: proto.Uint64(index),
		Term:  proto.Uint64(term),
		Type:  pb.EntryType_EntryNormal.Enum(),
		Data:  fmt.Appendf(nil, "entry %d of term %d", index, term),
	}
}

// persistReady writes what one Ready of a group changes the way
// Engine.processReady does: entries, hard state, conf state and applied
// index into one Pebble batch, committed with fsync; then the cache.
func persistReady(t *testing.T, s *raftStorage, ents []*pb.Entry, hs *pb.HardState, cs *pb.ConfState, applied uint64) {
	t.Helper()
	b := s.store.NewWriteBatch()
	defer b.Close()
	last, term, err := s.appendEntries(b, ents)
	if err != nil {
		t.Fatalf("appendEntries: %v", err)
	}
	if hs != nil {
		if err := putProto(b, s.part, storage.RaftHardState, hs); err != nil {
			t.Fatal(err)
		}
	}
	if cs != nil {
		if err := putProto(b, s.part, storage.RaftConfState, cs); err != nil {
			t.Fatal(err)
		}
	}
	if applied != s.applied {
		if err := b.SetRaft(s.part, storage.RaftApplied, binary.BigEndian.AppendUint64(nil, applied)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(true); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if hs != nil {
		s.hard = proto.Clone(hs).(*pb.HardState)
	}
	if cs != nil {
		s.conf = cs
	}
	s.last, s.lastTerm = last, term
	s.applied = applied
}

func entryIDs(ents []*pb.Entry) [][2]uint64 {
	var out [][2]uint64
	for _, e := range ents {
		out = append(out, [2]uint64{e.GetIndex(), e.GetTerm()})
	}
	return out
}

func checkEntries(t *testing.T, s *raftStorage, lo, hi uint64, want []*pb.Entry) {
	t.Helper()
	got, err := s.Entries(lo, hi, 1<<30)
	if err != nil {
		t.Fatalf("Entries(%d, %d): %v", lo, hi, err)
	}
	if len(got) != len(want) {
		t.Fatalf("Entries(%d, %d) = %v, want %v", lo, hi, entryIDs(got), entryIDs(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("Entries(%d, %d)[%d] = %v, want %v", lo, hi, i, got[i], want[i])
		}
	}
}

func TestRaftStorageEntriesAndTerm(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	defer store.Close()
	s := newRaftStorage(store, 3)
	if li, _ := s.LastIndex(); li != 0 {
		t.Fatalf("empty: LastIndex = %d, want 0", li)
	}
	if fi, _ := s.FirstIndex(); fi != 1 {
		t.Fatalf("empty: FirstIndex = %d, want 1", fi)
	}

	ents := []*pb.Entry{ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3)}
	// Two Readys: entries arrive in pieces.
	persistReady(t, s, ents[:2], &pb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(1)}, nil, 0)
	persistReady(t, s, ents[2:], &pb.HardState{Term: proto.Uint64(3), Vote: proto.Uint64(7), Commit: proto.Uint64(4)}, nil, 0)

	if li, _ := s.LastIndex(); li != 5 {
		t.Errorf("LastIndex = %d, want 5", li)
	}
	if fi, _ := s.FirstIndex(); fi != 1 {
		t.Errorf("FirstIndex = %d, want 1", fi)
	}
	for _, tt := range []struct {
		lo, hi uint64
		want   []*pb.Entry
	}{
		{1, 6, ents},
		{2, 4, ents[1:3]},
		{5, 6, ents[4:]},
		{3, 3, nil},
	} {
		checkEntries(t, s, tt.lo, tt.hi, tt.want)
	}

	for _, tt := range []struct {
		index, term uint64
		err         error
	}{
		{0, 0, nil}, // the dummy entry before the log
		{1, 1, nil},
		{2, 1, nil},
		{3, 2, nil},
		{4, 2, nil},
		{5, 3, nil},
		{6, 0, raft.ErrUnavailable},
		{100, 0, raft.ErrUnavailable},
	} {
		term, err := s.Term(tt.index)
		if !errors.Is(err, tt.err) || (err == nil && term != tt.term) {
			t.Errorf("Term(%d) = %d, %v; want %d, %v", tt.index, term, err, tt.term, tt.err)
		}
	}

	// Partitions share the database but not their logs.
	other := newRaftStorage(store, 4)
	persistReady(t, other, []*pb.Entry{ent(1, 9)}, nil, nil, 0)
	checkEntries(t, s, 1, 6, ents)
	checkEntries(t, other, 1, 2, []*pb.Entry{ent(1, 9)})
	if _, err := other.Entries(1, 3, 1<<30); !errors.Is(err, raft.ErrUnavailable) {
		t.Errorf("partition 4: Entries(1, 3) err = %v, want ErrUnavailable", err)
	}
}

func TestRaftStorageEntriesMaxSize(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	defer store.Close()
	s := newRaftStorage(store, 0)
	ents := []*pb.Entry{ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)}
	persistReady(t, s, ents, nil, nil, 0)
	size := uint64(proto.Size(ents[0])) // all entries are the same size
	for _, tt := range []struct {
		maxSize uint64
		want    int
	}{
		{0, 1}, // at least one entry, however small the limit
		{1, 1},
		{size - 1, 1},
		{size, 1},
		{2*size - 1, 1},
		{2 * size, 2},
		{3*size + 1, 3},
		{4 * size, 4},
		{noLimit, 4},
	} {
		got, err := s.Entries(1, 5, tt.maxSize)
		if err != nil {
			t.Fatalf("Entries(1, 5, %d): %v", tt.maxSize, err)
		}
		if len(got) != tt.want {
			t.Errorf("Entries(1, 5, %d) returned %d entries, want %d", tt.maxSize, len(got), tt.want)
		}
		for i, e := range got {
			if !proto.Equal(e, ents[i]) {
				t.Errorf("Entries(1, 5, %d)[%d] = %v, want %v", tt.maxSize, i, e, ents[i])
			}
		}
	}
}

func TestRaftStorageOverwriteTail(t *testing.T) {
	tests := []struct {
		name    string
		replace []*pb.Entry
		want    []*pb.Entry // the whole log afterwards
	}{{
		name:    "shorter",
		replace: []*pb.Entry{ent(3, 4)},
		want:    []*pb.Entry{ent(1, 1), ent(2, 1), ent(3, 4)},
	}, {
		name:    "same length",
		replace: []*pb.Entry{ent(4, 4), ent(5, 4)},
		want:    []*pb.Entry{ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 4), ent(5, 4)},
	}, {
		name:    "longer",
		replace: []*pb.Entry{ent(2, 4), ent(3, 4), ent(4, 4), ent(5, 4), ent(6, 4), ent(7, 4)},
		want:    []*pb.Entry{ent(1, 1), ent(2, 4), ent(3, 4), ent(4, 4), ent(5, 4), ent(6, 4), ent(7, 4)},
	}, {
		name:    "from the start",
		replace: []*pb.Entry{ent(1, 5)},
		want:    []*pb.Entry{ent(1, 5)},
	}, {
		name:    "append",
		replace: []*pb.Entry{ent(6, 3)},
		want:    []*pb.Entry{ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3), ent(6, 3)},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			store := openTestStore(t, dir)
			s := newRaftStorage(store, 1)
			persistReady(t, s, []*pb.Entry{ent(1, 1), ent(2, 1), ent(3, 2), ent(4, 2), ent(5, 3)}, nil, nil, 0)
			persistReady(t, s, tt.replace, nil, nil, 0)

			check := func(s *raftStorage, when string) {
				t.Helper()
				last := tt.want[len(tt.want)-1]
				if li, _ := s.LastIndex(); li != last.GetIndex() {
					t.Fatalf("%s: LastIndex = %d, want %d", when, li, last.GetIndex())
				}
				if term, err := s.Term(last.GetIndex()); err != nil || term != last.GetTerm() {
					t.Fatalf("%s: Term(%d) = %d, %v; want %d", when, last.GetIndex(), term, err, last.GetTerm())
				}
				checkEntries(t, s, 1, last.GetIndex()+1, tt.want)
				for _, e := range tt.want {
					if term, err := s.Term(e.GetIndex()); err != nil || term != e.GetTerm() {
						t.Fatalf("%s: Term(%d) = %d, %v; want %d", when, e.GetIndex(), term, err, e.GetTerm())
					}
				}
				if _, err := s.Term(last.GetIndex() + 1); !errors.Is(err, raft.ErrUnavailable) {
					t.Fatalf("%s: Term(%d) err = %v, want ErrUnavailable", when, last.GetIndex()+1, err)
				}
				if _, err := s.Entries(1, last.GetIndex()+2, noLimit); !errors.Is(err, raft.ErrUnavailable) {
					t.Fatalf("%s: Entries beyond the last index: err = %v, want ErrUnavailable", when, err)
				}
				// The old tail is gone from the database, not just hidden
				// by the cached last index.
				for i := last.GetIndex() + 1; i <= 10; i++ {
					if _, ok, err := s.store.RaftEntry(1, i); err != nil || ok {
						t.Fatalf("%s: entry %d still stored (ok=%v, err=%v)", when, i, ok, err)
					}
				}
			}
			check(s, "after overwrite")

			// A restarted node finds the same log.
			if err := store.Close(); err != nil {
				t.Fatal(err)
			}
			store = openTestStore(t, dir)
			defer store.Close()
			s2, ok, err := loadRaftStorage(store, 1)
			if err != nil || !ok {
				t.Fatalf("loadRaftStorage = %v, %v", ok, err)
			}
			check(s2, "after reopening")
		})
	}
}

func TestRaftStorageCompactedAndUnavailable(t *testing.T) {
	store := openTestStore(t, t.TempDir())
	defer store.Close()
	db := store
	// A log truncated after index 10 (term 2) that holds 11..13.
	const part = 2
	b := store.NewWriteBatch()
	if err := b.SetRaft(part, storage.RaftTruncated, truncatedValue(10, 2)); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(true); err != nil {
		t.Fatal(err)
	}
	b.Close()
	s := newRaftStorage(db, part)
	s.truncIndex, s.truncTerm, s.last, s.lastTerm = 10, 2, 10, 2
	persistReady(t, s, []*pb.Entry{ent(11, 2), ent(12, 3), ent(13, 3)}, nil, nil, 0)

	for _, s := range []*raftStorage{s, mustLoad(t, db, part)} {
		if fi, _ := s.FirstIndex(); fi != 11 {
			t.Errorf("FirstIndex = %d, want 11", fi)
		}
		if li, _ := s.LastIndex(); li != 13 {
			t.Errorf("LastIndex = %d, want 13", li)
		}
		for _, tt := range []struct {
			lo, hi uint64
			err    error
			n      int
		}{
			{11, 14, nil, 3},
			{12, 13, nil, 1},
			{10, 12, raft.ErrCompacted, 0},
			{1, 12, raft.ErrCompacted, 0},
			{11, 15, raft.ErrUnavailable, 0},
			{14, 16, raft.ErrUnavailable, 0},
		} {
			got, err := s.Entries(tt.lo, tt.hi, noLimit)
			if !errors.Is(err, tt.err) || len(got) != tt.n {
				t.Errorf("Entries(%d, %d) = %d entries, %v; want %d, %v", tt.lo, tt.hi, len(got), err, tt.n, tt.err)
			}
		}
		for _, tt := range []struct {
			index, term uint64
			err         error
		}{
			{9, 0, raft.ErrCompacted},
			{1, 0, raft.ErrCompacted},
			{10, 2, nil},
			{11, 2, nil},
			{12, 3, nil},
			{13, 3, nil},
			{14, 0, raft.ErrUnavailable},
		} {
			term, err := s.Term(tt.index)
			if !errors.Is(err, tt.err) || (err == nil && term != tt.term) {
				t.Errorf("Term(%d) = %d, %v; want %d, %v", tt.index, term, err, tt.term, tt.err)
			}
		}
	}
}

func mustLoad(t *testing.T, db *storage.PebbleStore, part int) *raftStorage {
	t.Helper()
	s, ok, err := loadRaftStorage(db, part)
	if err != nil || !ok {
		t.Fatalf("loadRaftStorage(%d) = %v, %v", part, ok, err)
	}
	return s
}

func TestLoadRaftStorageRoundTrip(t *testing.T) {
	dir := t.TempDir()
	store := openTestStore(t, dir)
	const part = 300 // needs both bytes of the partition in the key
	s := newRaftStorage(store, part)
	ents := []*pb.Entry{ent(1, 1), ent(2, 2), ent(3, 2), ent(4, 2)}
	hs := &pb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(0xfeed), Commit: proto.Uint64(3)}
	cs := &pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	persistReady(t, s, ents[:2], &pb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(1)}, &pb.ConfState{Voters: []uint64{1}}, 1)
	persistReady(t, s, ents[2:], hs, cs, 3)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store = openTestStore(t, dir)
	defer store.Close()
	got, ok, err := loadRaftStorage(store, part)
	if err != nil || !ok {
		t.Fatalf("loadRaftStorage = %v, %v; want state", ok, err)
	}
	gotHS, gotCS, err := got.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(gotHS, hs) {
		t.Errorf("hard state = %v, want %v", gotHS, hs)
	}
	if !proto.Equal(gotCS, cs) {
		t.Errorf("conf state = %v, want %v", gotCS, cs)
	}
	if got.applied != 3 {
		t.Errorf("applied = %d, want 3", got.applied)
	}
	if li, _ := got.LastIndex(); li != 4 || got.lastTerm != 2 {
		t.Errorf("last = %d (term %d), want 4 (term 2)", li, got.lastTerm)
	}
	if fi, _ := got.FirstIndex(); fi != 1 {
		t.Errorf("FirstIndex = %d, want 1", fi)
	}
	checkEntries(t, got, 1, 5, ents)
	// InitialState hands out copies: raft may keep them.
	gotCS.Voters[0] = 99
	if _, again, _ := got.InitialState(); again.Voters[0] != 1 {
		t.Errorf("InitialState shares its conf state with the caller")
	}

	for _, p := range []int{0, part - 1, part + 1, part + 256} {
		empty, ok, err := loadRaftStorage(store, p)
		if err != nil || ok {
			t.Errorf("partition %d: loadRaftStorage = %v, %v; want no state", p, ok, err)
			continue
		}
		if li, _ := empty.LastIndex(); li != 0 || empty.applied != 0 || len(empty.conf.Voters) != 0 {
			t.Errorf("partition %d: empty storage has last %d, applied %d, voters %v", p, li, empty.applied, empty.conf.Voters)
		}
	}
}

// noLimit is raft's "no size limit" (math.MaxUint64).
const noLimit = ^uint64(0)
