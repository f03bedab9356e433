package bench

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// BenchmarkQuietSocketUnderFlood measures a well-behaved socket's ping→pong
// round trip to the lobby while another socket floods the same lobby with
// messages beyond the rate limit (100/s, burst 200: the excess is answered
// rate_limited and dropped). Compare with flood=off: the bound worth
// defending is that a flooder costs others little. The quiet socket pings
// 50 times a second, under the limit itself; run with -benchtime 300x.
func BenchmarkQuietSocketUnderFlood(b *testing.B) {
	for _, flood := range []bool{false, true} {
		name := "flood=off"
		if flood {
			name = "flood=on"
		}
		b.Run(name, func(b *testing.B) {
			// As holocron serve runs it: the limit in the runtime's socket
			// reader, the object's own limiter off.
			s := runtimetest.Start(b, runtimetest.Options{
				Runtime: runtime.Options{SocketRate: 100, SocketBurst: 200,
					RateLimitedReply: protocol.ErrorFrameJSON(protocol.Errorf(protocol.CodeRateLimited, "too many frames; slow down"))},
				Register: func(r *runtime.Registry) {
					r.Register(chatlobby.ClassName, chatlobby.New(chatlobby.Options{}))
				},
				Routes: []gateway.Route{{Prefix: "/api/lobby", Class: chatlobby.ClassName, Name: "main"}},
			})
			if code, f := s.Do("POST", "/api/lobby/rooms", map[string]any{"roomId": "bench", "name": "Bench"}); code != 201 {
				b.Fatalf("create room: %d %v", code, f)
			}
			var stop atomic.Bool
			var limited atomic.Int64
			var wg sync.WaitGroup
			if flood {
				flooder := join(b, s, "flooder")
				wg.Add(2)
				go func() { // writer: as fast as the socket takes them
					defer wg.Done()
					for !stop.Load() {
						if flooder.WS.WriteJSON(map[string]any{"type": "send_message", "roomId": "bench", "playerId": "flooder", "content": "spam"}) != nil {
							return
						}
					}
				}()
				go func() { // reader: count the refusals
					defer wg.Done()
					for {
						f, err := flooder.TryRead()
						if err != nil {
							return
						}
						if f.Type() == "error" && f.Str("code") == "rate_limited" {
							limited.Add(1)
						}
					}
				}()
			}
			quiet := join(b, s, "quiet")
			quiet.Sync() // drain its join frames
			rtts := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for range b.N {
				<-tick.C
				start := time.Now()
				quiet.Send(map[string]any{"type": "ping"})
				for quiet.Read().Type() != "pong" {
				}
				rtts = append(rtts, time.Since(start))
			}
			b.StopTimer()
			stop.Store(true)
			if flood {
				s.Close() // ends the flooder's socket
				wg.Wait()
				if limited.Load() == 0 {
					b.Fatal("the flood was never rate limited")
				}
				b.ReportMetric(float64(limited.Load()), "rate_limited")
			}
			slices.Sort(rtts)
			b.ReportMetric(float64(rtts[len(rtts)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(rtts[len(rtts)*99/100].Microseconds()), "p99-µs")
		})
	}
}
