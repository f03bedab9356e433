package cluster

import (
	"log/slog"
	"os"
	"testing"
	"time"
)

// Timeouts of the tests. Convergence of gossip or Raft normally takes well
// under a second; the generous bounds leave room for a loaded machine and
// the race detector, and are only reached when something is wrong.
const (
	convergeTimeout = 30 * time.Second
	pollInterval    = 20 * time.Millisecond
)

// testLogger discards logs unless HOLOCRON_TEST_LOG is set, in which case
// everything goes to stderr (not t.Log: background goroutines of memberlist
// and the engine may log after the test has returned).
func testLogger() *slog.Logger {
	if os.Getenv("HOLOCRON_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// waitFor polls cond until it reports true, failing the test with cond's
// last explanation once timeout has passed.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, why)
		}
		time.Sleep(pollInterval)
	}
}
