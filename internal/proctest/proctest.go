// Package proctest runs real holocron processes for tests outside
// cmd/holocron (the Go client's and the web app's): build the binary once,
// start single nodes or small clusters on loopback, kill -9 or stop them.
package proctest

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/certs"
	"github.com/holocron-run/holocron/internal/devcluster"
)

// Build compiles ./cmd/holocron of the module containing dir into a
// temporary directory and returns the binary's path and a cleanup func.
// Call it from TestMain. With race set the binary has the race detector.
func Build(moduleRoot string, race bool) (string, func(), error) {
	return BuildCommand(moduleRoot, "./cmd/holocron", race)
}

// BuildCommand is Build for the command pkg (a path relative to dir): a
// node of an author's own types (package node) takes holocron's command
// line, so Start and StartCluster run it as they run holocron.
func BuildCommand(dir, pkg string, race bool) (string, func(), error) {
	tmp, err := os.MkdirTemp("", "holocron-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(tmp, filepath.Base(pkg))
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(tmp)
		return "", nil, fmt.Errorf("build %s: %v\n%s", pkg, err, out)
	}
	return bin, func() { os.RemoveAll(tmp) }, nil
}

// Proc is one running `holocron serve`.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	Addr string // HTTP host:port
	Dir  string
	Args []string // the serve flags after -http and -data
	// TLS, for a node started by StartTLS, trusts the client port's
	// certificate, CertFile; nil when the port speaks plain HTTP.
	TLS      *tls.Config
	CertFile string

	logs   LogBuffer
	done   chan error
	exited atomic.Bool
}

// LogBuffer is a process's output, readable while the process writes it
// (a test waits for a line in it).
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *LogBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// Bytes is a copy of what was written so far.
func (s *LogBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

func (s *LogBuffer) String() string { return string(s.Bytes()) }

// FreeAddr returns a loopback TCP address that was free a moment ago and
// that no other test process of this machine holds.
//
// A port the kernel picks for ":0" comes from the ephemeral range, the
// one it also takes every outgoing connection's local port from: between
// the moment a test learns the port and the moment its node binds it, any
// process's connection may take it ("address already in use", seen when
// two test binaries ran at once). So ports come from below that range
// (testPortLow..testPortHigh), and each is claimed across processes with
// an flock on a file named after it, held until this test binary exits.
func FreeAddr(t testing.TB) string {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	dir := filepath.Join(os.TempDir(), "holocron-test-ports")
	if err := os.MkdirAll(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	span := testPortHigh - testPortLow + 1
	start := rand.IntN(span)
	for i := range span {
		port := testPortLow + (start+i)%span
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if _, taken := handedOut.Load(addr); taken {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprint(port)), os.O_CREATE|os.O_RDWR, 0o666)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			f.Close() // another test process holds it
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			f.Close()
			continue
		}
		ln.Close()
		handedOut.Store(addr, f) // the lock lives as long as the process
		return addr
	}
	t.Fatal("no free test port")
	return ""
}

// testPortLow..testPortHigh is where FreeAddr picks ports: below Linux's
// default ephemeral range (32768-60999).
const (
	testPortLow  = 20000
	testPortHigh = 32767
)

// handedOut holds every address FreeAddr returned in this test binary,
// with the file whose lock claims it.
var (
	portsMu   sync.Mutex
	handedOut sync.Map
)

