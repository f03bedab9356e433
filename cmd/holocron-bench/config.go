package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// scenarios are the tool's subcommands.
var scenarios = []string{"durable", "fanout", "idle", "resume", "game", "baseline"}

// config is one invocation: the target servers, the measurement and the
// scenario's sizes. Zero values of the sizes mean the scenario's default.
type config struct {
	Scenario string

	// Target servers: -nodes (running) or -spawn / -spawn-cluster N
	// (started by the tool from -bin).
	Nodes        []string
	PIDs         []int
	Spawn        bool
	SpawnCluster int
	Bin          string
	ServerArgs   []string
	HistoryLimit int
	RaftTick     time.Duration
	// Insecure spawns the cluster with -insecure (no peer TLS, no gossip
	// key): the figures without mutual TLS, to measure what it costs.
	Insecure bool
	DataRoot string
	KeepData bool

	// Failover.
	KillOwner bool
	KillAfter time.Duration

	// Measurement.
	Warmup        time.Duration
	Duration      time.Duration
	JSONPath      string
	ServerProfile string
	// TracePath, when set, receives the load generator's own execution
	// trace (runtime/trace), to tell its stalls from the server's.
	TracePath   string
	SourceAddrs int
	Shard       bool
	Verify      bool
	Quiet       bool

	// durable and fanout (durable is one room of Senders clients).
	Senders     int
	Rooms       int
	Clients     int
	Window      int
	Rate        float64
	ContentSize int

	// idle.
	Conns      int
	RoomSize   int
	Settle     time.Duration
	DialConcur int

	// resume.
	Missed int
	Repeat int

	// game.
	Games    int
	Players  int
	TickRate float64
}

// listFlag is a comma-separated list.
type listFlag struct{ v *[]string }

func (l listFlag) String() string {
	if l.v == nil {
		return ""
	}
	return strings.Join(*l.v, ",")
}

func (l listFlag) Set(s string) error {
	*l.v = nil
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l.v = append(*l.v, p)
		}
	}
	return nil
}

