package cluster

import (
	"crypto/sha256"
	"testing"
)

// BenchmarkRing measures placement lookups: PartitionOf runs for every
// forwarded request and every proposal, Preferred on every rebalance pass
// (once per partition).
func BenchmarkRing(b *testing.B) {
	members := []string{"n1", "n2", "n3", "n4", "n5"}
	r := NewRing(64, 3, members)
	id := sha256.Sum256([]byte("ChatLobby/main"))
	b.Run("PartitionOf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = r.PartitionOf(id[:])
		}
	})
	b.Run("Preferred", func(b *testing.B) {
		b.ReportAllocs()
		p := 0
		for b.Loop() {
			_ = r.Preferred(p % 64)
			p++
		}
	})
	b.Run("NewRing", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = NewRing(64, 3, members)
		}
	})
}
