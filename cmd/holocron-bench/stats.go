package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 5 minutes, with three
// significant digits: one histogram is about 30 KiB, so every reader
// goroutine owns one and they are merged at the end without locks.
const (
	histMinMicros = 1
	histMaxMicros = int64(5 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

// newHist returns an empty latency histogram.
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
}

// record adds one latency to h, clamped to the histogram's range.
func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	us = min(max(us, histMinMicros), histMaxMicros)
	_ = h.RecordValue(us) // in range by construction
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"meanMs"`
	P50   float64 `json:"p50Ms"`
	P90   float64 `json:"p90Ms"`
	P99   float64 `json:"p99Ms"`
	P999  float64 `json:"p999Ms"`
	Max   float64 `json:"maxMs"`
}

// summarize reads the percentiles of h.
func summarize(h *hdrhistogram.Histogram) Latency {
	ms := func(us int64) float64 { return round3(float64(us) / 1000) }
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		Count: h.TotalCount(),
		Mean:  round3(h.Mean() / 1000),
		P50:   ms(h.ValueAtQuantile(50)),
		P90:   ms(h.ValueAtQuantile(90)),
		P99:   ms(h.ValueAtQuantile(99)),
		P999:  ms(h.ValueAtQuantile(99.9)),
		Max:   ms(h.Max()),
	}
}

// String is the one-line human form.
func (l Latency) String() string {
	if l.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s ms  (%d samples)",
		fmtMs(l.P50), fmtMs(l.P90), fmtMs(l.P99), fmtMs(l.P999), fmtMs(l.Max), l.Count)
}

func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// Failover is what -kill-owner measured.
type Failover struct {
	// Killed is the node that owned the measured object.
	Killed string `json:"killed"`
	// KilledAtSec is the kill's time since the load started.
	KilledAtSec float64 `json:"killedAtSec"`
	// GapMs is the failover as clients see it: the longest pause between
	// two acknowledgements around and after the kill (last ack before →
	// first ack after).
	GapMs float64 `json:"gapMs"`
	// FirstAckAfterKillMs is the time from the kill to the first
	// acknowledgement that ended that pause.
	FirstAckAfterKillMs float64 `json:"firstAckAfterKillMs"`
	// Acked, Verified, Lost and Duplicated count acknowledged messages, how
	// many were checked against the room's history afterwards, how many of
	// those are missing from it, and how many appear more than once.
	Acked      int64 `json:"acked"`
	Verified   int64 `json:"verified"`
	Lost       int64 `json:"lost"`
	Duplicated int64 `json:"duplicated"`
	// Reconnects counts client sessions that had to be re-established.
	Reconnects int64 `json:"reconnects"`
}

// Result is one scenario run: what the summary prints and -json writes.
type Result struct {
	Scenario string    `json:"scenario"`
	Started  time.Time `json:"started"`
	Command  []string  `json:"command"`
	Machine  Machine   `json:"machine"`
	Target   Target    `json:"target"`
	// Params are the scenario's sizes (senders, window, rate, ...).
	Params map[string]any `json:"params"`
	// MeasuredSec is the measurement window (after warm-up).
	MeasuredSec float64 `json:"measuredSec"`
	// Figures are the scenario's throughput, count and size figures.
	Figures map[string]float64 `json:"figures"`
	// Latencies are the scenario's latency distributions.
	Latencies map[string]Latency `json:"latencies"`
	Failover  *Failover          `json:"failover,omitempty"`
	// SlowestPer100ms is, for durable and fanout, the slowest send→echo
	// of every 100 ms of the window (ms): when the tail happens.
	SlowestPer100ms []float64 `json:"slowestEchoPer100ms,omitempty"`
	// SlowestSendLagPer100ms is, in -rate mode, the latest send of every
	// 100 ms of the window (ms after its scheduled time, by scheduled
	// time): a spike that is there too began in the load generator.
	SlowestSendLagPer100ms []float64 `json:"slowestSendLagPer100ms,omitempty"`
	// CPU is the CPU time each side used during the measurement window,
	// in cores (1.0 = one core busy the whole time).
	CPU   CPUShare `json:"cpu"`
	Notes []string `json:"notes,omitempty"`
}

// Machine describes where the run happened. The load generator and the
// servers always share it.
type Machine struct {
	Cores     int     `json:"cores"`
	MemGiB    float64 `json:"memGiB"`
	GoVersion string  `json:"goVersion"`
	LoadAvg   string  `json:"loadAvgAtStart"`
	Shared    string  `json:"shared"`
}

// Target describes the servers under load.
type Target struct {
	Nodes   []string `json:"nodes"`
	Spawned bool     `json:"spawned"`
	Args    []string `json:"serverArgs,omitempty"`
}

// CPUShare is CPU use during the measurement window, in cores: the
// servers', the load generator's, the whole machine's, and the rest (other
// processes on the machine, when it is not dedicated to the run).
type CPUShare struct {
	Servers float64 `json:"serverCores"`
	Bench   float64 `json:"benchCores"`
	Machine float64 `json:"machineCores"`
	Others  float64 `json:"otherCores"`
}

func newResult(scenario string, args []string) *Result {
	return &Result{
		Scenario:  scenario,
		Started:   time.Now().UTC().Truncate(time.Millisecond),
		Command:   append([]string{"holocron-bench", scenario}, args...),
		Machine:   thisMachine(),
		Params:    map[string]any{},
		Figures:   map[string]float64{},
		Latencies: map[string]Latency{},
	}
}

func thisMachine() Machine {
	m := Machine{
		Cores:     runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Shared:    "the load generator and the server(s) run on the same machine and share its cores",
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
				kib, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				m.MemGiB = math.Round(kib/(1<<20)*10) / 10
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// Print writes the human summary.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "== %s  (%s)\n", r.Scenario, strings.Join(r.Command, " "))
	fmt.Fprintf(w, "   target %s  spawned=%v; %d cores shared by server and load generator, load avg at start %s\n",
		strings.Join(r.Target.Nodes, ","), r.Target.Spawned, r.Machine.Cores, r.Machine.LoadAvg)
	if r.MeasuredSec > 0 {
		fmt.Fprintf(w, "   measured %.1fs; CPU: servers %.2f cores, load generator %.2f, other processes %.2f (machine busy %.2f of %d)\n",
			r.MeasuredSec, r.CPU.Servers, r.CPU.Bench, r.CPU.Others, r.CPU.Machine, r.Machine.Cores)
	}
	for _, k := range slices.Sorted(maps.Keys(r.Figures)) {
		fmt.Fprintf(w, "   %-28s %s\n", k, fmtFigure(r.Figures[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Latencies)) {
		fmt.Fprintf(w, "   %-28s %s\n", k, r.Latencies[k])
	}
	if f := r.Failover; f != nil {
		fmt.Fprintf(w, "   failover: killed %s at %.1fs; gap %.0f ms (first ack %.0f ms after kill); acked %d, verified %d, lost %d, duplicated %d; %d reconnects\n",
			f.Killed, f.KilledAtSec, f.GapMs, f.FirstAckAfterKillMs, f.Acked, f.Verified, f.Lost, f.Duplicated, f.Reconnects)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "   note: %s\n", n)
	}
}

// fmtFigure prints whole numbers with thousands separators and fractions
// with two decimals.
func fmtFigure(v float64) string {
	if v != math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	s := strconv.FormatInt(int64(v), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// WriteJSON writes r to path, indented.
func (r *Result) WriteJSON(path string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode result: %w", err)
	}
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return fmt.Errorf("write result: %w", err)
	}
	return nil
}

// perSec is n events over d, rounded to a whole number.
func perSec(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return math.Round(float64(n) / d.Seconds())
}
