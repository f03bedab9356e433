package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/holocron-run/holocron/internal/testenv"
)

// TestMain lets the test binary stand in for holocron-bench when the
// baseline scenario starts its bare server (os.Executable is the test
// binary here).
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == baselineServerCmd {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// buildServer compiles ./cmd/holocron into dir.
func buildServer(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "holocron")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/holocron")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build holocron: %v\n%s", err, out)
	}
	return bin
}

// runTool runs the tool in-process and decodes its -json result.
func runTool(t *testing.T, args ...string) Result {
	t.Helper()
	out := filepath.Join(t.TempDir(), "result.json")
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args = append(args, "-json", out, "-data-root", t.TempDir())
	if code := run(ctx, args, &stdout, &stderr); code != 0 {
		t.Fatalf("holocron-bench %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, code, &stdout, &stderr)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("result JSON: %v\n%s", err, raw)
	}
	t.Logf("%s", &stdout)
	return res
}

// TestSmoke runs every scenario for about a second against a spawned node
// (and -kill-owner against a spawned 3-node cluster). It checks what a run
// must get right whatever the machine's speed — messages acknowledged,
// none of them lost or stored twice, the result's shape — and no
// throughput or latency figure: those belong to benchmark runs.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		testenv.Skip(t, "spawns real servers (-short)")
	}
	bin := buildServer(t, t.TempDir())
	const (
		warmup   = 200 * time.Millisecond
		duration = time.Second
		// buckets is how many 100 ms slots the per-100ms series have.
		buckets = int(duration / (100 * time.Millisecond))
	)
	quick := []string{"-spawn", "-bin", bin, "-warmup", warmup.String(), "-duration", duration.String(), "-quiet"}
	with := func(args ...string) []string {
		return append(append([]string{}, args[:1]...), append(quick, args[1:]...)...)
	}
	// verified checks what -verify found: every acknowledged message of the
	// run looked up in its room's history, each there exactly once.
	verified := func(t *testing.T, res Result) {
		t.Helper()
		if res.Figures["verified_acked"] <= 0 || res.Figures["lost_acked"] != 0 || res.Figures["duplicated_acked"] != 0 {
			t.Fatalf("verification: verified %v, lost %v, duplicated %v; want some verified, none lost or duplicated",
				res.Figures["verified_acked"], res.Figures["lost_acked"], res.Figures["duplicated_acked"])
		}
	}

	t.Run("durable", func(t *testing.T) {
		res := runTool(t, with("durable", "-senders", "3", "-window", "2", "-verify")...)
		if res.Latencies["send_to_echo"].Count == 0 || res.Figures["acked_msgs_per_sec"] <= 0 {
			t.Fatalf("no acknowledged messages in the window: %+v %+v", res.Latencies["send_to_echo"], res.Figures)
		}
		verified(t, res)
		if len(res.SlowestPer100ms) != buckets {
			t.Fatalf("%d slowest-echo buckets for a %v window, want %d: %v", len(res.SlowestPer100ms), duration, buckets, res.SlowestPer100ms)
		}
	})
	t.Run("durable-rate", func(t *testing.T) {
		const rate = 200
		res := runTool(t, with("durable", "-senders", "2", "-rate", fmt.Sprint(rate), "-verify")...)
		if res.Latencies["send_to_echo"].Count == 0 {
			t.Fatalf("no acknowledged messages in the window: %+v", res.Figures)
		}
		verified(t, res)
		// The schedule puts rate × duration sends in the window; the tool
		// may fall behind it (and stop at the window's end) but never send
		// more.
		scheduled := int64(rate * duration.Seconds())
		if l := res.Latencies["send_lag"]; l.Count <= 0 || l.Count > scheduled {
			t.Fatalf("%d sends in the window at -rate %d, want 1..%d", l.Count, rate, scheduled)
		}
		if len(res.SlowestSendLagPer100ms) != buckets || len(res.SlowestPer100ms) != buckets {
			t.Fatalf("per-100ms series of %d (send lag) and %d (echo) buckets, want %d", len(res.SlowestSendLagPer100ms), len(res.SlowestPer100ms), buckets)
		}
	})
	t.Run("baseline", func(t *testing.T) {
		const rate = 300
		res := runTool(t, "baseline", "-senders", "3", "-rate", fmt.Sprint(rate), "-warmup", warmup.String(), "-duration", duration.String(), "-quiet")
		if res.Latencies["send_to_echo"].Count == 0 || res.Figures["deliveries_per_sec"] <= 0 {
			t.Fatalf("baseline echoed or delivered nothing: %+v %+v", res.Latencies["send_to_echo"], res.Figures)
		}
		// The bare server's load never stops early: every send the
		// schedule puts in the window is made, late or not.
		if l, want := res.Latencies["send_lag"].Count, int64(rate*duration.Seconds()); l != want {
			t.Fatalf("baseline made %d sends in the window at -rate %d, want the schedule's %d", l, rate, want)
		}
		if len(res.SlowestPer100ms) != buckets || len(res.SlowestSendLagPer100ms) != buckets || res.CPU.Servers <= 0 {
			t.Fatalf("baseline result %+v", res)
		}
	})
	t.Run("fanout", func(t *testing.T) {
		res := runTool(t, with("fanout", "-rooms", "2", "-clients", "3", "-shard", "-verify")...)
		if res.Latencies["send_to_echo"].Count == 0 || res.Latencies["send_to_delivery"].Count == 0 {
			t.Fatalf("no acknowledged or delivered messages in the window: %+v", res.Latencies)
		}
		if res.Figures["rooms"] != 2 || res.Figures["clients"] != 6 {
			t.Fatalf("fanout ran %v rooms and %v clients, want 2 and 6", res.Figures["rooms"], res.Figures["clients"])
		}
		verified(t, res)
	})
	t.Run("idle", func(t *testing.T) {
		res := runTool(t, with("idle", "-conns", "60", "-room-size", "25", "-settle", "100ms")...)
		if res.Figures["broadcast_reached"] != 60 || res.Figures["rooms"] != 3 || res.Figures["server_rss_after_mib"] <= 0 {
			t.Fatalf("idle figures %+v", res.Figures)
		}
	})
	t.Run("resume", func(t *testing.T) {
		res := runTool(t, with("resume", "-missed", "1200", "-repeat", "2")...)
		// 1200 missed messages take the resume page and one get_history page.
		if l := res.Latencies["resume_after_connect"]; l.Count != 2 || res.Figures["get_history_pages_per_round"] != 1 {
			t.Fatalf("resume: %+v %+v", l, res.Figures)
		}
	})
	t.Run("game", func(t *testing.T) {
		res := runTool(t, with("game", "-games", "2", "-tick-rate", "20")...)
		if res.Figures["actions_per_sec"] <= 0 || res.Latencies["action_to_broadcast"].Count == 0 {
			t.Fatalf("game figures %+v", res.Figures)
		}
	})
	t.Run("kill-owner", func(t *testing.T) {
		res := runTool(t, "durable", "-spawn-cluster", "3", "-bin", bin, "-raft-tick", "50ms", "-senders", "3",
			"-warmup", "500ms", "-duration", "6s", "-kill-after", "1s", "-kill-owner", "-quiet")
		f := res.Failover
		if f == nil || f.GapMs <= 0 || f.Lost != 0 || f.Verified == 0 || f.Verified != f.Acked {
			t.Fatalf("failover %+v", f)
		}
	})
}
