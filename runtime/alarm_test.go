package runtime_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
	"github.com/holocron-run/holocron/storage"
)

// defaultAlarmRetries is the documented default of
// runtime.Options.AlarmRetries.
const defaultAlarmRetries = 6

// TestFailingAlarmIsRetriedWithBackoffThenDropped checks the promise of
// Options.AlarmRetries on the test clock: an alarm whose handler fails
// (returns an error, or panics: the same to the runtime) runs again 1s, 2s,
// 4s, … after each failure and is given up after exactly AlarmRetries
// retries, its stored alarm deleted; one that fails a few times and then
// succeeds runs successfully once and never again.
func TestFailingAlarmIsRetriedWithBackoffThenDropped(t *testing.T) {
	tests := []struct {
		name    string
		retries int // Options.AlarmRetries; 0 for the default
		fails   int // failing runs before the first success; -1: all
		panics  bool
	}{
		{"error/always/default retries", 0, -1, false},
		{"panic/always/2 retries", 2, -1, true},
		{"error/3 times then succeeds", 0, 3, false},
		{"panic/3 times then succeeds", 0, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			retries := tt.retries
			if retries == 0 {
				retries = defaultAlarmRetries
			}
			b := startAlarmBench(t, runtime.Options{AlarmRetries: tt.retries}, tt.fails, tt.panics)
			const name = "/objects/Retried/r/"
			due := b.clock.Now().Add(10 * time.Second)
			b.setAlarm(name, due)

			runs := 1 + retries // the first run and every retry
			if tt.fails >= 0 {
				runs = tt.fails + 1
			}
			for run := 1; run <= runs; run++ {
				b.runAt(name, due, fmt.Sprintf("run %d", run))
				if run == runs {
					break
				}
				// The failure is recorded, and the retry scheduled, on the
				// clock as it stands now: only then may the test move it.
				b.waitCounter("holocron_alarm_retries_total", run)
				due = due.Add(time.Second << (run - 1))
			}

			if tt.fails < 0 {
				b.waitCounter("holocron_alarms_dropped_total", 1)
			}
			// However far the clock moves, nothing runs again, and the
			// object has no alarm left.
			b.clock.Advance(24 * time.Hour)
			b.expectNoRun(name, "after the last run")
			_, f := b.s.Do(http.MethodGet, name, nil)
			if f["alarm"] != nil {
				t.Fatalf("alarm still set after the last run: %v", f)
			}
			if at, ok := b.storedAlarm("Retried", "r"); ok {
				t.Fatalf("alarm at %v still in the store after the last run", at)
			}
			wantSucceeded := 1.0
			if tt.fails < 0 {
				wantSucceeded = 0
			}
			if f["succeeded"] != wantSucceeded {
				t.Fatalf("%v successful runs stored, want %v", f["succeeded"], wantSucceeded)
			}
			wantRetries, wantDropped := runs-1, 0
			if tt.fails < 0 {
				wantDropped = 1
			}
			if got := b.counter("holocron_alarm_retries_total"); got != wantRetries {
				t.Errorf("holocron_alarm_retries_total = %d, want %d", got, wantRetries)
			}
			if got := b.counter("holocron_alarms_dropped_total"); got != wantDropped {
				t.Errorf("holocron_alarms_dropped_total = %d, want %d", got, wantDropped)
			}
		})
	}
}

// TestAlarmSetAnewStartsItsOwnRetries: an object that replaces its failing
// alarm while it backs off has a new alarm, not a further retry of the old
// one: the new alarm gets the whole backoff and every retry of its own.
func TestAlarmSetAnewStartsItsOwnRetries(t *testing.T) {
	b := startAlarmBench(t, runtime.Options{AlarmRetries: 2}, -1, false)
	const name = "/objects/Retried/r/"
	old := b.clock.Now().Add(10 * time.Second)
	b.setAlarm(name, old)
	b.runAt(name, old, "the old alarm's first run")
	b.waitCounter("holocron_alarm_retries_total", 1)
	b.runAt(name, old.Add(time.Second), "the old alarm's first retry")
	b.waitCounter("holocron_alarm_retries_total", 2)

	// One retry left for the old alarm; the object replaces it.
	due := old.Add(time.Hour)
	b.setAlarm(name, due)
	b.clock.Advance(old.Add(3 * time.Second).Sub(b.clock.Now()))
	b.expectNoRun(name, "when the replaced alarm's last retry was due")
	for run := 1; run <= 3; run++ {
		b.runAt(name, due, fmt.Sprintf("the new alarm's run %d", run))
		if run < 3 {
			b.waitCounter("holocron_alarm_retries_total", 2+run)
			due = due.Add(time.Second << (run - 1))
		}
	}
	b.waitCounter("holocron_alarms_dropped_total", 1)
	b.clock.Advance(24 * time.Hour)
	b.expectNoRun(name, "after the new alarm's last run")
	if at, ok := b.storedAlarm("Retried", "r"); ok {
		t.Fatalf("alarm at %v still in the store after the last run", at)
	}
}

