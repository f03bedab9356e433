package runtime_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
	"github.com/holocron-run/holocron/storage"
)

// slowStore delays every commit and records, per batch, when its commit
// completed, so a test can check that nothing left before that.
type slowStore struct {
	storage.Store
	delay     time.Duration
	durable   atomic.Int64 // batches whose commit completed
	submitted atomic.Int64
	maxAhead  atomic.Int64 // most batches submitted but not yet durable
	fail      atomic.Bool
	failWith  atomic.Value // error; "injected commit failure" when unset
}

func (s *slowStore) Commit(b *storage.Batch, done func(error)) {
	n := s.submitted.Add(1)
	if ahead := n - s.durable.Load(); ahead > s.maxAhead.Load() {
		s.maxAhead.Store(ahead)
	}
	go func() {
		time.Sleep(s.delay) // simulated slow disk, not a test wait
		if s.fail.Load() {
			err, _ := s.failWith.Load().(error)
			done(cmp.Or(err, errors.New("injected commit failure")))
			return
		}
		s.Store.Commit(b, func(err error) {
			s.durable.Add(1)
			done(err)
		})
	}()
}

// startSlowCounter runs the counter object over slow, which wraps the
// server's real store.
func startSlowCounter(t *testing.T, slow *slowStore) *runtimetest.Server {
	t.Helper()
	var fired atomic.Int64
	return runtimetest.Start(t, runtimetest.Options{
		WrapStore: func(st storage.Store) storage.Store { slow.Store = st; return slow },
		Register: func(r *runtime.Registry) {
			r.Register("Counter", func(st *runtime.State) (runtime.Object, error) {
				return &counter{state: st, alarm: &fired}, nil
			})
		},
	})
}

func TestOutputGateHoldsFramesUntilDurable(t *testing.T) {
	slow := &slowStore{delay: 30 * time.Millisecond}
	s := startSlowCounter(t, slow)
	c := s.Dial("/objects/Counter/gate/websocket")
	c.Expect("hello")
	const n = 20
	for range n {
		c.Send(map[string]any{"type": "inc"})
	}
	for i := 1; i <= n; i++ {
		f := c.Expect("count")
		if got := slow.durable.Load(); got < int64(i) {
			t.Fatalf("frame for write %d arrived when only %d writes were durable", i, got)
		}
		if f["n"] != float64(i) {
			t.Fatalf("count %v, want %d", f["n"], i)
		}
	}
	// The object kept running while its writes were on their way to disk:
	// several batches were in flight at once (pipelining into group commit).
	if slow.maxAhead.Load() < 2 {
		t.Fatalf("at most %d batch in flight; the actor waited for each commit", slow.maxAhead.Load())
	}
}

func TestFailedCommitDropsOutputsAndClosesSockets(t *testing.T) {
	slow := &slowStore{}
	s := startSlowCounter(t, slow)
	c := s.Dial("/objects/Counter/fail/websocket")
	c.Expect("hello")
	slow.fail.Store(true)
	c.Send(map[string]any{"type": "inc"})
	f, err := c.TryRead()
	if err == nil {
		t.Fatalf("got frame %v for a write that never became durable", f)
	}
	slow.fail.Store(false)
	// The object recovers from durable state: the failed write is gone.
	if code, f := s.Do("GET", "/objects/Counter/fail/", nil); code != 200 || f["n"] != float64(0) {
		t.Fatalf("after failed commit: %d %v, want n=0", code, f)
	}
	code, f := s.Do("POST", "/objects/Counter/fail/", nil)
	if code != 200 || f["n"] != float64(1) {
		t.Fatalf("after recovery: %d %v", code, f)
	}
}

// A request whose batch the store refused before writing it anywhere says
// so (HeaderNotServed), which lets a forwarding node send it to the
// object's new owner; one whose batch may yet be written must not.
func TestFailedCommitTellsWhetherNothingWasWritten(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		notWritten bool
	}{
		{"refused before the log", fmt.Errorf("%w: %w", storage.ErrNotOwner, storage.ErrNotWritten), true},
		{"leadership lost while in flight", storage.ErrNotOwner, false},
		{"disk failure", errors.New("injected commit failure"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slow := &slowStore{}
			s := startSlowCounter(t, slow)
			slow.failWith.Store(tt.err)
			slow.fail.Store(true)
			resp, err := http.Post(s.URL+"/objects/Counter/refused/", "application/json", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", resp.StatusCode)
			}
			if got := resp.Header.Get(runtime.HeaderNotServed) != ""; got != tt.notWritten {
				t.Fatalf("%s present: %v, want %v", runtime.HeaderNotServed, got, tt.notWritten)
			}
		})
	}
}

func TestFailingAlarmIsRetried(t *testing.T) {
	var fired atomic.Int64
	var calls atomic.Int64
	s := runtimetest.Start(t, runtimetest.Options{
		Register: func(r *runtime.Registry) {
			r.Register("Counter", func(st *runtime.State) (runtime.Object, error) {
				return &flaky{counter: counter{state: st, alarm: &fired}, calls: &calls}, nil
			})
		},
	})
	s.Do("POST", "/objects/Counter/retry/alarm?in=1ms", nil)
	deadline := time.Now().Add(runtimetest.Timeout)
	for fired.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("alarm not retried: %d calls", calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if calls.Load() != 2 {
		t.Fatalf("alarm handler called %d times, want 2 (one failure, one retry)", calls.Load())
	}
}

// flaky fails its first alarm, then succeeds.
type flaky struct {
	counter
	calls *atomic.Int64
}

func (f *flaky) OnAlarm(ctx context.Context) error {
	if f.calls.Add(1) == 1 {
		return errors.New("first attempt fails")
	}
	return f.counter.OnAlarm(ctx)
}

// An object cannot claim that its request left no trace: the header that
// lets a forwarding node send a request again is the runtime's alone.
func TestObjectCannotSetHeaderNotServed(t *testing.T) {
	s := runtimetest.Start(t, runtimetest.Options{
		Register: func(r *runtime.Registry) {
			r.Register("Liar", func(st *runtime.State) (runtime.Object, error) {
				return liar{}, nil
			})
		},
	})
	resp, err := http.Get(s.URL + "/objects/Liar/x/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want the object's 503", resp.StatusCode)
	}
	if v := resp.Header.Get(runtime.HeaderNotServed); v != "" {
		t.Fatalf("%s: %q reached the client from object code", runtime.HeaderNotServed, v)
	}
}

type liar struct{}

func (liar) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(runtime.HeaderNotServed, "1")
	w.WriteHeader(http.StatusServiceUnavailable)
}
