package main

import (
	"bufio"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func TestSummaryPercentilesAndJSON(t *testing.T) {
	h := newHist()
	for i := 1; i <= 1000; i++ {
		record(h, time.Duration(i)*time.Millisecond)
	}
	l := summarize(h)
	near := func(got, want float64) bool { return got >= want*0.99 && got <= want*1.01 }
	if l.Count != 1000 || !near(l.P50, 500) || !near(l.P99, 990) || !near(l.P999, 999) || !near(l.Max, 1000) {
		t.Fatalf("summary %+v", l)
	}
	r := newResult("durable", []string{"-spawn"})
	r.Latencies["send_to_echo"] = l
	r.Figures["acked_msgs_per_sec"] = 1234
	raw, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Latencies map[string]map[string]float64 `json:"latencies"`
		Figures   map[string]float64            `json:"figures"`
		Machine   struct{ Shared string }       `json:"machine"`
	}
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if back.Latencies["send_to_echo"]["p99Ms"] != l.P99 || back.Figures["acked_msgs_per_sec"] != 1234 || back.Machine.Shared == "" {
		t.Fatalf("JSON round trip: %s", raw)
	}
}

func TestRecordClampsOutOfRange(t *testing.T) {
	h := newHist()
	record(h, -time.Second)
	record(h, time.Hour)
	if h.TotalCount() != 2 {
		t.Fatalf("recorded %d of 2", h.TotalCount())
	}
}

