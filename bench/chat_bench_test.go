// Package bench holds Holocron's in-process benchmarks: a real runtime over
// real Pebble (fsync on) behind a real HTTP server, driven by real WebSocket
// clients over loopback. Figures go to bench/RESULTS.md.
package bench

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

func startLobby(b *testing.B) *runtimetest.Server {
	b.Helper()
	s := runtimetest.Start(b, runtimetest.Options{
		Register: func(r *runtime.Registry) {
			r.Register(chatlobby.ClassName, chatlobby.New(chatlobby.Options{}))
		},
		Routes: []gateway.Route{{Prefix: "/api/lobby", Class: chatlobby.ClassName, Name: "main"}},
	})
	if code, f := s.Do("POST", "/api/lobby/rooms", map[string]any{"roomId": "bench", "name": "Bench", "maxParticipants": 10000}); code != 201 {
		b.Fatalf("create room: %d %v", code, f)
	}
	return s
}

// writeCalls returns the process's write system calls so far (Linux
// /proc/self/io), or -1 where that is not available. Unlike time, the
// number of writes per delivery does not depend on what else the machine
// is doing: it shows whether socket writes are coalesced.
func writeCalls() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "syscw: "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// reportWritesPer reports write system calls per unit since start.
func reportWritesPer(b *testing.B, start int64, units int64, unit string) {
	if end := writeCalls(); start >= 0 && end >= 0 && units > 0 {
		b.ReportMetric(float64(end-start)/float64(units), "writes/"+unit)
	}
}

func join(b *testing.B, s *runtimetest.Server, player string) *runtimetest.Conn {
	c := s.Dial("/api/lobby/websocket")
	c.Send(map[string]any{"type": "join_room", "roomId": "bench", "playerId": player, "playerName": player})
	for c.Read().Type() != "room_joined" {
	}
	return c
}

// BenchmarkDurableChat measures acknowledged (fsync'd, echoed) chat messages
// per second into one room with K concurrent senders, each sending its next
// message when the previous one came back. More senders per fsync is group
// commit at work: one room, many events per durable batch.
func BenchmarkDurableChat(b *testing.B) {
	for _, senders := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			s := startLobby(b)
			conns := make([]*runtimetest.Conn, senders)
			for i := range conns {
				conns[i] = join(b, s, fmt.Sprintf("s%d", i))
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, senders)
			b.ResetTimer()
			writes := writeCalls()
			for i, c := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					me := fmt.Sprintf("s%d", i)
					for n := next.Add(1); n <= int64(b.N); n = next.Add(1) {
						if err := c.WS.WriteJSON(map[string]any{"type": "send_message", "roomId": "bench", "playerId": me, "content": "hello world"}); err != nil {
							errs <- err
							return
						}
						for {
							f, err := c.TryRead()
							if err != nil {
								errs <- err
								return
							}
							if f.Type() == "new_message" && f.Obj("message").Str("senderId") == me {
								break
							}
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
			reportWritesPer(b, writes, int64(b.N), "msg")
		})
	}
}

// BenchmarkFanout measures deliveries per second from one sender to 100
// sockets in one room; the sender keeps up to 64 messages in flight.
func BenchmarkFanout(b *testing.B) {
	const members = 100
	s := startLobby(b)
	conns := make([]*runtimetest.Conn, members)
	for i := range conns {
		conns[i] = join(b, s, fmt.Sprintf("m%d", i))
	}
	// Drain the join notices of later members.
	for i, c := range conns {
		for range members - 1 - i {
			c.Expect("user_joined")
		}
	}
	window := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var delivered atomic.Int64
	b.ResetTimer()
	writes := writeCalls()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for got := 0; got < b.N; {
				f, err := c.TryRead()
				if err != nil {
					b.Error(err)
					return
				}
				if f.Type() == "new_message" {
					got++
					delivered.Add(1)
					if i == 0 {
						<-window
					}
				}
			}
		}()
	}
	for range b.N {
		window <- struct{}{}
		if err := conns[0].WS.WriteJSON(map[string]any{"type": "send_message", "roomId": "bench", "playerId": "m0", "content": "fan out"}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(delivered.Load())/b.Elapsed().Seconds(), "deliveries/s")
	reportWritesPer(b, writes, delivered.Load(), "delivery")
}
