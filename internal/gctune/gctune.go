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
// proportional target, so memory per socket does not double. And once the
// process has gone quiet after a burst, it returns the memory the burst
// left behind to the operating system (see releaser).
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
// restores the GOGC in force when it started. It also hands free memory back
// to the operating system once the process has gone quiet (see releaser).
// A headroom of 0 does nothing.
func Run(ctx context.Context, headroom uint64, interval time.Duration) {
	if headroom == 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	current := GOGC()
	initial := current
	defer debug.SetGCPercent(initial)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var quiet releaser
	for {
		metrics.Read(sample)
		if sample[0].Value.Kind() == metrics.KindUint64 && sample[1].Value.Kind() == metrics.KindUint64 {
			live := sample[0].Value.Uint64()
			if p := Percent(live, headroom, maxPercent); p != current {
				debug.SetGCPercent(p)
				current = p
			}
			if quiet.observe(sample[1].Value.Uint64(), live) {
				debug.FreeOSMemory()
			}
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// releaser decides when to return memory to the operating system. After a
// burst (thousands of clients joining, a load test) the heap keeps the
// garbage and the free pages it grew to: the next collection is far off
// when little is allocated, and the runtime's scavenger returns pages only
// down to about the heap goal, twice the live heap. An idle node would hold
// that memory for good, so once allocation has stayed low for quietTicks
// intervals, one collection with a full release (debug.FreeOSMemory) brings
// its resident memory down to what it uses; it is not repeated until the
// node has been busy again.
type releaser struct {
	lastAllocs uint64
	quietFor   int
	released   bool
	// sinceRelease counts intervals since the last release (0: none yet).
	sinceRelease int
}

// quietTicks is how many quiet intervals in a row trigger a release, and
// releaseEvery the fewest intervals between two: a node whose allocation
// hovers at the threshold must not collect every few seconds.
const (
	quietTicks   = 3
	releaseEvery = 60
)

// observe takes the cumulative bytes allocated and the live heap at one
// interval and reports whether to release memory now. An interval is quiet
// when it allocated less than 1/64 of the live heap (at least 1 MiB): a
// node holding idle sockets still answers their keepalives.
func (r *releaser) observe(allocs, live uint64) bool {
	delta := allocs - r.lastAllocs
	first := r.lastAllocs == 0
	r.lastAllocs = allocs
	if r.sinceRelease > 0 {
		r.sinceRelease++
	}
	if first || delta > max(live/64, 1<<20) {
		r.quietFor, r.released = 0, false
		return false
	}
	r.quietFor++
	if r.quietFor >= quietTicks && !r.released && (r.sinceRelease == 0 || r.sinceRelease > releaseEvery) {
		r.released, r.sinceRelease = true, 1
		return true
	}
	return false
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
