package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/devcluster"
)

// node is one `holocron serve` process under load.
type node struct {
	// Name is the node's cluster name (n1, n2, … when spawned) or its
	// address.
	Name string
	// URL is http://host:port.
	URL string
	// PID is the server's process id, 0 when unknown.
	PID int

	dead    atomic.Bool
	cmd     *exec.Cmd // spawned nodes only
	exited  chan struct{}
	logPath string
}

// hostPort is the node's host:port.
func (n *node) hostPort() string {
	return strings.TrimPrefix(strings.TrimPrefix(n.URL, "http://"), "https://")
}

// fleet is the set of servers a scenario runs against: either processes
// the tool started itself (-spawn, -spawn-cluster), or running ones given
// by -nodes (with their PIDs from -pids / -server-pid when known).
type fleet struct {
	nodes   []*node
	spawned bool
	// root holds spawned nodes' data directories and logs; removed on Close
	// unless -keep-data.
	root string
	keep bool
	args []string
	log  *slog.Logger
	hc   *http.Client
}

// openFleet spawns or attaches to the servers cfg names and waits until
// they serve (for a cluster: until every partition has its voters).
func openFleet(ctx context.Context, cfg *config, log *slog.Logger) (*fleet, error) {
	f := &fleet{log: log, hc: &http.Client{Timeout: 10 * time.Second}, keep: cfg.KeepData}
	switch {
	case cfg.Spawn || cfg.SpawnCluster > 0:
		if err := f.spawn(cfg); err != nil {
			f.Close()
			return nil, err
		}
	default:
		for i, u := range cfg.Nodes {
			n := &node{Name: strings.TrimPrefix(u, "http://"), URL: u}
			if i < len(cfg.PIDs) {
				n.PID = cfg.PIDs[i]
			}
			f.nodes = append(f.nodes, n)
		}
	}
	if err := f.waitReady(ctx); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// spawn starts one node (-spawn) or a cluster (-spawn-cluster N) from
// cfg.Bin, each with its own data directory under a temporary root.
func (f *fleet) spawn(cfg *config) error {
	if cfg.Bin == "" {
		return errors.New("-spawn and -spawn-cluster need -bin (build it with: go build -o holocron ./cmd/holocron)")
	}
	bin, err := filepath.Abs(cfg.Bin)
	if err != nil {
		return fmt.Errorf("binary path: %w", err)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("binary: %w", err)
	}
	root, err := os.MkdirTemp(cfg.DataRoot, "holocron-bench-")
	if err != nil {
		return fmt.Errorf("data root: %w", err)
	}
	f.root, f.spawned = root, true
	size := max(cfg.SpawnCluster, 1)
	common := []string{"-rate-limit", "-1", "-history-limit", strconv.Itoa(cfg.HistoryLimit)}
	type addrs struct{ http, gossip, peer string }
	var all []addrs
	var gossip []string
	for range size {
		h, err := freePort(false)
		if err != nil {
			return err
		}
		a := addrs{http: h}
		if cfg.SpawnCluster > 0 {
			if a.gossip, err = freePort(true); err != nil {
				return err
			}
			if a.peer, err = freePort(false); err != nil {
				return err
			}
			gossip = append(gossip, a.gossip)
		}
		all = append(all, a)
	}
	var secrets *devcluster.Secrets
	if cfg.SpawnCluster > 0 && !cfg.Insecure {
		var names []string
		for i := range all {
			names = append(names, fmt.Sprintf("n%d", i+1))
		}
		// The cluster is secured as an operator secures one (holocron cert):
		// its figures include the peer link's mutual TLS.
		if secrets, err = devcluster.Make(bin, filepath.Join(root, "secrets"), names); err != nil {
			return err
		}
	}
	for i, a := range all {
		name := fmt.Sprintf("n%d", i+1)
		args := []string{"serve", "-http", a.http, "-data", filepath.Join(root, name)}
		args = append(args, common...)
		if cfg.SpawnCluster > 0 {
			args = append(args, "-node-name", name, "-bind", a.gossip, "-join", strings.Join(gossip, ","),
				"-raft-tick", cfg.RaftTick.String(), "-peer", a.peer)
			if cfg.Insecure {
				args = append(args, "-insecure")
			} else {
				args = append(args, secrets.Flags(name)...)
			}
			if i == 0 {
				args = append(args, "-bootstrap")
			}
		}
		args = append(args, cfg.ServerArgs...)
		n := &node{Name: name, URL: "http://" + a.http, exited: make(chan struct{}), logPath: filepath.Join(root, name+".log")}
		logf, err := os.Create(n.logPath)
		if err != nil {
			return fmt.Errorf("server log: %w", err)
		}
		n.cmd = exec.Command(bin, args...)
		n.cmd.Stdout, n.cmd.Stderr = logf, logf
		// The servers must not outlive the tool, however it ends.
		n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := n.cmd.Start(); err != nil {
			logf.Close()
			return fmt.Errorf("start %s: %w", name, err)
		}
		n.PID = n.cmd.Process.Pid
		go func() {
			_ = n.cmd.Wait()
			logf.Close()
			n.dead.Store(true)
			close(n.exited)
		}()
		f.nodes = append(f.nodes, n)
		f.args = args[1:]
		f.log.Info("spawned server", "node", name, "pid", n.PID, "http", a.http, "log", n.logPath)
	}
	return nil
}

// freePort returns a loopback address free a moment ago, for TCP (and
// UDP too when both, as gossip needs).
func freePort(both bool) (string, error) {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("find a free port: %w", err)
		}
		addr := ln.Addr().String()
		if !both {
			ln.Close()
			return addr, nil
		}
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr, nil
		}
	}
	return "", errors.New("no free TCP+UDP port")
}

