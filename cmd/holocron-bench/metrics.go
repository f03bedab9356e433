package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serverCounters are the /metrics series whose change over the window
// explains a figure: fsyncs (group commits) and what shares them, object
// events and their handling time, frames written, Raft Ready batches.
var serverCounters = []string{
	"holocron_storage_group_commits_total",
	"holocron_storage_group_commit_seconds_sum",
	"holocron_storage_batches_total",
	"holocron_object_event_seconds_sum",
	"holocron_object_event_seconds_count",
	"holocron_websocket_messages_sent_total",
	"holocron_websocket_messages_received_total",
	"holocron_raft_ready_batches_total",
	"holocron_raft_ready_seconds_sum",
	"holocron_raft_ready_seconds_count",
	"holocron_storage_group_commit_seconds_count",
	slowEventBucket,
	slowCommitBucket,
}

// The histogram buckets that tell whether any event or group commit was
// slow enough to explain a latency tail: events over 10.24 ms, group
// commits (with their fsync) over 12.8 ms.
const (
	slowEventBucket  = `holocron_object_event_seconds_bucket{le="0.01024"}`
	slowCommitBucket = `holocron_storage_group_commit_seconds_bucket{le="0.0128"}`
)

// scrapeCounters reads serverCounters from every live node's /metrics,
// per node name.
func scrapeCounters(ctx context.Context, f *fleet) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, n := range f.live() {
		m, err := scrape(ctx, f.hc, n.URL+"/metrics")
		if err != nil {
			f.log.Warn("scrape metrics", "node", n.Name, "err", err)
			continue
		}
		out[n.Name] = m
	}
	return out
}

// scrape reads the unlabelled series of a Prometheus text page.
func scrape(ctx context.Context, hc *http.Client, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics request: %w", err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", u, err)
	}
	defer resp.Body.Close()
	return parseMetrics(bufio.NewScanner(resp.Body))
}

// parseMetrics reads `series value` lines (a series is a name with its
// labels, as printed), skipping comments.
func parseMetrics(sc *bufio.Scanner) (map[string]float64, error) {
	out := map[string]float64{}
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	return out, nil
}

// serverFigures derives per-second and per-event figures from two scrapes
// d apart and adds them to res. A node missing from either scrape (killed,
// say) is left out of both.
func serverFigures(res *Result, before, after map[string]map[string]float64, d time.Duration) {
	delta := func(name string) float64 {
		var sum float64
		for node, a := range after {
			if b, ok := before[node]; ok {
				sum += a[name] - b[name]
			}
		}
		return sum
	}
	sec := d.Seconds()
	if sec <= 0 {
		return
	}
	if gc := delta("holocron_storage_group_commits_total"); gc > 0 {
		res.Figures["server_fsyncs_per_sec"] = round3(gc / sec)
		res.Figures["server_fsync_ms_mean"] = round3(delta("holocron_storage_group_commit_seconds_sum") / gc * 1000)
		res.Figures["server_batches_per_fsync"] = round3(delta("holocron_storage_batches_total") / gc)
	}
	if ev := delta("holocron_object_event_seconds_count"); ev > 0 {
		res.Figures["server_events_per_sec"] = round3(ev / sec)
		res.Figures["server_event_us_mean"] = round3(delta("holocron_object_event_seconds_sum") / ev * 1e6)
		res.Figures["server_events_over_10ms"] = ev - delta(slowEventBucket)
	}
	if gc := delta("holocron_storage_group_commit_seconds_count"); gc > 0 {
		res.Figures["server_fsyncs_over_12ms"] = gc - delta(slowCommitBucket)
	}
	if s := delta("holocron_websocket_messages_sent_total"); s > 0 {
		res.Figures["server_frames_sent_per_sec"] = round3(s / sec)
	}
	if r := delta("holocron_raft_ready_seconds_count"); r > 0 {
		res.Figures["server_raft_ready_per_sec"] = round3(r / sec)
		res.Figures["server_raft_ready_ms_mean"] = round3(delta("holocron_raft_ready_seconds_sum") / r * 1000)
	}
}

// measurement is what runs alongside a scenario's measurement window: the
// CPU meter, the optional perf profile and the server counters.
type measurement struct {
	start    time.Time
	meter    *cpuMeter
	prof     *profiler
	counters map[string]map[string]float64
}

// beginWindow starts measuring the servers.
func (b *bench) beginWindow(ctx context.Context) *measurement {
	pids := b.fleet.pids()
	return &measurement{
		counters: scrapeCounters(ctx, b.fleet),
		start:    time.Now(),
		meter:    startCPU(pids),
		prof:     startProfile(b.cfg.ServerProfile, pids, b.log),
	}
}

// endWindow stops measuring and adds the CPU shares and server figures to
// the result.
func (b *bench) endWindow(ctx context.Context, m *measurement) {
	m.prof.stop()
	b.res.CPU = m.meter.stop()
	d := time.Since(m.start)
	serverFigures(b.res, m.counters, scrapeCounters(ctx, b.fleet), d)
}