// alarmBench runs a Retried object, whose alarm handler fails as the test
// says, next to Probe objects, on a clock the test moves.
type alarmBench struct {
	t      *testing.T
	s      *runtimetest.Server
	clock  *runtimetest.Clock
	reg    *prometheus.Registry
	runs   chan time.Time // the clock time of each OnAlarm run of Retried
	probes chan string    // the name of each Probe whose alarm ran
	probe  int            // Probes used so far
}

func startAlarmBench(t *testing.T, ro runtime.Options, fails int, panics bool) *alarmBench {
	t.Helper()
	b := &alarmBench{
		t:      t,
		clock:  runtimetest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)),
		reg:    prometheus.NewRegistry(),
		runs:   make(chan time.Time, 64),
		probes: make(chan string, 64),
	}
	ro.Metrics = b.reg
	var runs int // Retried instances are replaced after a panic: count here
	b.s = runtimetest.Start(t, runtimetest.Options{
		Clock:   b.clock,
		Runtime: ro,
		Register: func(r *runtime.Registry) {
			r.Register("Retried", func(st *runtime.State) (runtime.Object, error) {
				return &retried{alarmSetter{st}, func() error {
					runs++ // OnAlarm runs one at a time
					b.runs <- st.Now()
					if fails >= 0 && runs > fails {
						return nil
					}
					if panics {
						panic(fmt.Sprintf("alarm run %d panics", runs))
					}
					return fmt.Errorf("alarm run %d fails", runs)
				}}, nil
			})
			r.Register("Probe", func(st *runtime.State) (runtime.Object, error) {
				return &probe{alarmSetter{st}, b.probes}, nil
			})
		},
	})
	return b
}

// setAlarm sets the alarm of the object at path to at.
func (b *alarmBench) setAlarm(path string, at time.Time) {
	b.t.Helper()
	if code, f := b.s.Do(http.MethodPost, path+"?at="+url.QueryEscape(at.Format(time.RFC3339Nano)), nil); code != http.StatusOK {
		b.t.Fatalf("set alarm of %s: %d %v", path, code, f)
	}
}

// runAt checks that Retried's alarm runs when the clock reaches due and
// not a moment before.
func (b *alarmBench) runAt(path string, due time.Time, what string) {
	b.t.Helper()
	b.clock.Advance(due.Sub(b.clock.Now()) - time.Millisecond)
	b.expectNoRun(path, fmt.Sprintf("%s, 1ms before it is due at %v", what, due))
	b.clock.Advance(time.Millisecond)
	if got := b.nextRun(fmt.Sprintf("%s, due at %v", what, due)); !got.Equal(due) {
		b.t.Fatalf("%s at %v, want %v", what, got, due)
	}
}

// storedAlarm reads the durable alarm of the object called name.
func (b *alarmBench) storedAlarm(class, name string) (time.Time, bool) {
	b.t.Helper()
	ns, err := b.s.Runtime.Namespace(class)
	if err != nil {
		b.t.Fatal(err)
	}
	at, ok, err := b.s.Store.Alarm(storage.ObjectID(ns.IDFromName(name)))
	if err != nil {
		b.t.Fatalf("read the alarm of %s %s: %v", class, name, err)
	}
	return at, ok
}

// nextRun waits for the next run of Retried's alarm and returns the clock
// time it ran at.
func (b *alarmBench) nextRun(what string) time.Time {
	b.t.Helper()
	select {
	case at := <-b.runs:
		return at
	case <-time.After(runtimetest.Timeout):
		b.t.Fatalf("no alarm run within %v: waited for %s", runtimetest.Timeout, what)
		return time.Time{}
	}
}