// waitReady waits until every node answers /readyz and, for a cluster,
// every partition is served with min(nodes, 3) voters and no learners.
func (f *fleet) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	for _, n := range f.nodes {
		for {
			if n.dead.Load() {
				return fmt.Errorf("server %s exited before it was ready; log: %s", n.Name, f.logTail(n))
			}
			code, err := httpJSON(ctx, f.hc, "GET", n.URL+"/readyz", nil, nil)
			if err == nil && code == 200 {
				break
			}
			if ctx.Err() != nil {
				return fmt.Errorf("server %s not ready: %v %w", n.Name, err, ctx.Err())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if len(f.nodes) < 2 {
		return nil
	}
	why := ""
	for {
		ok, w := f.converged(ctx, min(len(f.nodes), 3))
		if ok {
			return nil
		}
		why = w
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster did not converge: %s", why)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (f *fleet) converged(ctx context.Context, voters int) (bool, string) {
	var statuses []cluster.Status
	for _, n := range f.live() {
		var st cluster.Status
		code, err := httpJSON(ctx, f.hc, "GET", n.URL+"/admin/cluster", nil, &st)
		if err != nil || code != 200 {
			return false, fmt.Sprintf("%s: /admin/cluster: %d %v", n.Name, code, err)
		}
		statuses = append(statuses, st)
	}
	return cluster.Converged(statuses, voters)
}

// live returns the nodes not known to be dead.
func (f *fleet) live() []*node {
	var out []*node
	for _, n := range f.nodes {
		if !n.dead.Load() {
			out = append(out, n)
		}
	}
	return out
}

// pick returns the i-th live node, round-robin; nil when none is left.
func (f *fleet) pick(i int) *node {
	live := f.live()
	if len(live) == 0 {
		return nil
	}
	return live[i%len(live)]
}

// owner returns the node leading the object class/name, asking the live
// nodes' /admin/cluster/locate.
func (f *fleet) owner(ctx context.Context, class, name string) (*node, error) {
	var last error
	for _, n := range f.live() {
		var loc struct {
			Leader     string `json:"leader"`
			LeaderHTTP string `json:"leaderHttp"`
		}
		code, err := httpJSON(ctx, f.hc, "GET", n.URL+"/admin/cluster/locate/"+class+"/"+name, nil, &loc)
		if err != nil || code != 200 {
			last = fmt.Errorf("locate %s/%s via %s: HTTP %d %v", class, name, n.Name, code, err)
			continue
		}
		for _, m := range f.live() {
			if m.hostPort() == loc.LeaderHTTP || m.Name == loc.Leader {
				return m, nil
			}
		}
		last = fmt.Errorf("owner of %s/%s is %s (%s), not one of -nodes", class, name, loc.Leader, loc.LeaderHTTP)
	}
	if last == nil {
		last = errors.New("no live node")
	}
	return nil, last
}

// kill9 kills n with SIGKILL and marks it dead.
func (f *fleet) kill9(n *node) error {
	if n.PID == 0 {
		return fmt.Errorf("kill %s: PID unknown (give -pids)", n.Name)
	}
	if err := syscall.Kill(n.PID, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill -9 %s (pid %d): %w", n.Name, n.PID, err)
	}
	n.dead.Store(true)
	if n.exited != nil {
		<-n.exited
	}
	return nil
}

// pids returns the PIDs of the live nodes that have one.
func (f *fleet) pids() []int {
	var out []int
	for _, n := range f.live() {
		if n.PID != 0 {
			out = append(out, n.PID)
		}
	}
	return out
}

// urls returns every node's URL.
func (f *fleet) urls() []string {
	var out []string
	for _, n := range f.nodes {
		out = append(out, n.URL)
	}
	return out
}

// logTail is the end of a spawned node's log.
func (f *fleet) logTail(n *node) string {
	if n.logPath == "" {
		return "(not spawned)"
	}
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-2000):])
}

