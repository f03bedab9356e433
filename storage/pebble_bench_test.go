package storage_test

import (
	"fmt"
	"testing"

	"github.com/holocron-run/holocron/storage"
)

// BenchmarkCommit measures durable batch commits: one object event's
// writes (one 200-byte chat message and a counter), fsync'd before the
// callback. With one committer each batch pays a whole fsync; with many,
// batches that arrive during an fsync share the next one (group commit).
func BenchmarkCommit(b *testing.B) {
	for _, committers := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("committers=%d", committers), func(b *testing.B) {
			s := newStore(b)
			value := make([]byte, 200)
			var n int64
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, committers)
			inflight := 0
			for i := 0; i < b.N; i++ {
				if inflight == committers {
					if err := <-done; err != nil {
						b.Fatal(err)
					}
					inflight--
				}
				n++
				batch := &storage.Batch{Object: objectID(byte(n % 8)), Ops: []storage.Op{
					{Kind: storage.OpPut, Key: fmt.Sprintf("m%020d", n), Value: value},
					{Kind: storage.OpPut, Key: "seq", Value: value[:8]},
				}}
				inflight++
				s.Commit(batch, func(err error) { done <- err })
			}
			for ; inflight > 0; inflight-- {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "batches/s")
		})
	}
}