// FreeGossipAddr returns a loopback port free for both TCP and UDP.
func FreeGossipAddr(t testing.TB) string {
	t.Helper()
	for range 50 {
		addr := FreeAddr(t)
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no free TCP+UDP port")
	return ""
}

// Start runs `holocron serve -http addr -data dir args...` and waits until
// /readyz answers. The process is killed when the test ends; its log is
// printed if the test failed.
func Start(t testing.TB, binary, addr, dir string, args ...string) *Proc {
	t.Helper()
	return start(t, &Proc{t: t, Addr: addr, Dir: dir, Args: args, done: make(chan error, 1)}, binary)
}

// StartTLS is Start with a client port that speaks HTTPS and WSS only: it
// issues a certificate for 127.0.0.1 and localhost with the binary's own
// cert commands and serves it with -tls-cert and -tls-key. URL and WSURL
// then name https:// and wss://, and p.TLS trusts the certificate.
func StartTLS(t testing.TB, binary, addr, dir string, args ...string) *Proc {
	t.Helper()
	const name = "edge"
	s, err := devcluster.Make(binary, t.TempDir(), []string{name})
	if err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	roots, err := certs.LoadCAPool(s.CertsDir(name))
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(s.CertsDir(name), certs.NodeCertFile)
	keyFile := filepath.Join(s.CertsDir(name), certs.NodeKeyFile)
	args = append([]string{"-tls-cert", certFile, "-tls-key", keyFile}, args...)
	p := &Proc{t: t, Addr: addr, Dir: dir, Args: args, done: make(chan error, 1),
		TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, CertFile: certFile}
	return start(t, p, binary)
}

func start(t testing.TB, p *Proc, binary string) *Proc {
	t.Helper()
	args, addr, dir := p.Args, p.Addr, p.Dir
	p.cmd = exec.Command(binary, append([]string{"serve", "-http", addr, "-data", dir}, args...)...)
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start holocron: %v", err)
	}
	go func() {
		err := p.cmd.Wait()
		p.exited.Store(true)
		p.done <- err
	}()
	t.Cleanup(func() {
		if !p.exited.Load() {
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			logs := p.logs.String()
			t.Logf("holocron %s log (last 3000 bytes):\n%s", p.Addr, logs[max(0, len(logs)-3000):])
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: p.TLS}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := hc.Get(p.URL("/readyz")); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if p.exited.Load() {
			t.Fatalf("holocron exited before ready:\n%s", p.logs.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("holocron not ready after 30s:\n%s", p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// URL is http://addr + path (https:// with TLS).
func (p *Proc) URL(path string) string {
	if p.TLS != nil {
		return "https://" + p.Addr + path
	}
	return "http://" + p.Addr + path
}

// WSURL is ws://addr + path (wss:// with TLS).
func (p *Proc) WSURL(path string) string {
	if p.TLS != nil {
		return "wss://" + p.Addr + path
	}
	return "ws://" + p.Addr + path
}

// Metric reads one metric of the process's /metrics page: name with its
// labels, as printed (`holocron_x_total{kind="a"}`); false when absent.
func (p *Proc) Metric(name string) (float64, bool) {
	p.t.Helper()
	resp, err := http.Get(p.URL("/metrics"))
	if err != nil {
		p.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	page, err := io.ReadAll(resp.Body)
	if err != nil {
		p.t.Fatalf("GET /metrics: %v", err)
	}
	v, ok, err := MetricValue(string(page), name)
	if err != nil {
		p.t.Fatal(err)
	}
	return v, ok
}

// MetricValue reads a metric's value (name with its labels, as printed)
// from a Prometheus text page.
func MetricValue(page, name string) (float64, bool, error) {
	for _, line := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				return 0, false, fmt.Errorf("metric %s: %q: %w", name, v, err)
			}
			return f, true, nil
		}
	}
	return 0, false, nil
}

// Alive reports whether the process has not exited.
func (p *Proc) Alive() bool { return !p.exited.Load() }

// Logs returns what the process printed so far.
func (p *Proc) Logs() string { return p.logs.String() }

// Kill9 kills the process with SIGKILL and waits for it.
func (p *Proc) Kill9() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatalf("kill -9: %v", err)
	}
	<-p.done
}

// Pause stops the process (SIGSTOP) for d, then lets it go on (SIGCONT):
// a node that hangs, as under a long GC pause or a frozen VM, and wakes
// up believing what it believed before.
func (p *Proc) Pause(d time.Duration) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		p.t.Fatalf("SIGSTOP: %v", err)
	}
	time.Sleep(d) // the pause itself
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		p.t.Fatalf("SIGCONT: %v", err)
	}
}

// Stop sends SIGTERM, waits (30s at most) and returns the exit code.
func (p *Proc) Stop() int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.t.Fatal("holocron did not exit within 30s of SIGTERM")
	}
	return p.cmd.ProcessState.ExitCode()
}

// Cluster is a set of nodes on loopback; node 0 bootstraps.
type Cluster struct {
	t      testing.TB
	binary string
	Nodes  []*Proc
	names  []string
	gossip []string
	peers  []string
	extra  []string
	// secrets are the cluster's certificates and gossip key (holocron cert).
	secrets *devcluster.Secrets
}

// StartCluster runs size nodes (n1…) and waits until every partition has
// min(size, 3) voters and is served by its preferred member (WaitBalanced).
// extra flags go to every node.
func StartCluster(t testing.TB, binary string, size int, extra ...string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, binary: binary, extra: extra}
	for i := range size {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
		c.gossip = append(c.gossip, FreeGossipAddr(t))
		c.peers = append(c.peers, FreeAddr(t))
	}
	s, err := devcluster.Make(binary, t.TempDir(), c.names)
	if err != nil {
		t.Fatalf("cluster secrets: %v", err)
	}
	c.secrets = s
	for i := range size {
		c.Nodes = append(c.Nodes, c.launch(i, FreeAddr(t), t.TempDir()))
	}
	// Balanced, not only converged: until the rebalancer has steered each
	// partition to its preferred member, objects move under the test.
	c.WaitBalanced(min(size, 3))
	return c
}

func (c *Cluster) launch(i int, addr, dir string) *Proc {
	args := []string{"-node-name", c.names[i], "-bind", c.gossip[i], "-join", strings.Join(c.gossip, ","), "-raft-tick", "50ms", "-peer", c.peers[i]}
	args = append(args, c.secrets.Flags(c.names[i])...)
	if i == 0 {
		args = append(args, "-bootstrap")
	}
	return Start(c.t, c.binary, addr, dir, append(args, c.extra...)...)
}