// parseConfig parses a scenario's flags, fills in the scenario's defaults
// and checks the combination. Usage and errors go to out.
func parseConfig(scenario string, args []string, out io.Writer) (*config, error) {
	cfg := &config{Scenario: scenario}
	fs := flag.NewFlagSet("holocron-bench "+scenario, flag.ContinueOnError)
	fs.SetOutput(out)
	var pids, serverPID, serverArgs string
	fs.Var(listFlag{&cfg.Nodes}, "nodes", "comma-separated base URLs of running nodes (http://127.0.0.1:8080,…); clients are spread round-robin over them")
	fs.StringVar(&pids, "pids", "", "comma-separated PIDs of the -nodes, in order (for -kill-owner, RSS and CPU figures)")
	fs.StringVar(&serverPID, "server-pid", "", "PID of the single -nodes server (same as -pids with one entry)")
	fs.BoolVar(&cfg.Spawn, "spawn", false, "start one `holocron serve` from -bin (rate limit off) and stop it afterwards")
	fs.IntVar(&cfg.SpawnCluster, "spawn-cluster", 0, "start an N-node loopback cluster from -bin and stop it afterwards")
	fs.StringVar(&cfg.Bin, "bin", "", "path of the holocron binary for -spawn/-spawn-cluster")
	fs.StringVar(&serverArgs, "server-args", "", "extra flags for spawned servers, space-separated")
	fs.IntVar(&cfg.HistoryLimit, "history-limit", 0, "spawned servers' -history-limit (default 1000, the shipped value; 10000000 with -kill-owner or -verify, so that no acknowledged message is trimmed before it is checked; for resume 2×-missed+100)")
	fs.DurationVar(&cfg.RaftTick, "raft-tick", 100*time.Millisecond, "spawned cluster's -raft-tick (the shipped default)")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "spawned cluster without mutual TLS and gossip encryption (-insecure), to measure what they cost")
	fs.StringVar(&cfg.DataRoot, "data-root", "", "directory for spawned servers' data and logs (default: the system temp dir)")
	fs.BoolVar(&cfg.KeepData, "keep-data", false, "keep spawned servers' data directories and logs")
	fs.BoolVar(&cfg.KillOwner, "kill-owner", false, "[durable,fanout] kill -9 the node owning the measured object during the load; report failover time and lost acknowledged messages")
	fs.DurationVar(&cfg.KillAfter, "kill-after", 0, "[durable,fanout] when to kill, after the warm-up (default: a third of -duration)")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "load before measuring")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measurement window")
	fs.StringVar(&cfg.JSONPath, "json", "", "write the result as JSON to this file")
	fs.StringVar(&cfg.TracePath, "trace", "", "write the load generator's own execution trace (go tool trace) to this file")
	fs.StringVar(&cfg.ServerProfile, "server-profile", "", "record the servers' CPU profile during the window with `perf record -g` into this file")
	fs.IntVar(&cfg.SourceAddrs, "source-addrs", 64, "number of loopback source addresses (127.0.0.2…) to dial from; each gives ~28k ephemeral ports")
	fs.BoolVar(&cfg.Shard, "shard", false, "[fanout,idle,game] give every room its own object (/api/lobbies/{room}, /objects/RoomManager/{room}) instead of all rooms in object main")
	fs.BoolVar(&cfg.Verify, "verify", false, "[durable,fanout] check every acknowledged message against the room's history afterwards (always on with -kill-owner)")
	fs.BoolVar(&cfg.Quiet, "quiet", false, "log warnings only")
	fs.IntVar(&cfg.Senders, "senders", 10, "[durable,baseline] senders in the one room (group)")
	fs.IntVar(&cfg.Rooms, "rooms", 1, "[fanout] rooms")
	fs.IntVar(&cfg.Clients, "clients", 100, "[fanout] clients per room, each a sender and a receiver")
	fs.IntVar(&cfg.Window, "window", 1, "[durable,fanout] messages a sender keeps in flight (1: the next when the previous one echoed)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "[durable,fanout,baseline] fixed total send rate, messages/s (0: as fast as echoes allow); latency counts from the scheduled send time")
	fs.IntVar(&cfg.ContentSize, "content-size", 32, "[durable,fanout,baseline] message content bytes")
	fs.IntVar(&cfg.Conns, "conns", 10000, "[idle] idle sockets")
	fs.IntVar(&cfg.RoomSize, "room-size", 100, "[idle] sockets per room")
	fs.DurationVar(&cfg.Settle, "settle", 5*time.Second, "[idle] wait after the last join before reading the server's RSS")
	fs.IntVar(&cfg.DialConcur, "dial-concurrency", 64, "[idle] sockets being opened at once")
	fs.IntVar(&cfg.Missed, "missed", 1000, "[resume] messages the client misses")
	fs.IntVar(&cfg.Repeat, "repeat", 5, "[resume] rounds")
	fs.IntVar(&cfg.Games, "games", 100, "[game] game rooms")
	fs.IntVar(&cfg.Players, "players", 4, "[game] players per room")
	fs.Float64Var(&cfg.TickRate, "tick-rate", 10, "[game] game_actions per second per player")
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: holocron-bench %s [flags]\n\nflags ([...] names the scenarios that read a flag; the others read it in all):\n", scenario)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.PIDs, err = parseInts(pids); err != nil {
		return nil, fmt.Errorf("-pids: %w", err)
	}
	if serverPID != "" {
		p, err := strconv.Atoi(serverPID)
		if err != nil {
			return nil, fmt.Errorf("-server-pid: %w", err)
		}
		cfg.PIDs = append([]int{p}, cfg.PIDs...)
	}
	cfg.ServerArgs = strings.Fields(serverArgs)
	if cfg.KillOwner {
		cfg.Verify = true
	}
	if cfg.HistoryLimit == 0 {
		switch {
		case cfg.Verify:
			cfg.HistoryLimit = 10_000_000
		case scenario == "resume":
			cfg.HistoryLimit = max(1000, 2*cfg.Missed+100)
		default:
			cfg.HistoryLimit = 1000
		}
	}
	if cfg.KillAfter == 0 {
		cfg.KillAfter = cfg.Duration / 3
	}
	for i, u := range cfg.Nodes {
		if !strings.Contains(u, "://") {
			cfg.Nodes[i] = "http://" + u
		}
		cfg.Nodes[i] = strings.TrimSuffix(cfg.Nodes[i], "/")
	}
	return cfg, cfg.check()
}

