package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gorilla/websocket"
)

// The baseline scenario is the durable -rate load against the least a
// WebSocket fan-out server can do: a separate process (this binary, run as
// `holocron-bench baseline-server`) that writes every message it receives
// to every connected socket, with no storage, no actor and no protocol. Its
// send→echo latency on the same machine, at the same rate and group size,
// is the floor a Holocron figure is compared with: what remains above it is
// Holocron's; what the baseline shows too belongs to the machine.

// baselineServerCmd is the hidden subcommand that runs the bare server.
const baselineServerCmd = "baseline-server"

// baselineHeader is the length of a baseline client frame's header: the
// scheduled send time (ns since the load's origin) and the sender's index,
// 8 bytes each, followed by -content-size bytes of padding.
const baselineHeader = 16

// serveBaseline runs the bare fan-out server on addr until ctx ends,
// printing its address on out once it listens.
func serveBaseline(ctx context.Context, addr string, out io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("baseline server: %w", err)
	}
	fmt.Fprintln(out, ln.Addr().String())
	var (
		mu      sync.Mutex
		members = map[*baselineMember]bool{}
	)
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		me := &baselineMember{c: c}
		mu.Lock()
		members[me] = true
		mu.Unlock()
		// Tell the client it is a member: from now on it gets every
		// message.
		if err := c.WriteMessage(websocket.TextMessage, []byte("ready")); err != nil {
			return
		}
		defer func() {
			mu.Lock()
			delete(members, me)
			mu.Unlock()
			c.Close()
		}()
		var group []*baselineMember
		for {
			kind, data, err := c.ReadMessage()
			if err != nil {
				return
			}
			// One encoding per broadcast, written by the reader itself:
			// no queue and no writer goroutine between a message and its
			// deliveries.
			pm, err := websocket.NewPreparedMessage(kind, data)
			if err != nil {
				return
			}
			mu.Lock()
			group = group[:0]
			for m := range members {
				group = append(group, m)
			}
			mu.Unlock()
			for _, m := range group {
				m.write(pm)
			}
		}
	})}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("baseline server: %w", err)
	}
	return nil
}

// baselineMember is one socket of the bare server; writes to it are
// serialised by mu.
type baselineMember struct {
	mu sync.Mutex
	c  *websocket.Conn
}

func (m *baselineMember) write(pm *websocket.PreparedMessage) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_ = m.c.WritePreparedMessage(pm) // a failed socket ends in its reader
}

// startBaselineServer runs this binary as the bare server in its own
// process and returns its base URL and process.
func startBaselineServer(ctx context.Context) (string, *exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("baseline server: %w", err)
	}
	cmd := exec.CommandContext(ctx, exe, baselineServerCmd, "127.0.0.1:0")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, fmt.Errorf("baseline server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("baseline server: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return "", nil, fmt.Errorf("baseline server did not start: %w", err)
	}
	return "http://" + strings.TrimSpace(line), cmd, nil
}