// Restart starts node i again on its address and data directory.
func (c *Cluster) Restart(i int) *Proc {
	c.t.Helper()
	old := c.Nodes[i]
	c.Nodes[i] = c.launch(i, old.Addr, old.Dir)
	return c.Nodes[i]
}

// Live returns the nodes still running.
func (c *Cluster) Live() []*Proc {
	var out []*Proc
	for _, n := range c.Nodes {
		if n.Alive() {
			out = append(out, n)
		}
	}
	return out
}

// WaitConverged waits (60s at most) until, seen from every live node, every
// served partition has voters voters and no learners, and all are served.
func (c *Cluster) WaitConverged(voters int) {
	c.t.Helper()
	c.waitStatuses(fmt.Sprintf("converge to %d voters per partition", voters), func(statuses []cluster.Status) (bool, string) {
		return cluster.Converged(statuses, voters)
	})
}

// WaitBalanced waits (60s at most) until the cluster has converged to
// voters voters per partition and every partition is led by its preferred
// member (cluster.Balanced): after a restart, the rebalancer's moves back to
// the returned node are over.
func (c *Cluster) WaitBalanced(voters int) {
	c.t.Helper()
	c.waitStatuses(fmt.Sprintf("balance (%d voters per partition, preferred leaders)", voters), func(statuses []cluster.Status) (bool, string) {
		if ok, why := cluster.Converged(statuses, voters); !ok {
			return false, why
		}
		return cluster.Balanced(statuses)
	})
}

// waitStatuses waits (60s at most) until ok holds for the statuses of the
// live nodes.
func (c *Cluster) waitStatuses(what string, ok func([]cluster.Status) (bool, string)) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		statuses, err := c.statuses()
		why := ""
		if err != nil {
			why = err.Error()
		} else if done, w := ok(statuses); !done {
			why = w
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("cluster did not %s: %s", what, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// statuses returns /admin/cluster of every live node.
func (c *Cluster) statuses() ([]cluster.Status, error) {
	var statuses []cluster.Status
	for _, n := range c.Live() {
		var st cluster.Status
		resp, err := http.Get(n.URL("/admin/cluster"))
		if err != nil {
			return nil, err
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("decode /admin/cluster of %s: %w", n.Addr, err)
		}
		statuses = append(statuses, st)
	}
	return statuses, nil
}

// LeaderOf returns the index of the node leading the object (class, name),
// as that node itself confirms (see ConfirmLeader).
func (c *Cluster) LeaderOf(class, name string) int {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		live := map[string]string{}
		for i, n := range c.Nodes {
			if n.Alive() {
				live[c.names[i]] = n.URL("")
			}
		}
		var lead Lead
		if lead, err = ConfirmLeader(live, "", class, name); err == nil {
			for i, nm := range c.names {
				if nm == lead.Node {
					return i
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no confirmed leader for %s/%s within 30s: %v", class, name, err)
	return -1
}

// Lead is the leader of an object's partition, as confirmed by the leader.
type Lead struct {
	Node      string
	Partition int
	// Term is the Raft term the leader leads in: a failover raises it.
	Term uint64
}

var statusClient = &http.Client{Timeout: 5 * time.Second}

// ConfirmLeader finds the leader of object (class, name) among nodes (node
// name → base URL, live nodes only). Any node may name a leader from a
// stale view, so the node named is asked too: only a node whose own
// /admin/cluster says it serves the partition counts. adminToken is the
// nodes' -admin-token ("": none, the nodes are asked on loopback).
func ConfirmLeader(nodes map[string]string, adminToken, class, name string) (Lead, error) {
	var errs []error
	for _, base := range nodes {
		var loc cluster.Location
		if err := getJSON(base+"/admin/cluster/locate/"+class+"/"+name, adminToken, &loc); err != nil {
			errs = append(errs, err)
			continue
		}
		lbase, ok := nodes[loc.Leader]
		if !ok {
			errs = append(errs, fmt.Errorf("%s names leader %q, not a live node", base, loc.Leader))
			continue
		}
		var st cluster.Status
		if err := getJSON(lbase+"/admin/cluster", adminToken, &st); err != nil {
			errs = append(errs, err)
			continue
		}
		if loc.Partition >= len(st.Partitions) || !st.Partitions[loc.Partition].Serving {
			errs = append(errs, fmt.Errorf("%s names %s the leader of partition %d, which does not serve it", base, loc.Leader, loc.Partition))
			continue
		}
		return Lead{Node: loc.Leader, Partition: loc.Partition, Term: st.Partitions[loc.Partition].Term}, nil
	}
	return Lead{}, fmt.Errorf("no confirmed leader of %s/%s: %w", class, name, errors.Join(errs...))
}

func getJSON(url, adminToken string, out any) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if adminToken != "" {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