// check rejects combinations that cannot run.
func (c *config) check() error {
	targets := 0
	for _, set := range []bool{len(c.Nodes) > 0, c.Spawn, c.SpawnCluster > 0} {
		if set {
			targets++
		}
	}
	switch {
	case c.Scenario == "baseline" && targets != 0:
		return errors.New("baseline starts its own bare server: no -nodes, -spawn or -spawn-cluster")
	case c.Scenario == "baseline" && (c.Rate <= 0 || c.KillOwner):
		return errors.New("baseline needs -rate and takes no -kill-owner")
	case c.Scenario != "baseline" && targets != 1:
		return errors.New("give exactly one of -nodes, -spawn, -spawn-cluster N")
	case len(c.PIDs) > 0 && len(c.Nodes) > 0 && len(c.PIDs) != len(c.Nodes):
		return fmt.Errorf("-pids has %d entries for %d -nodes", len(c.PIDs), len(c.Nodes))
	case c.KillOwner && c.Scenario != "durable" && c.Scenario != "fanout":
		return fmt.Errorf("-kill-owner is supported by durable and fanout, not %s", c.Scenario)
	case c.KillOwner && c.SpawnCluster < 2 && len(c.Nodes) < 2:
		return errors.New("-kill-owner needs a cluster (-spawn-cluster 3, or -nodes with -pids)")
	case c.KillOwner && len(c.Nodes) > 0 && len(c.PIDs) == 0:
		return errors.New("-kill-owner with -nodes needs -pids")
	case c.KillOwner && c.KillAfter >= c.Duration:
		return errors.New("-kill-after must be shorter than -duration")
	case c.Duration <= 0 || c.Warmup < 0:
		return errors.New("-duration must be positive, -warmup not negative")
	case c.Senders < 1 || c.Rooms < 1 || c.Clients < 1 || c.Window < 1 || c.Rate < 0 || c.ContentSize < 0 || c.ContentSize > 3900:
		return errors.New("-senders, -rooms, -clients and -window must be at least 1, -rate not negative, -content-size 0..3900")
	case c.Conns < 1 || c.RoomSize < 1 || c.RoomSize > 10000 || c.DialConcur < 1:
		return errors.New("-conns and -dial-concurrency must be at least 1, -room-size 1..10000")
	case c.Missed < 1 || c.Repeat < 1:
		return errors.New("-missed and -repeat must be at least 1")
	case c.Games < 1 || c.Players < 2 || c.Players > 100 || c.TickRate <= 0:
		return errors.New("-games must be at least 1, -players 2..100, -tick-rate positive")
	}
	return nil
}

// parseInts parses a comma-separated list of integers.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.Atoi(p)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// params are the scenario's sizes, for the result's JSON.
func (c *config) params() map[string]any {
	p := map[string]any{"warmupSec": c.Warmup.Seconds(), "durationSec": c.Duration.Seconds(), "shard": c.Shard}
	switch c.Scenario {
	case "durable":
		p["senders"], p["window"], p["rate"], p["contentSize"] = c.Senders, c.Window, c.Rate, c.ContentSize
	case "baseline":
		p["senders"], p["rate"], p["contentSize"] = c.Senders, c.Rate, c.ContentSize
	case "fanout":
		p["rooms"], p["clients"], p["window"], p["rate"], p["contentSize"] = c.Rooms, c.Clients, c.Window, c.Rate, c.ContentSize
	case "idle":
		p["conns"], p["roomSize"] = c.Conns, c.RoomSize
	case "resume":
		p["missed"], p["repeat"] = c.Missed, c.Repeat
	case "game":
		p["games"], p["players"], p["tickRate"] = c.Games, c.Players, c.TickRate
	}
	if c.KillOwner {
		p["killOwner"], p["killAfterSec"] = true, c.KillAfter.Seconds()
	}
	if c.Spawn || c.SpawnCluster > 0 {
		p["historyLimit"] = c.HistoryLimit
		if c.SpawnCluster > 0 {
			p["raftTick"] = c.RaftTick.String()
			p["mTLS"] = !c.Insecure
		}
	}
	return p
}