// expectNoRun fails if Retried's alarm has run, or starts to, at the clock's
// present time. A Probe's alarm set for now proves that the scheduler has
// looked at its index at this time: alarms are dispatched in the order of
// their times, and Retried's is always the older, so had the scheduler
// found it due it would have been handed to Retried (at path) first. A
// request to Retried then queues behind any such event: once it is
// answered, a run would have been reported.
func (b *alarmBench) expectNoRun(path, what string) {
	b.t.Helper()
	b.probe++
	name := fmt.Sprintf("p%d", b.probe)
	b.setAlarm("/objects/Probe/"+name+"/", b.clock.Now())
	select {
	case got := <-b.probes:
		if got != name {
			b.t.Fatalf("probe %s ran, want %s", got, name)
		}
	case <-time.After(runtimetest.Timeout):
		b.t.Fatalf("probe %s's alarm did not run within %v (checking for no alarm run: %s)", name, runtimetest.Timeout, what)
	}
	if code, f := b.s.Do(http.MethodGet, path, nil); code != http.StatusOK {
		b.t.Fatalf("GET %s: %d %v", path, code, f)
	}
	select {
	case at := <-b.runs:
		b.t.Fatalf("alarm ran at %v: %s", at, what)
	default:
	}
}

// counter reads a runtime counter.
func (b *alarmBench) counter(name string) int {
	b.t.Helper()
	families, err := b.reg.Gather()
	if err != nil {
		b.t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name {
			var n float64
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue()
			}
			return int(n)
		}
	}
	b.t.Fatalf("no metric %s", name)
	return 0
}

// waitCounter waits until the runtime counter name reaches want.
func (b *alarmBench) waitCounter(name string, want int) {
	b.t.Helper()
	deadline := time.Now().Add(runtimetest.Timeout)
	for {
		got := b.counter(name)
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			b.t.Fatalf("%s = %d, waited for %d", name, got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// alarmSetter is the HTTP side of the test's alarm objects: POST ?at=TIME
// sets the alarm; GET answers {"alarm": TIME or null, "succeeded": N}.
type alarmSetter struct{ state *runtime.State }

func (a alarmSetter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := a.state.Storage()
	if r.Method == http.MethodPost {
		at, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("at"))
		if err == nil {
			err = st.SetAlarm(at)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
		return
	}
	at, set, err := st.GetAlarm()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n, _, err := runtime.GetJSON[int](st, "succeeded")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	alarm := "null"
	if set {
		alarm = `"` + at.Format(time.RFC3339Nano) + `"`
	}
	fmt.Fprintf(w, `{"alarm":%s,"succeeded":%d}`, alarm, n)
}

// retried runs its alarm handler and, when it succeeds, counts the
// success in storage (so a second success would show).
type retried struct {
	alarmSetter
	run func() error
}

func (o *retried) OnAlarm(ctx context.Context) error {
	if err := o.run(); err != nil {
		return err
	}
	st := o.state.Storage()
	n, _, err := runtime.GetJSON[int](st, "succeeded")
	if err != nil {
		return err
	}
	return runtime.PutJSON(st, "succeeded", n+1)
}

// probe reports its name when its alarm runs.
type probe struct {
	alarmSetter
	ran chan<- string
}

func (p *probe) OnAlarm(ctx context.Context) error {
	p.ran <- p.state.Name()
	return nil
}

// TestCloseStopsTheAlarmSchedulerBeforeItReturns: Close says the store is
// the caller's to close once it returns, so the alarm scheduler must have
// stopped using the store by then (Pebble panics on a read after Close).
// While the scheduler is held in a read of the alarm index, Close cannot
// report success; once the read ends, it can.
func TestCloseStopsTheAlarmSchedulerBeforeItReturns(t *testing.T) {
	store, err := storage.OpenPebble(t.TempDir(), storage.PebbleOptions{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	held := &heldAlarmRead{Store: store, entered: make(chan struct{}), release: make(chan struct{})}
	rt, err := runtime.New(runtime.Options{Store: held, Registry: runtime.NewRegistry()})
	if err != nil {
		t.Fatalf("start runtime: %v", err)
	}
	held.arm.Store(true)
	rt.CheckAlarms()
	select {
	case <-held.entered:
	case <-time.After(runtimetest.Timeout):
		t.Fatalf("the alarm scheduler did not read the alarm index within %v", runtimetest.Timeout)
	}

	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := rt.Close(done); err == nil {
		t.Fatal("Close reported success while the alarm scheduler was reading the store")
	}
	close(held.release)
	ctx, cancel := context.WithTimeout(context.Background(), runtimetest.Timeout)
	defer cancel()
	if err := rt.Close(ctx); err != nil {
		t.Fatalf("Close after the scheduler's read ended: %v", err)
	}
}

// heldAlarmRead holds the first Alarms call after arm is set until release
// is closed, telling entered when it starts.
type heldAlarmRead struct {
	storage.Store
	arm     atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h *heldAlarmRead) Alarms(until time.Time, limit int) ([]storage.Alarm, error) {
	if h.arm.CompareAndSwap(true, false) {
		close(h.entered)
		<-h.release
	}
	return h.Store.Alarms(until, limit)
}
