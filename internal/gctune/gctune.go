// Package gctune sets the garbage collector's target so that a server with
// a small live heap does not spend a third of its CPU collecting it.
//
// With Go's default GOGC=100 the heap may grow to twice the live heap
// before a collection. A Holocron node's live heap is often a few MiB while
// it allocates hundreds of MiB/s (frames, JSON, Pebble batches), so the
// collector runs dozens of times a second: profiles of the load tool's
// durable and fan-out rows show 28–37 % of server CPU in GC. Giving the heap
// a fixed headroom above the live heap (instead of only 100 %) removes most
// of those cycles, while a large live heap (many idle sockets) keeps Go's
// proportional target, so memory per socket does not double.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Percent is the GOGC that lets the heap grow to live+headroom before the
// next collection, but never less than Go's default 100 (twice the live
// heap) nor more than max.
func Percent(live, headroom uint64, max int) int {
	if live == 0 {
		live = 1
	}
	p := headroom * 100 / live
	switch {
	case p < 100:
		return 100
	case p > uint64(max):
		return max
	}
	return int(p)
}

// maxPercent bounds the target when the live heap is tiny.
const maxPercent = 2000

// Run adjusts GOGC every interval from the live heap until ctx ends, then
// restores the GOGC in force when it started. A headroom of 0 does nothing.
func Run(ctx context.Context, headroom uint64, interval time.Duration) {
	if headroom == 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	current := GOGC()
	initial := current
	defer debug.SetGCPercent(initial)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 {
			if p := Percent(sample[0].Value.Uint64(), headroom, maxPercent); p != current {
				debug.SetGCPercent(p)
				current = p
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// GOGC reads the collector's current target percentage.
func GOGC() int {
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 100
	}
	return int(sample[0].Value.Uint64())
}
