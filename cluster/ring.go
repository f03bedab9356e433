package cluster

import (
	"fmt"
	"slices"

	"github.com/buraksezer/consistent"
	"github.com/cespare/xxhash/v2"
)

// Ring places partitions on members with consistent hashing (bounded
// loads), so that a membership change moves few partitions. It is immutable:
// a membership change builds a new Ring.
type Ring struct {
	partitions  int
	replication int
	c           *consistent.Consistent
	members     []string
}

type ringMember string

func (m ringMember) String() string { return string(m) }

type xxHasher struct{}

func (xxHasher) Sum64(b []byte) uint64 { return xxhash.Sum64(b) }

// NewRing places partitions on the named members. replication is the wanted
// number of replicas per partition; fewer members cap it.
//
// Bounded-load placement needs at least as many partitions as members; with
// more members, only the first partitions members (by name) hold replicas.
func NewRing(partitions, replication int, members []string) *Ring {
	if len(members) > partitions {
		members = slices.Clone(members)
		slices.Sort(members)
		members = members[:partitions]
	}
	var cms []consistent.Member // nil when empty: consistent panics on an empty non-nil slice
	for _, m := range members {
		cms = append(cms, ringMember(m))
	}
	c := consistent.New(cms, consistent.Config{
		PartitionCount:    partitions,
		ReplicationFactor: 20,
		Load:              1.25,
		Hasher:            xxHasher{},
	})
	return &Ring{partitions: partitions, replication: replication, c: c, members: members}
}

// Partitions is the number of partitions, fixed for a cluster's life.
func (r *Ring) Partitions() int { return r.partitions }

// PartitionOf returns the partition of an object ID (or any key).
func (r *Ring) PartitionOf(key []byte) int { return r.c.FindPartitionID(key) }

// Preferred returns the members that should hold partition p, the preferred
// leader first. It is empty when the ring has no members.
func (r *Ring) Preferred(p int) []string {
	n := min(r.replication, len(r.members))
	if n == 0 {
		return nil
	}
	ms, err := r.c.GetClosestNForPartition(p, n)
	if err != nil {
		// Cannot happen: n is capped at the member count.
		panic(fmt.Sprintf("ring: closest %d of %d members: %v", n, len(r.members), err))
	}
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
