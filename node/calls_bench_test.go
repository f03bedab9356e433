package node_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/holocron-run/holocron/internal/proctest"
)

// BenchmarkCalls measures object-to-object calls (runtime.Stub.Fetch) from
// a Caller to a Callee that makes one durable write per call: on one node,
// and with the two objects on different nodes of a 3-node cluster (the
// call crosses the peer link, mutual TLS, and the callee's write is
// replicated by Raft before it answers). One client request makes 100
// calls in one event of the caller, one after another (calls from one
// stub are sequential), so the figures are of one caller: calls/s is
// 1 / the mean latency. Build the node without the race detector:
//
//	HOLOCRON_TEST_NORACE=1 go test -run '^$' -bench Calls -benchtime 2000x ./node
func BenchmarkCalls(b *testing.B) {
	b.Run("one-node", func(b *testing.B) {
		n := proctest.Start(b, callNode, proctest.FreeAddr(b), b.TempDir())
		benchCalls(b, n, "b")
	})
	b.Run("across-nodes", func(b *testing.B) {
		c := proctest.StartCluster(b, callNode, 3)
		owner := c.LeaderOf("Caller", "a")
		callee := ""
		for i := 0; callee == ""; i++ {
			if name := fmt.Sprint("b", i); c.LeaderOf("Callee", name) != owner {
				callee = name
			}
		}
		benchCalls(b, c.Nodes[owner], callee)
	})
}

func benchCalls(b *testing.B, n *proctest.Proc, callee string) {
	const perRequest = 100
	var micros []int64
	call := func(times int) {
		var res callAnswer
		if code := askB(b, n, fmt.Sprintf("/objects/Caller/a/call/%s/count?timing=1&times=%d", callee, times), &res); code != 200 || res.Err != "" {
			b.Fatalf("calls: %d %+v", code, res)
		}
		micros = append(micros, res.Micros...)
	}
	call(perRequest) // warm: objects built, connections open
	micros = micros[:0]
	b.ResetTimer()
	start := time.Now()
	for left := b.N; left > 0; left -= perRequest {
		call(min(left, perRequest))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(micros)
	b.ReportMetric(float64(len(micros))/elapsed.Seconds(), "calls/s")
	b.ReportMetric(float64(micros[len(micros)/2]), "p50-µs")
	b.ReportMetric(float64(micros[len(micros)*99/100]), "p99-µs")
}
