package cluster

import (
	"fmt"
	"slices"
	"testing"
)

func memberNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("node-%d", i)
	}
	return names
}

func TestRingPartitionOf(t *testing.T) {
	keys := [][]byte{nil, {}, []byte("a"), []byte("b"), []byte("object/1"), make([]byte, 32), []byte("\xff\xfe\xfd")}
	for i := range 200 {
		keys = append(keys, fmt.Appendf(nil, "key-%d", i))
	}
	for _, partitions := range []int{1, 7, 64, 1000} {
		r1 := NewRing(partitions, 3, memberNames(1))
		// Other members, as many as the partitions allow (see
		// TestRingMoreMembersThanPartitions).
		others := memberNames(min(5, partitions) + 1)[1:]
		r2 := NewRing(partitions, 3, others)
		seen := map[int]bool{}
		for _, k := range keys {
			p := r1.PartitionOf(k)
			if p < 0 || p >= partitions {
				t.Fatalf("partitions=%d: PartitionOf(%q) = %d, out of range", partitions, k, p)
			}
			if again := r1.PartitionOf(k); again != p {
				t.Fatalf("partitions=%d: PartitionOf(%q) = %d, then %d", partitions, k, p, again)
			}
			// The partition of a key depends on the key only, never on
			// the members: the members change, the partitions do not.
			if other := r2.PartitionOf(k); other != p {
				t.Fatalf("partitions=%d: PartitionOf(%q) = %d with members %q, %d with %q", partitions, k, p, memberNames(1), other, others)
			}
			seen[p] = true
		}
		if r1.Partitions() != partitions {
			t.Errorf("Partitions() = %d, want %d", r1.Partitions(), partitions)
		}
		// 207 keys must spread over more than one partition.
		if partitions > 1 && len(seen) < 2 {
			t.Errorf("partitions=%d: all keys map to one partition", partitions)
		}
	}
}

func TestRingPreferred(t *testing.T) {
	tests := []struct {
		partitions, replication, members int
	}{
		{16, 3, 1},
		{16, 3, 2},
		{16, 3, 3},
		{16, 3, 4},
		{16, 3, 5},
		{16, 1, 3},
		{16, 2, 3},
		{64, 3, 7},
		{64, 5, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("P%d_R%d_N%d", tt.partitions, tt.replication, tt.members), func(t *testing.T) {
			names := memberNames(tt.members)
			r := NewRing(tt.partitions, tt.replication, names)
			reversed := slices.Clone(names)
			slices.Reverse(reversed)
			rotated := append(slices.Clone(names[1:]), names[0])
			others := []*Ring{NewRing(tt.partitions, tt.replication, reversed), NewRing(tt.partitions, tt.replication, rotated)}
			want := min(tt.replication, tt.members)
			firsts := map[string]bool{}
			for p := range tt.partitions {
				got := r.Preferred(p)
				if len(got) != want {
					t.Fatalf("Preferred(%d) = %q: %d members, want %d", p, got, len(got), want)
				}
				for i, m := range got {
					if !slices.Contains(names, m) {
						t.Fatalf("Preferred(%d) = %q: %q is not a member", p, got, m)
					}
					if slices.Contains(got[:i], m) {
						t.Fatalf("Preferred(%d) = %q: %q twice", p, got, m)
					}
				}
				for _, o := range others {
					if og := o.Preferred(p); !slices.Equal(og, got) {
						t.Fatalf("Preferred(%d) depends on member order: %q and %q", p, got, og)
					}
				}
				if again := r.Preferred(p); !slices.Equal(again, got) {
					t.Fatalf("Preferred(%d) = %q, then %q", p, got, again)
				}
				firsts[got[0]] = true
			}
			// Bounded loads: with as many partitions as these, every
			// member is some partition's preferred leader.
			if len(firsts) != tt.members {
				t.Errorf("preferred leaders are %d of %d members: %v", len(firsts), tt.members, firsts)
			}
		})
	}
}

func TestRingAddMemberMovesSomePartitions(t *testing.T) {
	const partitions = 64
	three := NewRing(partitions, 3, memberNames(3))
	four := NewRing(partitions, 3, memberNames(4))
	movedSets, movedLeaders := 0, 0
	for p := range partitions {
		before, after := three.Preferred(p), four.Preferred(p)
		if !sameSet(before, after) {
			movedSets++
		}
		if before[0] != after[0] {
			movedLeaders++
		}
	}
	t.Logf("adding a 4th member: %d/%d replica sets and %d/%d preferred leaders changed", movedSets, partitions, movedLeaders, partitions)
	// Every partition had all three members; with four, a quarter or so
	// of the replica slots belong to the new member.
	if movedSets == 0 || movedSets == partitions {
		t.Errorf("replica sets of %d of %d partitions changed, want some but not all", movedSets, partitions)
	}
	if movedLeaders == 0 || movedLeaders == partitions {
		t.Errorf("preferred leaders of %d of %d partitions changed, want some but not all", movedLeaders, partitions)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestRingNoReplicasIsNil(t *testing.T) {
	r := NewRing(8, 0, memberNames(3))
	for p := range 8 {
		if got := r.Preferred(p); got != nil {
			t.Fatalf("replication 0: Preferred(%d) = %q, want nil", p, got)
		}
	}
}

// ringPanics reports what NewRing and Preferred panic with, if anything.
func ringPanics(partitions, replication int, members []string) (msg any) {
	defer func() { msg = recover() }()
	r := NewRing(partitions, replication, members)
	for p := range partitions {
		r.Preferred(p)
	}
	return nil
}

func TestRingEmpty(t *testing.T) {
	for _, members := range [][]string{nil, {}} {
		if msg := ringPanics(8, 3, members); msg != nil {
			t.Fatalf("NewRing(8, 3, %#v) panics: %v", members, msg)
		}
		r := NewRing(8, 3, members)
		for p := range 8 {
			if got := r.Preferred(p); got != nil {
				t.Fatalf("empty ring: Preferred(%d) = %q, want nil", p, got)
			}
		}
	}
}

func TestRingMoreMembersThanPartitions(t *testing.T) {
	for _, tt := range []struct{ partitions, members int }{{1, 2}, {2, 3}, {4, 5}, {8, 9}} {
		if msg := ringPanics(tt.partitions, 3, memberNames(tt.members)); msg != nil {
			t.Errorf("NewRing(%d partitions, %d members) panics: %v", tt.partitions, tt.members, msg)
		}
	}
}
