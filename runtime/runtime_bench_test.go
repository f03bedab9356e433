package runtime_test

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/holocron-run/holocron/runtime"
)

// BenchmarkStub measures one object's actor: requests from many goroutines
// to the same object through Stub.ServeHTTP, in process (no network). A
// read is mailbox, dispatch and gate overhead alone; a write adds the
// durable commit, shared by the events that arrive during one fsync.
func BenchmarkStub(b *testing.B) {
	for _, bc := range []struct {
		name   string
		method string
	}{{"read", http.MethodGet}, {"write", http.MethodPost}} {
		b.Run(bc.name, func(b *testing.B) {
			var fired atomic.Int64
			s := startCounter(b, "", &fired, runtime.Options{})
			ns, err := s.Runtime.Namespace("Counter")
			if err != nil {
				b.Fatal(err)
			}
			stub := ns.GetByName("bench")
			b.SetParallelism(32) // 64 requests in flight on 2 cores
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					w := httptest.NewRecorder()
					stub.ServeHTTP(w, httptest.NewRequest(bc.method, "/", nil))
					if w.Code != http.StatusOK {
						b.Errorf("%s: %d %s", bc.method, w.Code, w.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
