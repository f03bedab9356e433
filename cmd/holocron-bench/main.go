// Command holocron-bench is Holocron's load generator: real WebSocket
// clients (gorilla/websocket, dialled from many loopback source addresses)
// against real `holocron serve` processes, one node or a cluster, started
// by the tool itself or already running.
//
// Usage:
//
//	holocron-bench SCENARIO [flags]
//
// Scenarios:
//
//	durable  K senders in one chat room, each sending its next message when
//	         its own echo arrives (or at a fixed total -rate): acknowledged
//	         messages/s and send→echo latency.
//	fanout   R rooms × N clients, each client a sender and a receiver:
//	         deliveries/s and send→delivery latency.
//	idle     C sockets joined to rooms: server RSS per socket, then one
//	         message per room and the time until the last socket has it.
//	resume   a client misses M messages and rejoins with `since`: time until
//	         it has all M.
//	game     G game rooms of 4 players sending game_action at a tick rate:
//	         action→broadcast latency.
//	baseline the durable -rate load against a bare WebSocket fan-out server
//	         (this binary in another process: no storage, no actor, no
//	         protocol): the machine's floor for send→echo latency.
//
// Every scenario prints a summary and, with -json FILE, writes it as JSON.
// With -kill-owner (durable, fanout) the node owning the room's object is
// killed with SIGKILL during the load: the summary gives the failover time
// (last acknowledgement before → first after) and every acknowledged
// message is looked up in the room's history afterwards.
//
// The load generator shares the machine with the servers: it encodes client
// frames by appending to reused buffers and scans server frames for the few
// fields it needs rather than decoding them, but its CPU time is reported
// next to the servers' so the split is visible.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/trace"
	"slices"
	"strings"
	"syscall"
)

const usage = `usage: holocron-bench SCENARIO [flags]

scenarios: durable, fanout, idle, resume, game, baseline
(holocron-bench SCENARIO -h lists the flags)

examples:
  go build -o /tmp/holocron ./cmd/holocron
  holocron-bench durable -spawn -bin /tmp/holocron -senders 10
  holocron-bench durable -spawn -bin /tmp/holocron -rate 5000
  holocron-bench fanout -spawn-cluster 3 -bin /tmp/holocron -clients 100
  holocron-bench durable -spawn-cluster 3 -bin /tmp/holocron -kill-owner
  holocron-bench idle -nodes http://127.0.0.1:8080 -server-pid 1234 -conns 10000
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 2 && args[0] == baselineServerCmd {
		// The baseline scenario's bare server, started by the tool itself.
		if err := serveBaseline(ctx, args[1], stdout); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	if len(args) == 0 || !slices.Contains(scenarios, args[0]) {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "help") {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := parseConfig(args[0], args[1:], stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "holocron-bench %s: %v\n", args[0], err)
		return 2
	}
	level := slog.LevelInfo
	if cfg.Quiet {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if n, err := raiseFileLimit(); err != nil {
		log.Warn("could not raise the open-file limit", "err", err)
	} else {
		log.Debug("open-file limit", "soft", n)
	}
	if cfg.TracePath != "" {
		stopTrace, err := startTrace(cfg.TracePath)
		if err != nil {
			fmt.Fprintf(stderr, "holocron-bench %s: %v\n", args[0], err)
			return 1
		}
		defer stopTrace()
	}
	res, err := runScenario(ctx, cfg, args[1:], log)
	if res != nil {
		res.Print(stdout)
		if cfg.JSONPath != "" {
			if werr := res.WriteJSON(cfg.JSONPath); werr != nil {
				err = errors.Join(err, werr)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "holocron-bench %s: %v\n", cfg.Scenario, err)
		return 1
	}
	return 0
}

// runScenario starts or attaches to the servers, runs the scenario and
// stops what it started.
func runScenario(ctx context.Context, cfg *config, args []string, log *slog.Logger) (*Result, error) {
	if cfg.Scenario == "baseline" {
		res := newResult(cfg.Scenario, args)
		res.Params = cfg.params()
		return res, runBaseline(ctx, cfg, log, res)
	}
	fl, err := openFleet(ctx, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("servers: %w", err)
	}
	defer fl.Close()
	res := newResult(cfg.Scenario, args)
	res.Params = cfg.params()
	res.Target = Target{Nodes: fl.urls(), Spawned: fl.spawned, Args: fl.args}
	env := &bench{cfg: cfg, fleet: fl, log: log, res: res}
	switch cfg.Scenario {
	case "durable", "fanout":
		err = runChat(ctx, env)
	case "idle":
		err = runIdle(ctx, env)
	case "resume":
		err = runResume(ctx, env)
	case "game":
		err = runGame(ctx, env)
	}
	if err != nil && fl.spawned {
		for _, n := range fl.nodes {
			if n.dead.Load() && !strings.Contains(err.Error(), "killed") {
				log.Warn("server log tail", "node", n.Name, "log", fl.logTail(n))
			}
		}
	}
	return res, err
}

// bench is what every scenario works with.
type bench struct {
	cfg   *config
	fleet *fleet
	log   *slog.Logger
	res   *Result
}

// raiseFileLimit raises the soft RLIMIT_NOFILE to the hard limit (and the
// hard one too where the process may), so the tool can hold as many
// sockets as the machine allows. Spawned servers inherit it.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	want := syscall.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	if lim.Max < want.Max && syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
		return want.Cur, nil
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}

// startTrace records the process's execution trace into path until the
// returned function is called.
func startTrace(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("trace: %w", err)
	}
	return func() {
		trace.Stop()
		f.Close()
	}, nil
}
