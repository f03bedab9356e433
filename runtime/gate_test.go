package runtime_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holocron-run/holocron/protocol"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
	"github.com/holocron-run/holocron/storage"
)

// slowStore delays every commit and records, per batch, when its commit
// completed, so a test can check that nothing left before that. While fail
// is set it fails commits with failWith and commits again once it is
// cleared, which the real store never does (its failure is for good): it
// stands in only for errors the local store cannot return, those of a
// replicated store. Disk failures are the real store's to show
// (TestFailedCommitDropsOutputsAndRefusesLaterCommits).
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

// TestFailedCommitDropsOutputsAndRefusesLaterCommits makes a real Pebble
// store fail as a failing disk makes it fail (Pebble's errorfs under it) and
// checks what the runtime does then. The event whose batch failed releases
// nothing: its frame never leaves, the socket closes with 1011, and a
// request gets a 503 "unavailable" to retry later. The store refuses every
// later commit, for good, even once the disk works again (a later batch may
// rest on the lost writes, and after a failed write the WAL's state is
// unknown), so nothing is acknowledged from then on, and nothing hangs
// either. There is no recovery short of a restart: a store reopened on the
// same directory serves again, with every acknowledged write in it.
func TestFailedCommitDropsOutputsAndRefusesLaterCommits(t *testing.T) {
	onLog := func(op errorfs.Op) bool { return strings.HasSuffix(op.Path, ".log") }
	tests := []struct {
		name string
		// fails tells which file operations fail while the fault is on.
		fails func(op errorfs.Op) bool
	}{
		// The alarm's old index entry, to be replaced, is read while the
		// batch is built (a Get from a table file, there being no cache).
		{"a table read fails while the batch is built", func(op errorfs.Op) bool {
			return op.Kind == errorfs.OpFileReadAt && strings.HasSuffix(op.Path, ".sst")
		}},
		{"the WAL write fails", func(op errorfs.Op) bool {
			return op.Kind == errorfs.OpFileWrite && onLog(op)
		}},
		{"the WAL fsync fails", func(op errorfs.Op) bool {
			switch op.Kind {
			case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
				return onLog(op)
			}
			return false
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			disk := &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
				if tt.fails(op) {
					return errorfs.ErrInjected
				}
				return nil
			})}
			s := runtimetest.Start(t, runtimetest.Options{
				// No block cache: every read of a table file reaches the disk.
				Pebble: storage.PebbleOptions{FS: errorfs.Wrap(vfs.Default, disk), CacheBytes: 1},
				// What the runtime logged belongs with the test's output.
				Runtime: runtime.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))},
				Register: func(r *runtime.Registry) {
					r.Register("Tally", newTally)
				},
			})
			const path = "/objects/Tally/t/"
			c := s.Dial(path + "websocket")
			c.Expect("hello")
			c.Send(map[string]any{"type": "inc"})
			if f := c.Expect("count"); f["n"] != float64(1) {
				t.Fatalf("first increment: %v", f)
			}
			if code, f := s.Do(http.MethodPost, path, nil); code != http.StatusOK || f["n"] != float64(2) {
				t.Fatalf("second increment: %d %v", code, f)
			}
			const acked = 2
			// Everything so far into a table file, for the read to fail,
			// and the file opened by a read: a table whose opening fails
			// stays unreadable, so the object's constructor would fail
			// too (500), not only the commit.
			if err := s.Store.Flush(); err != nil {
				t.Fatalf("flush: %v", err)
			}
			if code, f := s.Do(http.MethodGet, path, nil); code != http.StatusOK || f["n"] != float64(acked) {
				t.Fatalf("read after the flush: %d %v", code, f)
			}

			disk.On()
			c.Send(map[string]any{"type": "inc"})
			if f, err := c.TryRead(); !websocket.IsCloseError(err, protocol.CloseInternalError) {
				t.Fatalf("after the failed commit: frame %v, err %v; want no frame and a close with %d", f, err, protocol.CloseInternalError)
			}
			if s.Store.Err() == nil {
				t.Fatal("the store did not fail: the fault injected nothing")
			}
			disk.Off() // the disk works again; the store stays failed

			// From now on the object cannot even read its state (a read
			// could show the write that failed: Pebble made it visible
			// before it learned of the failure). Every request is answered
			// unavailable, with Retry-After, at once: none hangs, none
			// shows the failed write.
			code, hdr, f := post(t, s.URL+path)
			if code != http.StatusServiceUnavailable || f.Str("code") != "unavailable" || hdr.Get("Retry-After") == "" {
				t.Fatalf("write after the failure: %d, Retry-After %q, %v; want 503 unavailable with Retry-After", code, hdr.Get("Retry-After"), f)
			}
			if code, f := s.Do(http.MethodGet, path, nil); code != http.StatusServiceUnavailable || f.Str("code") != "unavailable" {
				t.Fatalf("read after the failure: %d %v; want 503 unavailable", code, f)
			}
			ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+path+"websocket", nil)
			if err == nil {
				ws.Close()
				t.Fatal("a WebSocket to the object was accepted after the failure")
			}
			if resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("WebSocket after the failure: %v (response %v); want 503", err, resp)
			}

			s.Restart()
			code, got := s.Do(http.MethodGet, path, nil)
			n, _ := got["n"].(float64)
			// The failed write may be there or not (it was answered as
			// failed, not as undone); the acknowledged ones must be.
			if code != http.StatusOK || n < acked || n > acked+1 {
				t.Fatalf("after restart: %d %v, want n = %d or %d", code, got, acked, acked+1)
			}
			if code, f := s.Do(http.MethodPost, path, nil); code != http.StatusOK || f["n"] != n+1 {
				t.Fatalf("write after restart: %d %v, want n = %v", code, f, n+1)
			}
		})
	}
}