// Close stops spawned nodes and removes their data, unless -keep-data:
// then they get SIGTERM (a graceful stop, SIGKILL after 15s). Data that is
// thrown away needs no graceful stop, and a whole cluster leaving at once
// would spend its shutdown timeout handing partitions to each other.
func (f *fleet) Close() {
	sig := syscall.SIGKILL
	if f.keep {
		sig = syscall.SIGTERM
	}
	for _, n := range f.nodes {
		if n.cmd == nil || n.dead.Load() {
			continue
		}
		_ = n.cmd.Process.Signal(sig)
	}
	for _, n := range f.nodes {
		if n.cmd == nil {
			continue
		}
		select {
		case <-n.exited:
		case <-time.After(15 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	if f.root != "" {
		if f.keep {
			f.log.Info("kept server data and logs", "dir", f.root)
		} else {
			_ = os.RemoveAll(f.root)
		}
	}
}

// rssKiB reads a process's resident set size from /proc/<pid>/status.
func rssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse VmRSS %q: %w", v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// cpuTime is a process's user+system CPU time from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100 per second).
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	fs := strings.Fields(s)
	if len(fs) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(fs[11], 10, 64)
	st, err2 := strconv.ParseInt(fs[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return time.Duration(u+st) * (time.Second / 100), nil
}

// selfCPU is this process's CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time all processes of the machine used so far,
// from the first line of /proc/stat (everything but idle and iowait).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fs := strings.Fields(line)
	if len(fs) < 5 || fs[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, f := range fs[1:] {
		n, _ := strconv.ParseInt(f, 10, 64)
		if i != 3 && i != 4 && i < 8 { // idle, iowait; guest time is in user already
			busy += n
		}
	}
	return time.Duration(busy) * (time.Second / 100)
}

// cpuMeter measures the CPU the servers and the tool use over a window,
// and the whole machine's, to show what else ran meanwhile. The servers are
// sampled every 100 ms, so one killed during the window counts up to its
// last sample rather than not at all.
type cpuMeter struct {
	start   time.Time
	self    time.Duration
	machine time.Duration
	first   map[int]time.Duration // pid → CPU time at start

	mu           sync.Mutex
	last         map[int]time.Duration // pid → latest CPU time read
	stopSampling chan struct{}
	sampled      chan struct{}
}

func startCPU(pids []int) *cpuMeter {
	m := &cpuMeter{
		start:        time.Now(),
		self:         selfCPU(),
		machine:      machineBusy(),
		first:        map[int]time.Duration{},
		last:         map[int]time.Duration{},
		stopSampling: make(chan struct{}),
		sampled:      make(chan struct{}),
	}
	for _, p := range pids {
		if d, err := cpuTime(p); err == nil {
			m.first[p], m.last[p] = d, d
		}
	}
	go func() {
		defer close(m.sampled)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			m.sample()
			select {
			case <-tick.C:
			case <-m.stopSampling:
				return
			}
		}
	}()
	return m
}

// sample reads every server's CPU time; a server that has exited keeps its
// previous reading.
func (m *cpuMeter) sample() {
	for p := range m.first {
		if d, err := cpuTime(p); err == nil {
			m.mu.Lock()
			m.last[p] = d
			m.mu.Unlock()
		}
	}
}

// stop returns the CPU shares since start.
func (m *cpuMeter) stop() CPUShare {
	close(m.stopSampling)
	<-m.sampled
	m.sample()
	wall := time.Since(m.start).Seconds()
	var server time.Duration
	for p, d0 := range m.first {
		server += m.last[p] - d0
	}
	if wall <= 0 {
		return CPUShare{}
	}
	c := CPUShare{
		Servers: round3(max(server, 0).Seconds() / wall),
		Bench:   round3((selfCPU() - m.self).Seconds() / wall),
		Machine: round3((machineBusy() - m.machine).Seconds() / wall),
	}
	c.Others = round3(max(c.Machine-c.Servers-c.Bench, 0))
	return c
}

// profiler records the servers' CPU profile with Linux perf during the
// measurement window (the server has no /debug/pprof endpoint).
type profiler struct {
	cmd *exec.Cmd
}

// startProfile runs `perf record -g -p PIDS -o path` until stop.
func startProfile(path string, pids []int, log *slog.Logger) *profiler {
	if path == "" || len(pids) == 0 {
		return nil
	}
	var ps []string
	for _, p := range pids {
		ps = append(ps, strconv.Itoa(p))
	}
	cmd := exec.Command("perf", "record", "-F", "499", "-g", "-p", strings.Join(ps, ","), "-o", path)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		log.Warn("no server profile: perf record did not start", "err", err)
		return nil
	}
	return &profiler{cmd: cmd}
}

func (p *profiler) stop() {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	_ = p.cmd.Wait()
}
