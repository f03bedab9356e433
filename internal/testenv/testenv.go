// Package testenv decides what a test does when something it needs from
// the machine (root, Chromium, iptables, an opt-in suite) is missing.
//
// A skipped test is silent in a plain `go test` run, so a green CI run could
// hide a suite that never ran. Tests therefore skip only through Skip: on a
// developer's machine it is an ordinary t.Skip, but when HOLOCRON_NO_SKIP is
// set (.ci/run sets it, and installs what the tests need) it fails the test,
// naming what was missing. A lint test in this package refuses any other
// skip in the module.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// NoSkipEnv is the environment variable that turns every Skip into a
// failure.
const NoSkipEnv = "HOLOCRON_NO_SKIP"

// Skip skips t for the reason why, or fails it when skips are refused
// (NoSkipEnv is set).
func Skip(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(NoSkipEnv) != "" {
		t.Fatalf("test would skip (%s), and %s is set: in CI every test runs", why, NoSkipEnv)
	}
	t.Skip(why)
}

// Skipf is Skip with a format.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	Skip(t, fmt.Sprintf(format, args...))
}

// NeedRoot skips (or fails, see Skip) t unless the test runs as root.
func NeedRoot(t testing.TB, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skipf(t, "%s needs root", what)
	}
}

// NeedCommand skips (or fails, see Skip) t unless each command is on PATH;
// pkg names the Debian package that provides them.
func NeedCommand(t testing.TB, pkg string, commands ...string) {
	t.Helper()
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			Skipf(t, "needs %s (apt-get install %s)", c, pkg)
		}
	}
}

// WaitFor polls cond until it returns nil, and fails the test after within,
// naming what it waited for and cond's last answer (why not yet). cond runs
// on the test's goroutine, so it may itself fail the test. It is the one
// deadline-bounded wait of the process tests: no wait there is unbounded.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