func TestFmtFigure(t *testing.T) {
	for v, want := range map[float64]string{1: "1", 1234567: "1,234,567", -4500: "-4,500", 12.5: "12.50", 999: "999"} {
		if got := fmtFigure(v); got != want {
			t.Errorf("fmtFigure(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestLongestGapIsTheFailoverPause(t *testing.T) {
	// Acks every ms until 100, a kill at 105, nothing until 400, then acks.
	counts := make([]int32, 500)
	for i := range counts {
		if i <= 100 || i >= 400 {
			counts[i] = 3
		}
	}
	// A short pause before the window must not count.
	counts[20], counts[21] = 0, 0
	last, next, ok := longestGap(counts, 50, 105)
	if !ok || last != 100 || next != 400 {
		t.Fatalf("gap = %d..%d ok=%v, want 100..400", last, next, ok)
	}
	// No ack after the kill: no failover figure.
	for i := 150; i < len(counts); i++ {
		counts[i] = 0
	}
	if _, _, ok := longestGap(counts, 50, 105); ok {
		t.Fatal("a gap with no ack after the kill was reported")
	}
	if _, _, ok := longestGap(nil, 0, 0); ok {
		t.Fatal("empty timeline reported a gap")
	}
}

func TestTimelineGapAround(t *testing.T) {
	tl := newTimeline(time.Second, 2*time.Second)
	for ms := 0; ms < 2000; ms++ {
		if ms < 700 || ms > 1500 {
			tl.mark(time.Second+time.Duration(ms)*time.Millisecond, time.Duration(ms)*time.Microsecond)
		}
	}
	tl.mark(10*time.Second, time.Hour) // out of range: ignored
	gap, after, ok := tl.gapAround(time.Second + 800*time.Millisecond)
	if !ok || gap != 802*time.Millisecond || after != 701*time.Millisecond {
		t.Fatalf("gap %v, first ack %v after the kill, ok=%v", gap, after, ok)
	}
	slow := tl.slowest(time.Second, 3*time.Second)
	if len(slow) != 20 || slow[0] != 0.099 || slow[10] != 0 || slow[19] != 1.999 {
		t.Fatalf("slowest per 100ms: %v", slow)
	}
}

func TestParseConfig(t *testing.T) {
	cfg, err := parseConfig("durable", []string{"-spawn", "-bin", "x", "-senders", "4", "-window", "8"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HistoryLimit != 1000 || cfg.Senders != 4 || cfg.Window != 8 || cfg.KillAfter != cfg.Duration/3 || cfg.Verify {
		t.Fatalf("config %+v", cfg)
	}
	cfg, err = parseConfig("fanout", []string{"-nodes", "127.0.0.1:1,http://127.0.0.1:2/", "-pids", "10, 11", "-kill-owner"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Nodes[0] != "http://127.0.0.1:1" || cfg.Nodes[1] != "http://127.0.0.1:2" || cfg.PIDs[1] != 11 || !cfg.Verify || cfg.HistoryLimit != 10_000_000 {
		t.Fatalf("config %+v", cfg)
	}
	cfg, err = parseConfig("resume", []string{"-spawn", "-missed", "3000"}, io.Discard)
	if err != nil || cfg.HistoryLimit != 6100 {
		t.Fatalf("resume history limit %d, %v", cfg.HistoryLimit, err)
	}
	cfg, err = parseConfig("idle", []string{"-nodes", "h:1", "-server-pid", "77", "-server-args", "-idle-timeout 5s"}, io.Discard)
	if err != nil || cfg.PIDs[0] != 77 || len(cfg.ServerArgs) != 2 {
		t.Fatalf("idle config %+v, %v", cfg, err)
	}
}

func TestParseConfigRejects(t *testing.T) {
	for name, args := range map[string][]string{
		"no target":             {},
		"two targets":           {"-spawn", "-nodes", "h:1"},
		"kill one node":         {"-spawn", "-kill-owner"},
		"kill without pids":     {"-nodes", "h:1,h:2", "-kill-owner"},
		"pids count":            {"-nodes", "h:1,h:2", "-pids", "1"},
		"kill after the window": {"-spawn-cluster", "3", "-kill-owner", "-kill-after", "20s"},
		"zero window":           {"-spawn", "-window", "0"},
		"bad pid":               {"-nodes", "h:1", "-pids", "x"},
		"stray argument":        {"-spawn", "extra"},
	} {
		if _, err := parseConfig("durable", args, io.Discard); err == nil {
			t.Errorf("%s: %v accepted", name, args)
		}
	}
	if _, err := parseConfig("game", []string{"-spawn-cluster", "3", "-kill-owner"}, io.Discard); err == nil {
		t.Error("-kill-owner accepted for game")
	}
	for name, args := range map[string][]string{
		"a target": {"-spawn", "-rate", "100"},
		"no rate":  {},
	} {
		if _, err := parseConfig("baseline", args, io.Discard); err == nil {
			t.Errorf("baseline, %s: %v accepted", name, args)
		}
	}
	if _, err := parseConfig("baseline", []string{"-rate", "100"}, io.Discard); err != nil {
		t.Errorf("baseline -rate 100: %v", err)
	}
}

func TestParseMetrics(t *testing.T) {
	page := `# HELP holocron_storage_group_commits_total x
# TYPE holocron_storage_group_commits_total counter
holocron_storage_group_commits_total 42
holocron_storage_group_commit_seconds_bucket{le="0.1"} 3
holocron_object_event_seconds_sum 1.5e-03
`
	m, err := parseMetrics(bufio.NewScanner(strings.NewReader(page)))
	if err != nil {
		t.Fatal(err)
	}
	if m["holocron_storage_group_commits_total"] != 42 || m["holocron_object_event_seconds_sum"] != 0.0015 ||
		m[`holocron_storage_group_commit_seconds_bucket{le="0.1"}`] != 3 || len(m) != 3 {
		t.Fatalf("parsed %v", m)
	}
	res := newResult("durable", nil)
	before := map[string]map[string]float64{
		"n1": {"holocron_storage_group_commits_total": 10, "holocron_storage_batches_total": 10, "holocron_storage_group_commit_seconds_count": 10, slowCommitBucket: 10},
		"n2": {"holocron_storage_group_commits_total": 5},
	}
	after := map[string]map[string]float64{
		"n1": {"holocron_storage_group_commits_total": 30, "holocron_storage_batches_total": 110, "holocron_storage_group_commit_seconds_count": 30, slowCommitBucket: 27},
	}
	serverFigures(res, before, after, 2*time.Second)
	if res.Figures["server_fsyncs_per_sec"] != 10 || res.Figures["server_batches_per_fsync"] != 5 || res.Figures["server_fsyncs_over_12ms"] != 3 {
		t.Fatalf("figures %v", res.Figures)
	}
}
