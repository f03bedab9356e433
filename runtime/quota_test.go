package runtime_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/runtimetest"
	"github.com/holocron-run/holocron/storage"
)

// A class with a limit (Registry.Limit) has at most that many objects: the
// event that would create one more is answered 429 limit_exceeded (an
// error frame on a socket) and writes nothing, while objects that exist go
// on, reads of objects that do not exist cost nothing, a client cannot
// claim places itself, and a deleted object gives its place back.
func TestClassLimit(t *testing.T) {
	var fired atomic.Int64
	s := runtimetest.Start(t, runtimetest.Options{
		Register: func(r *runtime.Registry) {
			r.Register("Counter", func(st *runtime.State) (runtime.Object, error) { return &counter{state: st, alarm: &fired}, nil })
			r.Limit("Counter", 2)
		},
	})
	post := func(name string) (int, runtimetest.Frame) {
		t.Helper()
		return s.Do("POST", "/objects/Counter/"+name+"/", nil)
	}
	for _, name := range []string{"a", "b", "a"} {
		if code, f := post(name); code != 200 {
			t.Fatalf("POST %s: %d %v", name, code, f)
		}
	}
	if code, f := post("c"); code != 429 || f.Str("code") != "limit_exceeded" {
		t.Fatalf("a third Counter: %d %v, want 429 limit_exceeded", code, f)
	}
	ns, err := s.Runtime.Namespace("Counter")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Store.Meta(storage.ObjectID(ns.IDFromName("c"))); err != nil || ok {
		t.Fatalf("the refused Counter c is in storage (%v, %v)", ok, err)
	}
	// Reading an object that does not exist creates nothing.
	if code, f := s.Do("GET", "/objects/Counter/nobody/", nil); code != 200 || f["n"] != 0.0 {
		t.Fatalf("GET of a Counter that does not exist: %d %v", code, f)
	}
	// A socket's message that would create one gets an error frame.
	c := s.Dial("/objects/Counter/d/websocket")
	c.Expect("hello")
	c.Send(map[string]any{"type": "inc"})
	if f := c.Expect("error"); f.Str("code") != "limit_exceeded" {
		t.Fatalf("frame %v, want limit_exceeded", f)
	}
	// A client cannot take a place (or give one back) itself.
	if code, _ := s.Do("POST", "/objects/"+runtime.QuotaClass+"/Counter/claim", nil); code != 403 {
		t.Fatalf("a client's claim: %d, want 403", code)
	}
	// A deleted object frees its place.
	if err := ns.Forget(context.Background(), ns.IDFromName("a")); err != nil {
		t.Fatal(err)
	}
	if code, f := post("c"); code != 200 {
		t.Fatalf("a Counter after one was deleted: %d %v", code, f)
	}
	if code, f := post("e"); code != 429 {
		t.Fatalf("a Counter beyond the limit again: %d %v", code, f)
	}
}
