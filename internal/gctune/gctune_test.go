package gctune

import (
	"context"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name           string
		live, headroom uint64
		want           int
	}{
		{"tiny heap: capped", 1 * mib, 64 * mib, maxPercent},
		{"small heap: headroom", 8 * mib, 64 * mib, 800},
		{"heap as large as the headroom: Go's default", 64 * mib, 64 * mib, 100},
		{"large heap: never below the default", 512 * mib, 64 * mib, 100},
		{"no live heap yet", 0, 64 * mib, maxPercent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Percent(tc.live, tc.headroom, maxPercent); got != tc.want {
				t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", tc.live/mib, tc.headroom/mib, got, tc.want)
			}
		})
	}
}

func TestRunSetsAndRestoresGOGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	defer debug.SetGCPercent(before)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		Run(ctx, 1<<40, time.Millisecond) // a huge headroom: the cap
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for GOGC() != maxPercent {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC is %d, want %d", GOGC(), maxPercent)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if p := GOGC(); p != 100 {
		t.Fatalf("after Run ended GOGC is %d, want the 100 it started with", p)
	}
}

func TestReleaserReleasesOnceWhenQuiet(t *testing.T) {
	const mib = 1 << 20
	live := uint64(256 * mib) // quiet: under 4 MiB a tick
	steps := []struct {
		name   string
		allocs uint64 // allocated during the tick
		want   bool
	}{
		{"first reading only sets the base", 0, false},
		{"busy", 100 * mib, false},
		{"quiet 1", 1 * mib, false},
		{"quiet 2", 2 * mib, false},
		{"quiet 3: release", 3 * mib, true},
		{"still quiet: once is enough", 0, false},
		{"quiet again", 0, false},
		{"busy re-arms", 50 * mib, false},
		{"quiet 1 after busy", 0, false},
		{"quiet 2 after busy", 0, false},
		{"quiet 3 after busy, but too soon after the last release", 0, false},
	}
	var r releaser
	total := uint64(1000 * mib)
	for _, s := range steps {
		total += s.allocs
		if got := r.observe(total, live); got != s.want {
			t.Fatalf("%s: observe = %v, want %v", s.name, got, s.want)
		}
	}
	// The quiet spell goes on: it releases again as soon as releaseEvery
	// intervals have passed since the last release (6 steps ago).
	releasedAt := 0
	for i := 1; i <= releaseEvery; i++ {
		if r.observe(total, live) {
			if releasedAt != 0 {
				t.Fatalf("released at intervals %d and %d", releasedAt, i)
			}
			releasedAt = i
		}
	}
	if want := releaseEvery - 6; releasedAt != want {
		t.Fatalf("released again %d intervals on, want %d (releaseEvery after the last)", releasedAt, want)
	}
}
