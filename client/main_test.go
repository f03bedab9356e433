package client

import (
	"fmt"
	"net/http"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// holocronBin is the holocron binary TestMain built for this run.
var holocronBin string

// TestMain builds holocron once (with the race detector unless
// HOLOCRON_TEST_NORACE is set) and checks, after every test, that no
// goroutine is left over.
func TestMain(m *testing.M) {
	bin, cleanup, err := buildHolocron()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	holocronBin = bin
	code := m.Run()
	cleanup()
	if code == 0 {
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(leakIgnores()...); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// leakIgnores are the goroutines that are not the client's: idle
// keep-alive connections of net/http's default transport (used by
// proctest's readiness and cluster probes).
func leakIgnores() []goleak.Option {
	return []goleak.Option{
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	}
}

// checkLeaks makes t fail if goroutines started during it outlive it. Call
// it first in a test: cleanups run last-in first-out, so the check runs
// after the test's clients are closed and its processes are killed. Tests
// that use it must not run in parallel.
func checkLeaks(t *testing.T) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		if err := goleak.Find(append(leakIgnores(), before)...); err != nil {
			t.Errorf("goroutines left behind: %v", err)
		}
	})
}
