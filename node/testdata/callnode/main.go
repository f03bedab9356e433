// Command callnode is a Holocron node (package node) whose only types are
// defined here, for the object-call tests of package node: an author's
// types, on a cluster started the README's way.
//
// Caller, POST /call/{callee}/{path}?times=N&after_ms=A&timeout_ms=T:
// counts one more intent (key "intent", a write the calls must not
// overtake), calls Callee {callee} at /{path}?seq=i&intent=k N times, then
// holds its event A ms longer, and answers what came back (or the call's
// error); with &timing=1 it answers each call's duration instead (µs,
// "micros"). GET /intent answers the count. POST /inc counts (what a
// callee's call back does).
//
// Callee, POST /log?seq=i&intent=k&hold_ms=H: appends "k/i" to its log,
// holds its answer H ms, and answers the log with who called; GET /log
// answers the log. POST /count counts (a durable write, for the call
// benchmark). /back calls the caller back (POST /inc).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/holocron-run/holocron/node"
	"github.com/holocron-run/holocron/runtime"
)

func main() {
	os.Exit(node.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv, node.Types{
		Register: func(r *runtime.Registry) error {
			r.Register("Caller", func(st *runtime.State) (runtime.Object, error) { return &caller{st}, nil })
			r.Register("Callee", func(st *runtime.State) (runtime.Object, error) { return &callee{st}, nil })
			return nil
		},
	}))
}

type caller struct{ state *runtime.State }

// result is what a caller answers.
type result struct {
	Answers   []json.RawMessage `json:"answers"`
	Micros    []int64           `json:"micros,omitempty"`
	Err       string            `json:"err,omitempty"`
	Code      string            `json:"code,omitempty"`
	NotServed bool              `json:"notServed"`
}

func (c *caller) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := c.state.Storage()
	switch {
	case r.URL.Path == "/intent":
		n, _, _ := runtime.GetJSON[int](st, "intent")
		fmt.Fprintf(w, `{"intent":%d}`, n)
	case r.URL.Path == "/inc":
		n, _, _ := runtime.GetJSON[int](st, "n")
		runtime.PutJSON(st, "n", n+1)
		fmt.Fprintf(w, `{"n":%d}`, n+1)
	case strings.HasPrefix(r.URL.Path, "/call/"):
		name, path, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/call/"), "/")
		q := r.URL.Query()
		intent, _, _ := runtime.GetJSON[int](st, "intent")
		intent++
		runtime.PutJSON(st, "intent", intent)
		ctx := r.Context()
		if ms, err := strconv.Atoi(q.Get("timeout_ms")); err == nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
			defer cancel()
		}
		stub := c.state.Namespace("Callee").GetByName(name)
		times, _ := strconv.Atoi(q.Get("times"))
		var res result
		for i := range max(times, 1) {
			v := fmt.Sprintf("seq=%d&intent=%d&hold_ms=%s", i, intent, q.Get("hold_ms"))
			req, _ := http.NewRequest(http.MethodPost, "/"+path+"?"+v, nil)
			began := time.Now()
			resp, err := stub.Fetch(ctx, req)
			if q.Get("timing") != "" && err == nil {
				res.Micros = append(res.Micros, time.Since(began).Microseconds())
				resp.Body.Close()
				continue
			}
			if err != nil {
				res.Err = err.Error()
				var ce *runtime.CallError
				if errors.As(err, &ce) {
					res.Code = ce.Code
				}
				res.NotServed = errors.Is(err, runtime.ErrNotServed)
				break
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !json.Valid(b) {
				b, _ = json.Marshal(fmt.Sprintf("%d %s", resp.StatusCode, b))
			}
			res.Answers = append(res.Answers, b)
		}
		if ms, err := strconv.Atoi(q.Get("after_ms")); err == nil {
			time.Sleep(time.Duration(ms) * time.Millisecond) // the event goes on after its calls
		}
		json.NewEncoder(w).Encode(res)
	default:
		http.NotFound(w, r)
	}
}

type callee struct{ state *runtime.State }

func (c *callee) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := c.state.Storage()
	who, called := runtime.CallerFrom(r.Context())
	switch r.URL.Path {
	case "/log":
		log, _, _ := runtime.GetJSON[[]string](st, "log")
		if r.Method == http.MethodPost {
			q := r.URL.Query()
			log = append(log, q.Get("intent")+"/"+q.Get("seq"))
			runtime.PutJSON(st, "log", log)
			if ms, err := strconv.Atoi(q.Get("hold_ms")); err == nil {
				select {
				case <-time.After(time.Duration(ms) * time.Millisecond):
				case <-r.Context().Done():
				}
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"log": log, "called": called, "callerClass": who.Class, "callerName": who.Name})
	case "/count":
		n, _, _ := runtime.GetJSON[int](st, "count")
		runtime.PutJSON(st, "count", n+1)
		fmt.Fprintf(w, `{"count":%d}`, n+1)
	case "/back":
		resp, err := c.state.Namespace(who.Class).GetByName(who.Name).Fetch(r.Context(), mustRequest("/inc"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Fprintf(w, `{"back":%s}`, b)
	default:
		http.NotFound(w, r)
	}
}

func mustRequest(path string) *http.Request {
	r, err := http.NewRequest(http.MethodPost, path, nil)
	if err != nil {
		panic(err)
	}
	return r
}
