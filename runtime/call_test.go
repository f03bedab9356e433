package runtime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
	"github.com/holocron-run/holocron/storage"
)

// caller and callee are the two sides of the call tests. A caller's
// POST /call/{callee name}/{path} writes "before", calls the callee with
// that path and answers what the callee answered (or the call's error),
// then writes "after". The callee answers who called it and its own name,
// and keeps a log of the "seq" values it was sent.
type caller struct {
	state *runtime.State
	// stub is a stub kept across events (with ?cached=1), as an object
	// that calls one other object keeps it.
	stub *runtime.Stub
}

// callResult is what a caller answers.
type callResult struct {
	Status    int             `json:"status"`
	Body      json.RawMessage `json:"body,omitempty"`
	Err       string          `json:"err,omitempty"`
	Code      string          `json:"code,omitempty"`
	NotServed bool            `json:"notServed"`
	Deadline  bool            `json:"deadline"`
}

func (c *caller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := c.state.Storage()
	switch {
	case r.URL.Path == "/count":
		n, _, _ := runtime.GetJSON[int](st, "n")
		fmt.Fprintf(w, `{"n":%d}`, n)
	case r.URL.Path == "/relay":
		// A callee's call back that calls the callee again, through the
		// stub the waiting event holds (A→B→A→B).
		resp, err := c.stub.Fetch(r.Context(), mustRequest(http.MethodPost, "/log?seq=relayed"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		w.Write(b)
	case r.URL.Path == "/inc":
		// What a callee's call back (re-entrancy) does.
		n, _, _ := runtime.GetJSON[int](st, "n")
		runtime.PutJSON(st, "n", n+1)
		fmt.Fprintf(w, `{"n":%d}`, n+1)
	case strings.HasPrefix(r.URL.Path, "/call/"):
		name, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/call/"), "/")
		runtime.PutJSON(st, "before", true)
		ctx := r.Context()
		if ms, err := strconv.Atoi(r.URL.Query().Get("timeout_ms")); err == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
			defer cancel()
		}
		stub := c.state.Namespace(r.URL.Query().Get("class")).GetByName(name)
		if r.URL.Query().Get("cached") != "" {
			if c.stub == nil {
				c.stub = stub
			}
			stub = c.stub
		}
		var res callResult
		times := max(1, atoiOr(r.URL.Query().Get("times"), 1))
		for i := range times {
			req, _ := http.NewRequest(http.MethodPost, "/"+path+"?seq="+strconv.Itoa(i), strings.NewReader("hello"))
			var resp *http.Response
			var err error
			if r.URL.Query().Get("in_tx") != "" {
				st.Transaction(func(*runtime.Storage) error {
					resp, err = stub.Fetch(ctx, req)
					return nil
				})
			} else {
				resp, err = stub.Fetch(ctx, req)
			}
			if err != nil {
				res.Err = err.Error()
				var ce *runtime.CallError
				if errors.As(err, &ce) {
					res.Code = ce.Code
				}
				res.NotServed = errors.Is(err, runtime.ErrNotServed)
				res.Deadline = errors.Is(err, context.DeadlineExceeded)
				break
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			res.Status, res.Body = resp.StatusCode, body
		}
		runtime.PutJSON(st, "after", true)
		json.NewEncoder(w).Encode(res)
	default:
		http.NotFound(w, r)
	}
}

func atoiOr(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

type callee struct {
	state *runtime.State
	// durable reads the store under the runtime (nil: not checked).
	durable func(storage.ObjectID, string) bool
	// release, when set, is what /slow waits for.
	release chan struct{}
}

func (c *callee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := c.state.Storage()
	body, _ := io.ReadAll(r.Body)
	who, ok := runtime.CallerFrom(r.Context())
	out := map[string]any{"self": c.state.Name(), "called": ok, "body": string(body)}
	if ok {
		out["callerClass"], out["callerName"] = who.Class, who.Name
		if c.durable != nil {
			// The output gate: the caller's writes before the call are on
			// disk before the call arrives.
			out["callerBeforeDurable"] = c.durable(storage.ObjectID(who.ID), "before")
		}
	}
	switch r.URL.Path {
	case "/log":
		log, _, _ := runtime.GetJSON[[]string](st, "log")
		log = append(log, r.URL.Query().Get("seq"))
		runtime.PutJSON(st, "log", log)
		out["log"] = log
	case "/back":
		// Call the caller back: A→B→A.
		resp, err := c.state.Namespace(who.Class).GetByName(who.Name).Fetch(r.Context(), mustRequest(http.MethodPost, "/inc"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out["back"] = json.RawMessage(b)
	case "/back2":
		resp, err := c.state.Namespace(who.Class).GetByName(who.Name).Fetch(r.Context(), mustRequest(http.MethodPost, "/relay"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out["relayed"] = json.RawMessage(b)
	case "/slow":
		select {
		case <-c.release:
		case <-time.After(runtimetest.Timeout):
		}
	case "/teapot":
		w.WriteHeader(http.StatusTeapot)
	}
	json.NewEncoder(w).Encode(out)
}

func mustRequest(method, path string) *http.Request {
	r, err := http.NewRequest(method, path, nil)
	if err != nil {
		panic(err)
	}
	return r
}

// startCallers runs Caller and Callee objects on one node.
func startCallers(t *testing.T, release chan struct{}) *runtimetest.Server {
	t.Helper()
	var srv *runtimetest.Server
	var mu sync.Mutex
	durable := func(obj storage.ObjectID, key string) bool {
		mu.Lock()
		s := srv
		mu.Unlock()
		_, ok, err := s.Store.Get(obj, key)
		return err == nil && ok
	}
	s := runtimetest.Start(t, runtimetest.Options{
		// Every commit takes a while, so that a call that did not wait
		// for its caller's writes would overtake them.
		WrapStore: func(st storage.Store) storage.Store { return &slowStore{Store: st, delay: 30 * time.Millisecond} },
		Register: func(r *runtime.Registry) {
			r.Register("Caller", func(st *runtime.State) (runtime.Object, error) { return &caller{state: st}, nil })
			r.Register("Callee", func(st *runtime.State) (runtime.Object, error) {
				return &callee{state: st, durable: durable, release: release}, nil
			})
		},
	})
	mu.Lock()
	srv = s
	mu.Unlock()
	return s
}

// call asks caller a to make a call and returns its result.
func call(t *testing.T, s *runtimetest.Server, query string) callResult {
	t.Helper()
	resp, err := http.Post(s.URL+"/objects/Caller/a/call/"+query, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("caller answered %d: %s", resp.StatusCode, b)
	}
	var res callResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		t.Fatal(err)
	}
	return res
}

// A call is an event of the callee, which sees who called (and its own
// name) and gets the body; the caller's writes before the call are
// durable before it arrives; the callee's status comes back as it is.
func TestCallReachesTheCallee(t *testing.T) {
	s := startCallers(t, nil)
	for _, tc := range []struct {
		path   string
		status int
	}{{"log", http.StatusOK}, {"teapot", http.StatusTeapot}} {
		res := call(t, s, "b/"+tc.path+"?class=Callee")
		if res.Err != "" || res.Status != tc.status {
			t.Fatalf("%s: %+v, want status %d", tc.path, res, tc.status)
		}
		var got map[string]any
		if err := json.Unmarshal(res.Body, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"self": "b", "called": true, "callerClass": "Caller", "callerName": "a", "callerBeforeDurable": true, "body": "hello"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: callee saw %s = %v, want %v (all: %v)", tc.path, k, got[k], v, got)
			}
		}
	}
	// A client's request is no call, whatever headers it sends.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/objects/Callee/b/log", nil)
	req.Header.Set("X-Holocron-Caller-Class", "Caller")
	req.Header.Set("X-Holocron-Caller-Id", runtime.ID{}.String())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	json.NewDecoder(resp.Body).Decode(&got)
	if got["called"] != false {
		t.Fatalf("a client's request with caller headers looked like a call: %v", got)
	}
}

// Calls from one stub arrive in the order made.
func TestCallsOfOneStubArriveInOrder(t *testing.T) {
	s := startCallers(t, nil)
	res := call(t, s, "b/log?class=Callee&times=20")
	if res.Err != "" {
		t.Fatal(res.Err)
	}
	var got struct{ Log []string }
	if err := json.Unmarshal(res.Body, &got); err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 20 {
		want = append(want, strconv.Itoa(i))
	}
	if strings.Join(got.Log, ",") != strings.Join(want, ",") {
		t.Fatalf("callee's log %v, want %v", got.Log, want)
	}
}

// A→B→A: B's call back to A, made while A waits for B, is handled by A at
// once (call-chain re-entrancy), and its write is seen by A's event after
// the call.
func TestCallBackIntoTheWaitingCaller(t *testing.T) {
	s := startCallers(t, nil)
	for i := 1; i <= 3; i++ {
		res := call(t, s, "b/back?class=Callee")
		if res.Err != "" || res.Status != http.StatusOK {
			t.Fatalf("round %d: %+v", i, res)
		}
		var got struct {
			Back struct{ N int }
		}
		if err := json.Unmarshal(res.Body, &got); err != nil {
			t.Fatal(err)
		}
		if got.Back.N != i {
			t.Fatalf("round %d: the call back counted %d, want %d", i, got.Back.N, i)
		}
	}
	resp, err := http.Get(s.URL + "/objects/Caller/a/count")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var n struct{ N int }
	json.NewDecoder(resp.Body).Decode(&n)
	if n.N != 3 {
		t.Fatalf("caller's count %d after three calls back, want 3", n.N)
	}
}

// A call ends with its context: the caller gets a *CallError that says
// the outcome is unknown (the callee may still run it), not "not served".
func TestCallDeadline(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	s := startCallers(t, release)
	res := call(t, s, "b/slow?class=Callee&timeout_ms=100")
	if !res.Deadline || res.NotServed || res.Code != "request_timeout" {
		t.Fatalf("call past its deadline: %+v, want a request_timeout matching context.DeadlineExceeded, not 'not served'", res)
	}
}

// Calls that no object ran say so: safe to send again.
func TestCallErrors(t *testing.T) {
	s := startCallers(t, nil)
	for _, tc := range []struct {
		query, code string
	}{
		{"b/log?class=Nope", "not_found"},
		{"b/log?class=Callee&in_tx=1", "call_outside_event"},
	} {
		res := call(t, s, tc.query)
		if !res.NotServed || res.Code != tc.code {
			t.Errorf("%s: %+v, want code %s, not served", tc.query, res, tc.code)
		}
	}
}

// A→B→A→B through one stub the caller keeps: the re-entrant event of A
// calls B with the stub its waiting event is calling through, and B, which
// waits on A, handles it at once. No lock of the stub's stands in the way.
func TestCallThroughAKeptStubFromAReentrantEvent(t *testing.T) {
	s := startCallers(t, nil)
	res := call(t, s, "b/back2?class=Callee&cached=1&timeout_ms=5000")
	if res.Err != "" || res.Status != http.StatusOK {
		t.Fatalf("A→B→A→B: %+v", res)
	}
	var got struct {
		Relayed struct{ Log []string }
	}
	if err := json.Unmarshal(res.Body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Relayed.Log) != 1 || got.Relayed.Log[0] != "relayed" {
		t.Fatalf("the relayed call's log %v, want [relayed]", got.Relayed.Log)
	}
}