// tally counts increments (WebSocket messages and POSTs), keeping the count
// in memory from its constructor on, and pushes its alarm an hour past each
// increment, as a room that expires when idle would. So an increment reads
// nothing while it runs, but its commit does: the store replaces the
// alarm's old index entry.
type tally struct {
	state *runtime.State
	n     int
}

func newTally(st *runtime.State) (runtime.Object, error) {
	n, _, err := runtime.GetJSON[int](st.Storage(), "n")
	if err != nil {
		return nil, fmt.Errorf("load tally: %w", err)
	}
	return &tally{state: st, n: n}, nil
}

// inc counts one more. The in-memory count runs ahead of storage only until
// the commit: if that fails, the instance is replaced.
func (o *tally) inc() int {
	st := o.state.Storage()
	if err := runtime.PutJSON(st, "n", o.n+1); err != nil {
		panic(err)
	}
	if err := st.SetAlarm(o.state.Now().Add(time.Hour)); err != nil {
		panic(err)
	}
	o.n++
	return o.n
}

// ServeHTTP: GET / reads the count from storage, POST / increments it,
// /websocket accepts a socket.
func (o *tally) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/websocket":
		ws, err := o.state.AcceptWebSocket(w, r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ws.Send([]byte(`{"type":"hello"}`))
	case r.Method == http.MethodPost:
		fmt.Fprintf(w, `{"n":%d}`, o.inc())
	default:
		n, _, err := runtime.GetJSON[int](o.state.Storage(), "n")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, `{"n":%d}`, n)
	}
}

func (o *tally) OnMessage(ctx context.Context, ws *runtime.WebSocket, msg runtime.Message) {
	ws.Send([]byte(`{"type":"count","n":` + strconv.Itoa(o.inc()) + `}`))
}

func (o *tally) OnClose(ctx context.Context, ws *runtime.WebSocket, code int, reason string) {}

func (o *tally) OnError(ctx context.Context, ws *runtime.WebSocket, err error) {}

// post makes an empty POST to url and returns the status, headers and
// decoded JSON body.
func post(t *testing.T, url string) (int, http.Header, runtimetest.Frame) {
	t.Helper()
	client := &http.Client{Timeout: runtimetest.Timeout}
	resp, err := client.Post(url, "application/json", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var f runtimetest.Frame
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		t.Fatalf("POST %s: body: %v", url, err)
	}
	return resp.StatusCode, resp.Header, f
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

// leasedStore is a store whose lease can lapse (storage.Leased).
type leasedStore struct {
	storage.Store
	lapsed atomic.Bool
}

func (s *leasedStore) Serves(storage.ObjectID) bool { return !s.lapsed.Load() }

// An event that wrote nothing lets its answers out only while the store
// still holds the right to answer for the object: once the lease has
// lapsed (a node paused past it wakes up), a read is answered 503 not
// served (a forwarder or client sends it again, to the owner) and the
// object's sockets are closed 1012, never answered from state another
// owner may have moved past.
func TestAnswersOfReadsWaitForTheLease(t *testing.T) {
	leased := &leasedStore{}
	var fired atomic.Int64
	s := runtimetest.Start(t, runtimetest.Options{
		WrapStore: func(st storage.Store) storage.Store { leased.Store = st; return leased },
		Register: func(r *runtime.Registry) {
			r.Register("Counter", func(st *runtime.State) (runtime.Object, error) { return &counter{state: st, alarm: &fired}, nil })
		},
	})
	if code, f := s.Do("POST", "/objects/Counter/c/", nil); code != 200 || f["n"] != 1.0 {
		t.Fatalf("increment: %d %v", code, f)
	}
	ws := s.Dial("/objects/Counter/c/websocket")
	ws.Expect("hello")
	leased.lapsed.Store(true)
	req, _ := http.NewRequest("GET", s.URL+"/objects/Counter/c/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get(runtime.HeaderNotServed) == "" {
		t.Fatalf("a read after the lease lapsed: %d (not served %q), want 503 not served", resp.StatusCode, resp.Header.Get(runtime.HeaderNotServed))
	}
	if f, err := ws.TryRead(); !websocket.IsCloseError(err, protocol.CloseMoved) {
		t.Fatalf("socket after the lease lapsed: %v %v, want close %d (moved)", f, err, protocol.CloseMoved)
	}
	leased.lapsed.Store(false)
	if code, f := s.Do("GET", "/objects/Counter/c/", nil); code != 200 || f["n"] != 1.0 {
		t.Fatalf("a read with the lease back: %d %v", code, f)
	}
}
