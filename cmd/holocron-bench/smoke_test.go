package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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
// (and -kill-owner against a spawned 3-node cluster).
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns real servers")
	}
	bin := buildServer(t, t.TempDir())
	quick := []string{"-spawn", "-bin", bin, "-warmup", "200ms", "-duration", "1s", "-quiet"}
	with := func(args ...string) []string {
		return append(append([]string{}, args[:1]...), append(quick, args[1:]...)...)
	}

	t.Run("durable", func(t *testing.T) {
		res := runTool(t, with("durable", "-senders", "3", "-window", "2", "-verify")...)
		if res.Figures["acked_msgs_per_sec"] <= 0 || res.Latencies["send_to_echo"].Count == 0 {
			t.Fatalf("no acknowledged messages: %+v", res.Figures)
		}
		if res.Figures["lost_acked"] != 0 || res.Figures["verified_acked"] == 0 {
			t.Fatalf("verification: %+v", res.Figures)
		}
	})
	t.Run("durable-rate", func(t *testing.T) {
		res := runTool(t, with("durable", "-senders", "2", "-rate", "200")...)
		if got := res.Figures["acked_msgs_per_sec"]; got < 150 || got > 250 {
			t.Fatalf("acked %v msgs/s at -rate 200", got)
		}
		if l := res.Latencies["send_lag"]; l.Count < 150 || len(res.SlowestSendLagPer100ms) != 10 {
			t.Fatalf("send lag %+v, per 100 ms %v", l, res.SlowestSendLagPer100ms)
		}
	})
	t.Run("baseline", func(t *testing.T) {
		res := runTool(t, "baseline", "-senders", "3", "-rate", "300", "-warmup", "200ms", "-duration", "1s", "-quiet")
		if got := res.Figures["acked_msgs_per_sec"]; got < 250 || got > 350 {
			t.Fatalf("baseline echoed %v msgs/s at -rate 300", got)
		}
		// The bare server writes every message to all 3 sockets.
		if d, a := res.Figures["deliveries_per_sec"], res.Figures["acked_msgs_per_sec"]; d < 2.5*a || d > 3.5*a {
			t.Fatalf("baseline deliveries %v/s for %v echoed/s, want about 3×", d, a)
		}
		if res.Latencies["send_to_echo"].Count == 0 || len(res.SlowestPer100ms) != 10 || res.CPU.Servers <= 0 {
			t.Fatalf("baseline result %+v", res)
		}
	})
	t.Run("fanout", func(t *testing.T) {
		res := runTool(t, with("fanout", "-rooms", "2", "-clients", "3", "-shard")...)
		// Every message reaches the 3 members of its room.
		if d, a := res.Figures["deliveries_per_sec"], res.Figures["acked_msgs_per_sec"]; a <= 0 || d < 2.5*a || d > 3.5*a {
			t.Fatalf("deliveries %v/s for %v acked/s, want about 3×", d, a)
		}
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