// runBaseline drives the bare server like durable -rate drives a room:
// -senders sockets, every message delivered to all of them, a fixed total
// -rate, latency counted from the scheduled send time.
func runBaseline(ctx context.Context, cfg *config, log *slog.Logger, res *Result) error {
	if cfg.Rate <= 0 {
		return errors.New("baseline needs -rate")
	}
	base, cmd, err := startBaselineServer(ctx)
	if err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	res.Target = Target{Nodes: []string{base}, Spawned: true, Args: []string{baselineServerCmd}}
	dialer := newWSDialer(cfg.SourceAddrs, 16<<10, 4<<10)
	n := cfg.Senders
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		c, err := dialer.Dial(ctx, base, "/")
		if err != nil {
			return err
		}
		defer c.Close()
		if _, hello, err := c.ReadMessage(); err != nil || string(hello) != "ready" {
			return fmt.Errorf("baseline server did not admit socket %d: %q %v", i, hello, err)
		}
		conns[i] = c
	}
	origin := time.Now()
	now := func() time.Duration { return time.Since(origin) }
	loadStart := now()
	start, end := loadStart+cfg.Warmup, loadStart+cfg.Warmup+cfg.Duration
	span := cfg.Warmup + cfg.Duration + 5*time.Second
	acks, lags := newTimeline(loadStart, span), newTimeline(loadStart, span)
	interval := time.Duration(float64(time.Second) * float64(n) / cfg.Rate)
	log.Info("baseline load started", "server", base, "senders", n, "rate", cfg.Rate, "warmup", cfg.Warmup, "duration", cfg.Duration)

	type side struct {
		echo, lag     *hdrhistogram.Histogram
		echoes, deliv int64
	}
	sides := make([]side, n)
	var wg sync.WaitGroup
	var readErr atomic.Value
	for i, c := range conns {
		sides[i] = side{echo: newHist(), lag: newHist()}
		s := &sides[i]
		wg.Add(2)
		go func() { // reader: own echoes are the acknowledgements
			defer wg.Done()
			rd := &frameReader{c: c}
			for {
				f, err := rd.Read()
				if err != nil {
					if now() < end {
						readErr.Store(err)
					}
					return
				}
				t := now()
				if len(f) < baselineHeader {
					continue
				}
				stamp := time.Duration(binary.LittleEndian.Uint64(f))
				in := t >= start && t < end
				if in {
					s.deliv++
				}
				if int(binary.LittleEndian.Uint64(f[8:])) != i {
					continue
				}
				acks.mark(t, t-stamp)
				if in {
					s.echoes++
					record(s.echo, t-stamp)
				}
			}
		}()
		go func() { // writer: a fixed schedule, staggered across senders
			defer wg.Done()
			buf := make([]byte, baselineHeader+cfg.ContentSize)
			for j := range buf[baselineHeader:] {
				buf[baselineHeader+j] = 'x'
			}
			next := loadStart + interval*time.Duration(i)/time.Duration(n)
			timer := time.NewTimer(0)
			defer timer.Stop()
			for next < end {
				if wait := next - now(); wait > 0 {
					timer.Reset(wait)
					select {
					case <-timer.C:
					case <-ctx.Done():
						return
					}
				}
				binary.LittleEndian.PutUint64(buf, uint64(next))
				binary.LittleEndian.PutUint64(buf[8:], uint64(i))
				if err := c.WriteMessage(websocket.TextMessage, buf); err != nil {
					readErr.Store(err)
					return
				}
				lag := now() - next
				lags.mark(next, lag)
				if next >= start {
					record(s.lag, lag)
				}
				next += interval
			}
		}()
	}
	if !sleepUntil(ctx, origin.Add(start)) {
		return ctx.Err()
	}
	meter := startCPU([]int{cmd.Process.Pid})
	if !sleepUntil(ctx, origin.Add(end)) {
		return ctx.Err()
	}
	res.CPU = meter.stop()
	// The last echoes of the window are still on their way.
	time.Sleep(500 * time.Millisecond)
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	if err, _ := readErr.Load().(error); err != nil {
		return fmt.Errorf("baseline socket failed during the load: %w", err)
	}
	echo, lag := newHist(), newHist()
	var echoes, deliv int64
	for _, s := range sides {
		echo.Merge(s.echo)
		lag.Merge(s.lag)
		echoes += s.echoes
		deliv += s.deliv
	}
	d := end - start
	res.MeasuredSec = d.Seconds()
	res.Figures["offered_msgs_per_sec"] = cfg.Rate
	res.Figures["acked_msgs_per_sec"] = perSec(echoes, d)
	res.Figures["deliveries_per_sec"] = perSec(deliv, d)
	res.Figures["clients"] = float64(n)
	res.Latencies["send_to_echo"] = summarize(echo)
	res.Latencies["send_lag"] = summarize(lag)
	res.SlowestPer100ms = acks.slowest(start, end)
	res.SlowestSendLagPer100ms = lags.slowest(start, end)
	return nil
}
