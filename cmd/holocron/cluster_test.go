package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/devcluster"
	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/internal/testenv"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// testCluster is a set of real holocron processes gossiping on loopback.
type testCluster struct {
	t     *testing.T
	nodes []*node
	// gossip[i] is node i's gossip address; all nodes join all of them.
	gossip []string
	names  []string
	dirs   []string
	https  []string
	// peers[i] is node i's peer listener.
	peers []string
	extra []string
	// secrets are the cluster's CA, node certificates and gossip key,
	// made with `holocron cert` (nil: -insecure, see insecure).
	secrets *devcluster.Secrets
	// insecure runs the nodes with -insecure instead.
	insecure bool
	// wrap, when set, gives node i's command prefix (a network namespace).
	wrap func(i int) []string
	// productionTick runs the nodes with the default Raft tick instead of
	// the tests' shorter one.
	productionTick bool
}

// freeGossipAddr returns a loopback port free for both TCP and UDP.
func freeGossipAddr(t testing.TB) string { return proctest.FreeGossipAddr(t) }

// startCluster runs size nodes; n1 bootstraps, the others join. It waits
// until every partition has min(size, 3) voters and a leader.
func startCluster(t *testing.T, size int, extra ...string) *testCluster {
	t.Helper()
	c := newCluster(t, size, extra...)
	c.start()
	return c
}

// newCluster is startCluster without the start, for a test that sets the
// cluster's fields first.
func newCluster(t *testing.T, size int, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, extra: extra}
	for i := range size {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
		c.gossip = append(c.gossip, freeGossipAddr(t))
		c.https = append(c.https, freeAddr(t))
		c.peers = append(c.peers, freeAddr(t))
		c.dirs = append(c.dirs, t.TempDir())
	}
	return c
}

// makeSecrets makes the CA, a certificate for each of names and the gossip
// key, once per cluster, as the README's "Securing a cluster" does.
func (c *testCluster) makeSecrets() {
	c.t.Helper()
	if c.secrets != nil || c.insecure {
		return
	}
	// Certificates for names the cluster may grow to, too.
	var names []string
	for i := range len(c.names) + 3 {
		names = append(names, fmt.Sprintf("n%d", i+1))
	}
	s, err := devcluster.Make(binary, c.t.TempDir(), names)
	if err != nil {
		c.t.Fatalf("cluster secrets: %v", err)
	}
	c.secrets = s
}

// start launches every node (n1 bootstraps) and waits for convergence.
func (c *testCluster) start() {
	t := c.t
	t.Helper()
	size := len(c.names)
	c.nodes = make([]*node, size)
	for i := range size {
		c.nodes[i] = c.launch(i, i == 0)
	}
	c.waitConverged(min(size, 3))
}

// launch starts node i (again) with its fixed name, ports and data dir.
func (c *testCluster) launch(i int, bootstrap bool) *node {
	c.t.Helper()
	// A shorter Raft tick than the default (100ms) keeps failovers, and so
	// the tests, short; HOLOCRON_TEST_RAFT_TICK measures with another.
	c.makeSecrets()
	args := []string{"-node-name", c.names[i], "-bind", c.gossip[i], "-join", strings.Join(c.gossip, ","),
		"-peer", c.peers[i],
		"-history-limit", "100000", "-log-level", "info",
		// A short Raft log, so that catching up after a restart or a join
		// goes through snapshots of the partition.
		"-raft-log-keep", "100"}
	if !c.productionTick {
		args = append(args, "-raft-tick", cmp.Or(os.Getenv("HOLOCRON_TEST_RAFT_TICK"), "50ms"))
	}
	if c.insecure {
		args = append(args, "-insecure")
	} else {
		args = append(args, c.secrets.Flags(c.names[i])...)
	}
	if bootstrap {
		args = append(args, "-bootstrap")
	}
	var wrap []string
	if c.wrap != nil {
		wrap = c.wrap(i)
	}
	// An operator's cluster has an admin token (without one the admin API
	// answers loopback only, and the partition tests' nodes are reached
	// across network namespaces).
	args = append(args, "-admin-token", clusterAdminToken)
	n := startNodeWrapped(c.t, wrap, c.https[i], c.dirs[i], append(args, c.extra...)...)
	n.adminToken = clusterAdminToken
	return n
}

// clusterAdminToken is every test cluster node's -admin-token.
const clusterAdminToken = "test-cluster-admin-token"

// adminTokenFile writes clusterAdminToken to a file only its owner reads,
// as an operator hands it to the CLI (-admin-token-file), with a newline.
func adminTokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(path, []byte(clusterAdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// grow adds one more node that joins the running cluster.
func (c *testCluster) grow() *node {
	c.t.Helper()
	i := len(c.nodes)
	c.names = append(c.names, fmt.Sprintf("n%d", i+1))
	c.gossip = append(c.gossip, freeGossipAddr(c.t))
	c.https = append(c.https, freeAddr(c.t))
	c.peers = append(c.peers, freeAddr(c.t))
	c.dirs = append(c.dirs, c.t.TempDir())
	n := c.launch(i, false)
	c.nodes = append(c.nodes, n)
	return n
}

func (c *testCluster) status(n *node) (cluster.Status, bool) {
	var st cluster.Status
	req, err := http.NewRequest(http.MethodGet, n.url("/admin/cluster"), nil)
	if err != nil {
		return st, false
	}
	n.authorize(req)
	resp, err := (&httpClient).Do(req)
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&st) != nil {
		return st, false
	}
	return st, true
}

// waitConverged waits until, seen from every live node, every partition has
// voters voters and no learners, and some live node serves it.
func (c *testCluster) waitConverged(voters int) {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ok, why := c.converged(voters)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			dir := filepath.Join(os.TempDir(), "holocron-test-logs", c.t.Name())
			os.MkdirAll(dir, 0o755)
			for i, n := range c.nodes {
				if n != nil && !n.exited.Load() {
					os.WriteFile(filepath.Join(dir, c.names[i]+"-admin-cluster.json"), []byte(n.get("/admin/cluster")), 0o644)
				}
			}
			// Goroutine dumps into the nodes' logs (saved on failure).
			for _, n := range c.live() {
				_ = n.cmd.Process.Signal(syscall.SIGQUIT)
				<-n.done
			}
			c.t.Fatalf("cluster did not converge to %d voters per partition in 60s: %s (each node's /admin/cluster and log are in %s)", voters, why, dir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *testCluster) converged(voters int) (bool, string) {
	var statuses []cluster.Status
	for _, n := range c.live() {
		st, ok := c.status(n)
		if !ok {
			return false, n.addr + ": no status"
		}
		statuses = append(statuses, st)
	}
	return cluster.Converged(statuses, voters)
}

func (c *testCluster) live() []*node {
	var out []*node
	for _, n := range c.nodes {
		if n != nil && !n.exited.Load() {
			out = append(out, n)
		}
	}
	return out
}

// leaderOf returns the index of the node serving the object's partition,
// as that node itself confirms.
func (c *testCluster) leaderOf(class, name string) int {
	c.t.Helper()
	i, _ := c.lead(class, name)
	return i
}

// lead returns the index of the node serving the object's partition and
// its lead (partition, term), as confirmed by that node: any node can name
// a leader from a stale view.
func (c *testCluster) lead(class, name string) (int, proctest.Lead) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		live := map[string]string{}
		for i, n := range c.nodes {
			if n != nil && !n.exited.Load() {
				live[c.names[i]] = n.url("")
			}
		}
		var l proctest.Lead
		if l, err = proctest.ConfirmLeader(live, clusterAdminToken, class, name); err == nil {
			return slices.Index(c.names, l.Node), l
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("no confirmed leader for %s/%s within 30s: %v", class, name, err)
	return -1, proctest.Lead{}
}

// assertFailedOver checks that a failover of the object's partition
// happened after its leader before (with term) was stopped: another node
// now leads it, in a later term.
func (c *testCluster) assertFailedOver(class, name string, before int, term uint64) {
	c.t.Helper()
	after, l := c.lead(class, name)
	if after == before || l.Term <= term {
		c.t.Fatalf("no failover of %s/%s: led by %s in term %d before, by %s in term %d after", class, name, c.names[before], term, l.Node, l.Term)
	}
	c.t.Logf("%s/%s failed over from %s (term %d) to %s (term %d)", class, name, c.names[before], term, l.Node, l.Term)
}

// chatLoad runs senders spread over the cluster's nodes. Each sender sends
// one message at a time and records it as acknowledged when its own echo
// arrives; when its node dies or the room moves, it reconnects through the
// next live node and goes on.
//
// Every failed dial (a refused connection, or an HTTP answer such as 503
// instead of the upgrade) and every failed read (a timeout, a connection
// dropped without a close frame) is recorded with its node and the time the
// operation began. While a test disrupts the cluster (between disrupt and
// settle) failures are expected and only counted; once the cluster has
// settled, any failure is a bug that finish reports, naming the node: a
// node that cannot reach the room is not hidden by the others.
type chatLoad struct {
	c    *testCluster
	room string
	stop chan struct{}
	wg   sync.WaitGroup

	mu    sync.Mutex
	acked map[string]string // clientMsgId → message id
	times []time.Time       // ack times, in order of arrival
	via   []string          // the node address each ack came through
	// seen is, per connection, the message ids it received in order.
	seen [][]string
	errs []string
	// failures are the failed dials and reads; disruptions the windows in
	// which the test disrupted the cluster (the last one may be open).
	failures     []loadFailure
	disruptions  []disruption
	readDeadline time.Duration
}

// loadFailure is a dial or read of the load that failed.
type loadFailure struct {
	node          string // the node's address
	began, failed time.Time
	what          string
}

// disruption is a window in which a test disrupted the cluster (a kill, a
// restart, a join) until it had settled again.
type disruption struct {
	why        string
	begin, end time.Time // end is zero while it lasts
}

func startChatLoad(c *testCluster, room string, senders int) *chatLoad {
	l := &chatLoad{c: c, room: room, stop: make(chan struct{}), acked: map[string]string{}, readDeadline: 10 * time.Second}
	for i := range senders {
		l.wg.Add(1)
		go l.sender(fmt.Sprintf("p%d", i), i)
	}
	return l
}

// disrupt marks the start of a disruption: failures from now until settle
// are expected.
func (l *chatLoad) disrupt(why string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.disruptions = append(l.disruptions, disruption{why: why, begin: time.Now()})
}

// settle waits until the cluster has converged again (every partition
// served, with voters voters: a crashed member keeps its replicas until
// -dead-member-timeout, one that left gracefully does not) and ends the
// disruption: from now on every failure of the load is an error.
func (l *chatLoad) settle(voters int) {
	l.c.t.Helper()
	l.c.waitConverged(voters)
	l.endDisruption()
}

// settleBalanced is settle for a cluster whose every node is back: the
// disruption lasts until the rebalancer has also steered each partition
// back to its preferred member, whose moves fail the requests in flight
// (CI at 404ccd4: a dial failed "not the owner" after convergence).
func (l *chatLoad) settleBalanced(voters int) {
	l.c.t.Helper()
	l.c.waitConverged(voters)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var statuses []cluster.Status
		for _, n := range l.c.live() {
			if st, ok := l.c.status(n); ok {
				statuses = append(statuses, st)
			}
		}
		ok, why := cluster.Balanced(statuses)
		if ok {
			break
		}
		if time.Now().After(deadline) {
			l.c.t.Fatalf("cluster did not balance in 60s: %s", why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	l.endDisruption()
}

// endDisruption ends the disruption under way, if any.
func (l *chatLoad) endDisruption() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.disruptions); n > 0 && l.disruptions[n-1].end.IsZero() {
		l.disruptions[n-1].end = time.Now()
	}
}

func (l *chatLoad) recordFailure(n *node, began time.Time, format string, args ...any) {
	if l.stopped() {
		return // the load is being stopped: nothing to report
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failures = append(l.failures, loadFailure{node: n.addr, began: began, failed: time.Now(), what: fmt.Sprintf(format, args...)})
}

// expected reports whether a failed operation overlapped a disruption: it
// began before the disruption ended and failed after it began.
func (l *chatLoad) expected(f loadFailure) bool {
	for _, d := range l.disruptions {
		if !f.failed.Before(d.begin) && (d.end.IsZero() || f.began.Before(d.end)) {
			return true
		}
	}
	return false
}

// problems are the failures of the load outside every disruption, one line
// per node (with its count and first failure), and the protocol errors the
// senders saw.
func (l *chatLoad) problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.errs)
	byNode := map[string][]loadFailure{}
	var nodes []string
	for _, f := range l.failures {
		if l.expected(f) {
			continue
		}
		if byNode[f.node] == nil {
			nodes = append(nodes, f.node)
		}
		byNode[f.node] = append(byNode[f.node], f)
	}
	for _, n := range nodes {
		fs := byNode[n]
		out = append(out, fmt.Sprintf("%d failed dials/reads via %s while the cluster was settled; first at %s: %s",
			len(fs), n, fs[0].began.Format("15:04:05.000"), fs[0].what))
	}
	return out
}

// expectedFailures counts the failures that fell in disruptions, by node.
func (l *chatLoad) expectedFailures() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, f := range l.failures {
		if l.expected(f) {
			out[f.node]++
		}
	}
	return out
}

func (l *chatLoad) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

func (l *chatLoad) sender(player string, start int) {
	defer l.wg.Done()
	seq := 0
	for attempt := start; !l.stopped(); attempt++ {
		live := l.c.live()
		if len(live) == 0 {
			return
		}
		n := live[attempt%len(live)]
		l.session(n, player, &seq)
		if !l.stopped() {
			time.Sleep(50 * time.Millisecond) // reconnect backoff, not a wait for a condition
		}
	}
}

// endsSession reports whether err is a close the server sends on purpose
// when a socket must go elsewhere (1012: the object moved; 1001: the node
// is going away), which is no failure of the cluster.
func endsSession(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseServiceRestart, websocket.CloseGoingAway)
}

// session is one connection: join, then send until the socket fails.
func (l *chatLoad) session(n *node, player string, seq *int) {
	began := time.Now()
	ws, resp, err := dialer.Dial(n.wsURL("/api/lobby/websocket"), nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			l.recordFailure(n, began, "dial: HTTP %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			l.recordFailure(n, began, "dial: %v", err)
		}
		return
	}
	defer ws.Close()
	var seen []string
	defer func() {
		l.mu.Lock()
		l.seen = append(l.seen, seen)
		l.mu.Unlock()
	}()
	read := func() (runtimetest.Frame, bool) {
		began := time.Now()
		ws.SetReadDeadline(began.Add(l.readDeadline))
		var f runtimetest.Frame
		if err := ws.ReadJSON(&f); err != nil {
			if !endsSession(err) {
				l.recordFailure(n, began, "read: %v", err)
			}
			return nil, false
		}
		if f.Type() == "new_message" {
			seen = append(seen, f.Obj("message").Str("id"))
		}
		return f, true
	}
	write := func(v any) bool {
		began := time.Now()
		if err := ws.WriteJSON(v); err != nil {
			l.recordFailure(n, began, "write: %v", err)
			return false
		}
		return true
	}
	if !write(map[string]any{"type": "join_room", "roomId": l.room, "playerId": player, "playerName": player}) {
		return
	}
	for {
		f, ok := read()
		if !ok {
			return
		}
		if f.Type() == "room_joined" {
			break
		}
		if f.Type() == "error" || f.Type() == "join_failed" {
			l.fail("%s join via %s: %v", player, n.addr, f)
			return
		}
	}
	for !l.stopped() {
		*seq++
		cmid := fmt.Sprintf("%s-%06d", player, *seq)
		if !write(map[string]any{"type": "send_message", "roomId": l.room, "playerId": player,
			"content": "message " + cmid, "clientMsgId": cmid}) {
			return
		}
		for {
			f, ok := read()
			if !ok {
				return
			}
			if f.Type() == "error" && f.Str("code") == "rate_limited" {
				// Refused, not stored: back off and send a new message.
				time.Sleep(100 * time.Millisecond)
				break
			}
			if f.Type() == "error" {
				l.fail("%s send via %s: %v", player, n.addr, f)
				return
			}
			if m := f.Obj("message"); f.Type() == "new_message" && m.Str("clientMsgId") == cmid {
				l.mu.Lock()
				l.acked[cmid] = m.Str("id")
				l.times = append(l.times, time.Now())
				l.via = append(l.via, n.addr)
				l.mu.Unlock()
				break
			}
		}
	}
}

func (l *chatLoad) fail(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *chatLoad) ackCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// waitAcks waits until at least n messages are acknowledged in total.
func (l *chatLoad) waitAcks(n int, within time.Duration) {
	l.c.t.Helper()
	deadline := time.Now().Add(within)
	for l.ackCount() < n {
		if time.Now().After(deadline) {
			l.c.t.Fatalf("only %d of %d acknowledgements within %s", l.ackCount(), n, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gapAfter returns the longest pause between acknowledgements after t0:
// the failover time as clients see it (last ack before → first ack after).
func (l *chatLoad) gapAfter(t0 time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var gap time.Duration
	for i := 1; i < len(l.times); i++ {
		if l.times[i].After(t0) {
			if d := l.times[i].Sub(l.times[i-1]); d > gap {
				gap = d
			}
		}
	}
	return gap
}

// finish stops the senders and checks the room's history from every live
// node: each acknowledged message is there exactly once with the id its
// sender saw, the history is one strictly increasing sequence, and every
// connection received messages in that same order.
func (l *chatLoad) finish() {
	t := l.c.t
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, p := range l.problems() {
		t.Errorf("load: %s", p)
	}
	if exp := l.expectedFailures(); len(exp) > 0 {
		t.Logf("load: failed dials/reads during disruptions, by node: %v", exp)
	}
	for _, n := range l.c.live() {
		msgs := l.history(n)
		pos := map[string]int{}
		count := map[string]int{}
		for i, m := range msgs {
			if i > 0 && m.ID <= msgs[i-1].ID {
				t.Fatalf("history via %s out of order: %q after %q", n.addr, m.ID, msgs[i-1].ID)
			}
			pos[m.ID] = i
			count[m.ClientMsgID]++
		}
		for cmid, id := range l.acked {
			if count[cmid] != 1 {
				t.Errorf("acknowledged message %s appears %d times in history via %s", cmid, count[cmid], n.addr)
			} else if _, ok := pos[id]; !ok {
				t.Errorf("acknowledged message %s has id %s, not in history via %s", cmid, id, n.addr)
			}
		}
		for ci, seen := range l.seen {
			last := -1
			for _, id := range seen {
				p, ok := pos[id]
				if !ok {
					t.Errorf("connection %d received message %s that is not in history", ci, id)
					continue
				}
				if p <= last {
					t.Errorf("connection %d received message %s out of history order", ci, id)
				}
				last = p
			}
		}
	}
}

// historyMessage is a chat message as the history API returns it.
type historyMessage struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	SenderID    string `json:"senderId"`
	Content     string `json:"content"`
	ClientMsgID string `json:"clientMsgId"`
}

// history reads the room's whole history through n.
func (l *chatLoad) history(n *node) []historyMessage {
	l.c.t.Helper()
	return roomHistory(l.c.t, n, "/api/lobby", l.room)
}

// roomHistory reads a room's whole history through n, page by page; lobby
// is the lobby's URL prefix ("/api/lobby", "/api/lobbies/x"). Each page is
// asked for until it is answered 200, for 20s at most.
func roomHistory(t testing.TB, n *node, lobby, room string) []historyMessage {
	t.Helper()
	var all []historyMessage
	after := ""
	for {
		var page struct {
			Messages []historyMessage `json:"messages"`
			HasMore  bool             `json:"hasMore"`
		}
		var code int
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if code = n.do("GET", lobby+"/rooms/"+room+"/messages?limit=1000&after="+after, nil, &page); code == 200 || time.Now().After(deadline) {
				break
			}
		}
		if code != 200 {
			t.Fatalf("history of %s%s via %s: HTTP %d", lobby, room, n.addr, code)
		}
		all = append(all, page.Messages...)
		if !page.HasMore || len(page.Messages) == 0 {
			return all
		}
		after = page.Messages[len(page.Messages)-1].ID
	}
}

var (
	httpClient = http.Client{Timeout: 5 * time.Second}
	dialer     = websocket.Dialer{HandshakeTimeout: 5 * time.Second}
)

// until reads frames until one of type typ arrives (others are skipped;
// each read fails the test after runtimetest.Timeout).
func until(c *runtimetest.Conn, typ string) runtimetest.Frame {
	for {
		if f := c.Read(); f.Type() == typ {
			return f
		}
	}
}

func TestClusterChatAndGameAcrossNodes(t *testing.T) {
	c := startCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]
	if code := n2.do("POST", "/api/lobby/rooms", map[string]any{"roomId": "across", "name": "Across"}, nil); code != 201 {
		t.Fatalf("create room via n2: %d", code)
	}
	clients := []*runtimetest.Conn{
		runtimetest.DialURL(t, n1.wsURL("/api/lobby/websocket"), nil),
		runtimetest.DialURL(t, n2.wsURL("/api/lobby/websocket"), nil),
		runtimetest.DialURL(t, n3.wsURL("/api/lobby/websocket"), nil),
	}
	for i, cl := range clients {
		cl.Send(map[string]any{"type": "join_room", "roomId": "across", "playerId": fmt.Sprintf("u%d", i), "playerName": fmt.Sprintf("U%d", i)})
		cl.Expect("room_joined")
	}
	// Everyone has joined; Sync drains the join notices (the pong comes
	// after every earlier broadcast of the room's object).
	for _, cl := range clients {
		cl.Sync()
	}
	const each = 5
	for round := range each {
		for i, cl := range clients {
			cl.Send(map[string]any{"type": "send_message", "roomId": "across", "playerId": fmt.Sprintf("u%d", i),
				"content": fmt.Sprintf("hello %d from u%d", round, i)})
		}
	}
	var orders [][]string
	for _, cl := range clients {
		var ids []string
		for len(ids) < each*len(clients) {
			if f := cl.Read(); f.Type() == "new_message" {
				ids = append(ids, f.Obj("message").Str("id"))
			}
		}
		orders = append(orders, ids)
	}
	for i := 1; i < len(orders); i++ {
		if !slices.Equal(orders[0], orders[i]) {
			t.Fatalf("client %d saw a different order:\n%v\nvs\n%v", i, orders[i], orders[0])
		}
	}
	if !sort.StringsAreSorted(orders[0]) {
		t.Fatalf("message ids not increasing: %v", orders[0])
	}

	// A game room: players on different nodes see each other's scores.
	if code := n3.do("POST", "/api/room-manager/rooms", map[string]any{"roomId": "g", "name": "G", "gameType": "competitive"}, nil); code != 201 {
		t.Fatalf("create game room via n3: %d", code)
	}
	a := runtimetest.DialURL(t, n1.wsURL("/api/room-manager/websocket"), nil)
	b := runtimetest.DialURL(t, n2.wsURL("/api/room-manager/websocket"), nil)
	a.Send(map[string]any{"type": "join_room", "roomId": "g", "playerId": "a", "playerName": "A"})
	a.Expect("room_joined")
	b.Send(map[string]any{"type": "join_room", "roomId": "g", "playerId": "b", "playerName": "B"})
	b.Expect("room_joined")
	until(a, "player_joined")
	a.Send(map[string]any{"type": "start_game", "roomId": "g", "playerId": "a"})
	until(b, "game_started")
	a.Send(map[string]any{"type": "update_score", "roomId": "g", "playerId": "a", "score": 7})
	if f := until(b, "score_updated"); f.Str("playerId") != "a" || f["score"] != 7.0 {
		t.Fatalf("b saw %v, want a's score 7", f)
	}
	// Players on two nodes see every score change in the same order.
	a.Sync()
	b.Sync()
	for i := range 5 {
		a.Send(map[string]any{"type": "update_score", "roomId": "g", "playerId": "a", "score": i})
		b.Send(map[string]any{"type": "update_score", "roomId": "g", "playerId": "b", "score": 100 + i})
	}
	scoreOrder := func(cl *runtimetest.Conn) []string {
		var seen []string
		for len(seen) < 10 {
			if f := cl.Read(); f.Type() == "score_updated" {
				seen = append(seen, fmt.Sprintf("%s=%v", f.Str("playerId"), f["score"]))
			}
		}
		return seen
	}
	if sa, sb := scoreOrder(a), scoreOrder(b); !slices.Equal(sa, sb) {
		t.Fatalf("players saw scores in different orders:\na: %v\nb: %v", sa, sb)
	}
	var room struct {
		GameState struct {
			Players []struct {
				PlayerID string  `json:"playerId"`
				Score    float64 `json:"score"`
			} `json:"players"`
		} `json:"gameState"`
	}
	if code := n3.do("GET", "/api/room-manager/rooms/g", nil, &room); code != 200 {
		t.Fatalf("room via n3: %d", code)
	}
	found := false
	for _, p := range room.GameState.Players {
		found = found || (p.PlayerID == "a" && p.Score == 4)
	}
	if !found {
		t.Fatalf("n3 does not see a's last score: %+v", room)
	}

	// Operators see the cluster on /admin/cluster and /metrics.
	st, ok := c.status(n2)
	alive := 0
	for _, m := range st.Members {
		if m.State == "alive" {
			alive++
		}
	}
	if !ok || alive != 3 || len(st.Partitions) != 64 {
		t.Fatalf("/admin/cluster on n2: ok=%v, %d alive members, %d partitions; want 3 and 64", ok, alive, len(st.Partitions))
	}
	// Scrapes of different nodes are moments apart; while leadership is
	// still being steered, a partition may be counted twice or not at all,
	// so look for a steady reading.
	var served, committed float64
	deadline := time.Now().Add(20 * time.Second)
	for {
		served, committed = 0, 0
		for _, n := range c.nodes {
			body := n.get("/metrics")
			for _, want := range []string{"holocron_cluster_members_alive 3", "holocron_raft_ready_batches_total"} {
				if !strings.Contains(body, want) {
					t.Errorf("/metrics of %s lacks %q", n.addr, want)
				}
			}
			v, _ := metricValue(t, body, "holocron_cluster_partitions_serving")
			served += v
			v, _ = metricValue(t, body, `holocron_raft_proposals_total{outcome="committed"}`)
			committed += v
		}
		if served == 64 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if served != 64 {
		t.Errorf("nodes serve %v partitions in all, want 64", served)
	}
	// 15 messages, 3 joins, a game room, 2 joins, a start and a score at least.
	if committed < 23 {
		t.Errorf("nodes committed %v proposals in all, want at least 23", committed)
	}
	// The latency breakdown an operator reads when echoes are slow: the
	// wait for the actor, the commit, and the socket's queue.
	for _, name := range []string{"holocron_object_event_queue_seconds_count", "holocron_object_commit_seconds_count", "holocron_websocket_send_delay_seconds_count"} {
		var count float64
		for _, n := range c.nodes {
			v, _ := metricValue(t, n.get("/metrics"), name)
			count += v
		}
		if count < 23 {
			t.Errorf("%s is %v across the nodes, want at least 23 (one per committed event)", name, count)
		}
	}
}

// metricValue reads a metric's value (name with its labels, as printed)
// from a Prometheus text page.
func metricValue(t *testing.T, page, name string) (float64, bool) {
	t.Helper()
	v, ok, err := proctest.MetricValue(page, name)
	if err != nil {
		t.Fatal(err)
	}
	return v, ok
}

// TestClusterLeaderKill9UnderLoad runs with the tests' short Raft tick and
// with the production default (100ms), whose timeouts (elections, leases,
// LeaderWait) every other process test scales down.
func TestClusterLeaderKill9UnderLoad(t *testing.T) {
	for _, production := range []bool{false, true} {
		t.Run(map[bool]string{false: "test-tick", true: "production-tick"}[production], func(t *testing.T) {
			c := newCluster(t, 3)
			c.productionTick = production
			c.start()
			testLeaderKill9UnderLoad(t, c)
		})
	}
}

func testLeaderKill9UnderLoad(t *testing.T, c *testCluster) {
	if code := c.nodes[0].do("POST", "/api/lobby/rooms", map[string]any{"roomId": "load", "name": "Load"}, nil); code != 201 {
		t.Fatalf("create room: %d", code)
	}
	load := startChatLoad(c, "load", 6)
	load.waitAcks(150, 60*time.Second)
	victim, lead := c.lead("ChatLobby", "main")
	load.disrupt("kill -9 of the lobby's leader")
	killedAt := time.Now()
	before := load.ackCount()
	c.nodes[victim].kill9()
	load.waitAcks(before+150, 60*time.Second)
	load.settle(3)
	c.assertFailedOver("ChatLobby", "main", victim, lead.Term)
	t.Logf("killed leader %s after %d acks; failover (longest gap between acks after the kill): %s",
		c.names[victim], before, load.gapAfter(killedAt).Round(time.Millisecond))
	load.waitAcks(load.ackCount()+50, 60*time.Second)
	load.finish()
}

// otherThan returns the index of a live node that is not i.
func (c *testCluster) otherThan(i int) int {
	for j, n := range c.nodes {
		if j != i && n != nil && !n.exited.Load() {
			return j
		}
	}
	c.t.Fatal("no other live node")
	return -1
}

func createRoom(t *testing.T, n *node, room string) {
	t.Helper()
	if code := n.do("POST", "/api/lobby/rooms", map[string]any{"roomId": room, "name": room}, nil); code != 201 {
		t.Fatalf("create room %s: HTTP %d", room, code)
	}
}

// TestClusterFollowerKill9RestartCatchUpThenLeaderKill also proves
// snapshots: the restarted follower can only catch up through one.
func TestClusterFollowerKill9RestartCatchUpThenLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "follow")
	load := startChatLoad(c, "follow", 6)
	load.waitAcks(100, 60*time.Second)
	leader := c.leaderOf("ChatLobby", "main")
	follower := c.otherThan(leader)
	load.disrupt("kill -9 of a follower, then its restart")
	c.nodes[follower].kill9()
	// Enough entries that the leader truncates its log past the follower's
	// last entry (-raft-log-keep 100): catching up needs a snapshot.
	load.waitAcks(load.ackCount()+300, 60*time.Second)

	// The follower restarts with its data and catches up.
	c.nodes[follower] = c.launch(follower, false)
	load.settle(3)
	load.waitAcks(load.ackCount()+100, 60*time.Second)
	if v, _ := metricValue(t, c.nodes[follower].get("/metrics"), `holocron_raft_snapshots_total{event="installed"}`); v < 1 {
		t.Errorf("the restarted follower installed %v snapshots, want at least 1 (the lobby's log was truncated past it)", v)
	}

	// Now the old leader dies: the survivors include the restarted node,
	// so what it caught up on must be complete.
	leader, lead := c.lead("ChatLobby", "main")
	load.disrupt("kill -9 of the lobby's leader")
	killedAt := time.Now()
	c.nodes[leader].kill9()
	load.waitAcks(load.ackCount()+100, 60*time.Second)
	load.settle(3)
	c.assertFailedOver("ChatLobby", "main", leader, lead.Term)
	load.waitAcks(load.ackCount()+50, 60*time.Second)
	t.Logf("follower %s killed and restarted; then leader %s killed; failover %s",
		c.names[follower], c.names[leader], load.gapAfter(killedAt).Round(time.Millisecond))
	load.finish()
}

func TestClusterLeaderSIGTERMHandsOff(t *testing.T) {
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "term")
	load := startChatLoad(c, "term", 6)
	load.waitAcks(150, 60*time.Second)
	leader, lead := c.lead("ChatLobby", "main")
	// Meanwhile HTTP requests for objects all over the ring go through the
	// survivors. A hand-over moves leaders within the wait a request gets
	// for one, so none of them may fail.
	var survivors []*node
	for i, n := range c.nodes {
		if i != leader {
			survivors = append(survivors, n)
		}
	}
	probeStop := make(chan struct{})
	probeDone := make(chan []string)
	go func() {
		var failures []string
		for i := 0; ; i++ {
			select {
			case <-probeStop:
				probeDone <- failures
				return
			default:
			}
			via := survivors[i%len(survivors)]
			body := strings.NewReader(fmt.Sprintf(`{"roomId":"r%d","name":"R"}`, i))
			resp, err := httpClient.Post(via.url(fmt.Sprintf("/api/lobbies/probe%d/rooms", i%40)), "application/json", body)
			if err != nil {
				failures = append(failures, fmt.Sprintf("request %d via %s: %v", i, via.addr, err))
				continue
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 201 {
				failures = append(failures, fmt.Sprintf("request %d via %s: %d %s", i, via.addr, resp.StatusCode, raw))
			}
		}
	}()
	load.disrupt("SIGTERM of the lobby's leader")
	stoppedAt := time.Now()
	if code := c.nodes[leader].stop(); code != 0 {
		t.Fatalf("SIGTERM: exit code %d, want 0", code)
	}
	load.waitAcks(load.ackCount()+150, 60*time.Second)
	load.settle(2) // the node left: its replicas are replaced by none
	c.assertFailedOver("ChatLobby", "main", leader, lead.Term)
	load.waitAcks(load.ackCount()+50, 60*time.Second)
	close(probeStop)
	if failures := <-probeDone; len(failures) > 0 {
		t.Errorf("%d requests through the survivors failed during the hand-over, first: %s", len(failures), failures[0])
	}
	t.Logf("leader %s stopped gracefully; longest gap between acks: %s", c.names[leader], load.gapAfter(stoppedAt).Round(time.Millisecond))
	load.finish()
}

func TestClusterFourthNodeJoinsUnderLoad(t *testing.T) {
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "grow")
	load := startChatLoad(c, "grow", 6)
	load.waitAcks(100, 60*time.Second)
	load.disrupt("a fourth node joins; partitions move to it")
	n4 := c.grow()
	// The rebalancer moves about a quarter of the partitions to n4 and
	// every partition ends with exactly three voters.
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, ok := c.status(n4)
		voter := 0
		if ok {
			for _, p := range st.Partitions {
				if len(p.Voters) == 3 && slices.Contains(p.Voters, raftIDOf(st, "n4")) {
					voter++
				}
			}
		}
		if done, _ := c.converged(3); done && voter > 0 {
			t.Logf("n4 is a voter of %d partitions", voter)
			break
		}
		if time.Now().After(deadline) {
			_, why := c.converged(3)
			t.Fatalf("no rebalance onto n4 within 90s (n4 voter of %d partitions; %s)", voter, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
	load.settle(3)
	load.waitAcks(load.ackCount()+100, 60*time.Second)
	load.finish()
}

func raftIDOf(st cluster.Status, name string) uint64 {
	for _, m := range st.Members {
		if m.Name == name {
			return m.RaftID
		}
	}
	return 0
}

func TestClusterFiveNodesForwardAndFailover(t *testing.T) {
	c := startCluster(t, 5)
	createRoom(t, c.nodes[4], "five")
	load := startChatLoad(c, "five", 10)
	load.waitAcks(150, 60*time.Second)
	leader, lead := c.lead("ChatLobby", "main")
	load.disrupt("kill -9 of the lobby's leader")
	killedAt := time.Now()
	c.nodes[leader].kill9()
	load.waitAcks(load.ackCount()+150, 60*time.Second)
	load.settle(3)
	c.assertFailedOver("ChatLobby", "main", leader, lead.Term)
	t.Logf("5 nodes: killed leader %s; failover %s", c.names[leader], load.gapAfter(killedAt).Round(time.Millisecond))
	// Every node, the removed replicas of the lobby's partition among
	// them, serves the load once the cluster has settled.
	load.waitAcks(load.ackCount()+100, 60*time.Second)
	load.finish()
}

func TestClusterGameClockFiresAfterLeaderKill9(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leaderOf("RoomManager", "main")
	via := c.nodes[c.otherThan(leader)]
	if code := via.do("POST", "/api/room-manager/rooms", map[string]any{"roomId": "clock", "name": "Clock", "gameType": "competitive",
		"settings": map[string]any{"duration": 4}}, nil); code != 201 {
		t.Fatalf("create game room: %d", code)
	}
	a := runtimetest.DialURL(t, via.wsURL("/api/room-manager/websocket"), nil)
	a.Send(map[string]any{"type": "join_room", "roomId": "clock", "playerId": "a", "playerName": "A"})
	until(a, "room_joined")
	b := runtimetest.DialURL(t, via.wsURL("/api/room-manager/websocket"), nil)
	b.Send(map[string]any{"type": "join_room", "roomId": "clock", "playerId": "b", "playerName": "B"})
	until(b, "room_joined")
	a.Send(map[string]any{"type": "start_game", "roomId": "clock", "playerId": "a"})
	started := until(a, "game_started")
	endsAt, err := time.Parse(time.RFC3339, started.Str("endsAt"))
	if err != nil {
		t.Fatalf("endsAt %q: %v", started.Str("endsAt"), err)
	}
	// The clock is a durable alarm in the partition's replicated storage:
	// the new leader fires it.
	c.nodes[leader].kill9()
	var room struct {
		Room struct {
			Status  string `json:"status"`
			EndedAt string `json:"endedAt"`
		} `json:"room"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if via.do("GET", "/api/room-manager/rooms/clock", nil, &room) == 200 && room.Room.Status == "finished" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("game not finished by its clock within 60s of the leader's death (status %q)", room.Room.Status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if time.Now().Before(endsAt) {
		t.Fatalf("game finished before its clock (endsAt %s)", endsAt)
	}
	t.Logf("leader %s killed; game ended by its clock on the new leader (endedAt %s, endsAt %s)", c.names[leader], room.Room.EndedAt, endsAt.Format(time.RFC3339))
}

// TestClusterChaos kills (-9 or SIGTERM) and restarts random nodes under
// load for HOLOCRON_CHAOS_ROUNDS rounds (skipped when unset; .ci/run runs
// a bounded number), then checks that no acknowledged message was lost.
func TestClusterChaos(t *testing.T) {
	rounds, _ := strconv.Atoi(os.Getenv("HOLOCRON_CHAOS_ROUNDS"))
	if rounds <= 0 {
		testenv.Skip(t, "set HOLOCRON_CHAOS_ROUNDS=N to run N kill/restart rounds")
	}
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "chaos")
	load := startChatLoad(c, "chaos", 6)
	load.waitAcks(50, 60*time.Second)
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("HOLOCRON_CHAOS_SEED"); v != "" {
		var err error
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("HOLOCRON_CHAOS_SEED=%q: %v", v, err)
		}
	}
	t.Logf("chaos seed %d (HOLOCRON_CHAOS_SEED=%d replays these choices)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	for round := range rounds {
		victim := rng.IntN(len(c.nodes))
		if rng.IntN(2) == 0 {
			victim = c.leaderOf("ChatLobby", "main")
		}
		how := "kill -9"
		if rng.IntN(3) == 0 {
			how = "SIGTERM"
		}
		load.disrupt(fmt.Sprintf("round %d: %s of %s, then its restart", round, how, c.names[victim]))
		at := time.Now()
		if how == "SIGTERM" {
			if code := c.nodes[victim].stop(); code != 0 {
				t.Fatalf("round %d: SIGTERM exit code %d", round, code)
			}
		} else {
			c.nodes[victim].kill9()
		}
		load.waitAcks(load.ackCount()+50, 60*time.Second)
		gap := load.gapAfter(at)
		c.nodes[victim] = c.launch(victim, false)
		load.settleBalanced(3)
		load.waitAcks(load.ackCount()+50, 60*time.Second)
		t.Logf("round %d: %s %s; longest gap between acks %s", round, how, c.names[victim], gap.Round(time.Millisecond))
	}
	load.finish()
}

func TestClusterForwarding(t *testing.T) {
	c := startCluster(t, 3)
	leader := c.leaderOf("ChatLobby", "main")
	via := c.nodes[c.otherThan(leader)]
	createRoom(t, via, "fwd")

	// A client's claim to be a forwarding node means nothing on the client
	// port: the request is forwarded and served as any other.
	req, _ := http.NewRequest("GET", via.url("/api/lobby/rooms/fwd"), nil)
	req.Header.Set(cluster.HopHeader, "some-node")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a client's hop header on the client port: %d, want 200 (ignored)", resp.StatusCode)
	}
	// A request a peer forwarded (over the peer link) is never forwarded
	// again: a node that does not lead the object answers unavailable, with
	// Retry-After.
	viaIdx := slices.Index(c.nodes, via)
	other := c.names[3-viaIdx-leader] // the third node, as a peer
	peer := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: peerClientConfig(t, c.secrets.CertsDir(other), other, c.names[viaIdx])}}
	req, _ = http.NewRequest("GET", "https://"+c.peers[viaIdx]+"/api/lobby/rooms/fwd", nil)
	req.Header.Set(cluster.HopHeader, other)
	resp, err = peer.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]string
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || body["code"] != "unavailable" {
		t.Fatalf("second hop: %d Retry-After=%q %v, want 503 unavailable with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	// A socket forwarded through a non-leader hears 1012 "moved" when the
	// leader dies, so it reconnects at once; then the room works again
	// through the same node.
	ws := runtimetest.DialURL(t, via.wsURL("/api/lobby/websocket"), nil)
	ws.Send(map[string]any{"type": "join_room", "roomId": "fwd", "playerId": "p", "playerName": "P"})
	until(ws, "room_joined")
	c.nodes[leader].kill9()
	ws.WS.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := ws.WS.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseServiceRestart || ce.Text != "moved" {
			t.Fatalf("forwarded socket ended with %v, want close 1012 \"moved\"", err)
		}
		break
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		again, _, err := dialer.Dial(via.wsURL("/api/lobby/websocket"), nil)
		if err == nil {
			again.WriteJSON(map[string]any{"type": "join_room", "roomId": "fwd", "playerId": "p", "playerName": "P"})
			var f runtimetest.Frame
			again.SetReadDeadline(time.Now().Add(10 * time.Second))
			err = again.ReadJSON(&f)
			again.Close()
			if err == nil && f.Type() == "room_joined" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room_joined through %s within 30s of the leader's death: %v", via.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestClusterObjectAdmin(t *testing.T) {
	c := startCluster(t, 3)
	created := time.Now()
	names := make([]string, 10)
	for i := range names {
		names[i] = fmt.Sprintf("lobby%d", i)
		if code := c.nodes[i%3].do("POST", "/api/lobbies/"+names[i]+"/rooms", map[string]any{"roomId": "r", "name": "R"}, nil); code != 201 {
			t.Fatalf("create room in %s: %d", names[i], code)
		}
	}
	type summary struct {
		ID, Class, Name, Node string
		Keys                  int
		LastActivity          *time.Time
	}
	type page struct {
		Objects []summary
		Next    string
	}
	list := func(n *node, query string) []summary {
		var all []summary
		after := ""
		for {
			var p page
			if code := n.do("GET", "/admin/objects?"+query+"&limit=3&after="+after, nil, &p); code != 200 {
				t.Fatalf("list objects: %d", code)
			}
			all = append(all, p.Objects...)
			if p.Next == "" {
				return all
			}
			after = p.Next
		}
	}
	// The list, asked of any node, finds every object wherever it lives.
	owners := map[string]string{}
	for _, o := range list(c.nodes[1], "class=ChatLobby") {
		if o.Keys == 0 {
			t.Errorf("object %s listed with no keys", o.Name)
		}
		// Same machine, so the owner's clock is ours.
		if o.LastActivity == nil || o.LastActivity.Before(created.Add(-time.Second)) || o.LastActivity.After(time.Now()) {
			t.Errorf("object %s: last activity %v, want between %v and now", o.Name, o.LastActivity, created)
		}
		owners[o.Name] = o.Node
	}
	for _, name := range names {
		if owners[name] == "" {
			t.Fatalf("lobby %s not listed (listed: %v)", name, owners)
		}
	}
	distinct := map[string]bool{}
	for _, o := range owners {
		distinct[o] = true
	}
	t.Logf("10 lobbies listed, owned by %d nodes", len(distinct))

	// Inspect through a node that does not own it: forwarded to the owner.
	victim := "lobby3"
	via := c.nodes[(slices.Index(c.names, owners[victim])+1)%3]
	var obj struct {
		Node string
		Keys []struct {
			Key   string
			Value json.RawMessage
		}
	}
	if code := via.do("GET", "/admin/objects/ChatLobby/"+victim, nil, &obj); code != 200 || obj.Node != owners[victim] || len(obj.Keys) == 0 {
		t.Fatalf("inspect %s via %s: %d, node %q, %d keys", victim, via.addr, code, obj.Node, len(obj.Keys))
	}
	found := false
	for _, k := range obj.Keys {
		found = found || strings.Contains(string(k.Value), `"name":"R"`)
	}
	if !found {
		t.Fatalf("the room record is not among %s's keys shown as JSON: %+v", victim, obj.Keys)
	}

	// Delete removes it on every replica.
	if code := via.do("DELETE", "/admin/objects/ChatLobby/"+victim, nil, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		// A node whose listing fails counts as still holding it: only
		// listings that answered can show it gone.
		left, unanswered := 0, []string{}
		for i, n := range c.nodes {
			var p page
			if code := n.do("GET", "/admin/objects/local?class=ChatLobby&replicas=1&limit=1000", nil, &p); code != 200 {
				unanswered = append(unanswered, fmt.Sprintf("%s: HTTP %d", c.names[i], code))
				continue
			}
			if p.Next != "" {
				t.Fatalf("%s lists more than 1000 local lobbies", c.names[i])
			}
			for _, o := range p.Objects {
				if o.Name == victim {
					left++
				}
			}
		}
		if left == 0 && len(unanswered) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still on %d replicas 20s after delete (listings that failed: %v)", victim, left, unanswered)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var room map[string]any
	if code := via.do("GET", "/api/lobbies/"+victim+"/rooms/r", nil, &room); code != 404 {
		t.Fatalf("room of the deleted lobby: HTTP %d, want 404", code)
	}

	// Move: leadership of its partition goes elsewhere and the data stays.
	mover := "lobby5"
	before := owners[mover]
	// A move answers leadershipMoved false while no other replica is a
	// caught-up voter (the young cluster may still be adding one): retry.
	deadline = time.Now().Add(20 * time.Second)
	for {
		var moved struct{ LeadershipMoved bool }
		code := via.do("POST", "/admin/objects/ChatLobby/"+mover+"/move", nil, &moved)
		if code == 200 && moved.LeadershipMoved {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("move: %d %+v", code, moved)
		}
		time.Sleep(200 * time.Millisecond)
	}
	deadline = time.Now().Add(20 * time.Second)
	for {
		var o struct {
			Node string
			Keys []json.RawMessage
		}
		code := via.do("GET", "/admin/objects/ChatLobby/"+mover, nil, &o)
		if code == 200 && o.Node != before && len(o.Keys) > 0 {
			t.Logf("%s moved from %s to %s with its %d keys", mover, before, o.Node, len(o.Keys))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not move from %s within 20s (now %d %q)", mover, before, code, o.Node)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestChatLoadReportsFailuresOnASettledCluster: the load does not hide a
// node that refuses it. Against a "node" that answers every upgrade with
// 503 and one that accepts and never answers, with no disruption marked,
// finish's problems name both nodes; the same failures inside a
// disruption are only counted.
func TestChatLoadReportsFailuresOnASettledCluster(t *testing.T) {
	refusing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"code":"unavailable"}`, http.StatusServiceUnavailable)
	}))
	defer refusing.Close()
	up := websocket.Upgrader{}
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	}))
	defer silent.Close()
	fake := func(srv *httptest.Server) *node { return &node{t: t, addr: srv.Listener.Addr().String()} }

	for _, disrupted := range []bool{false, true} {
		c := &testCluster{t: t, nodes: []*node{fake(refusing), fake(silent)}, names: []string{"refusing", "silent"}}
		l := &chatLoad{c: c, room: "r", stop: make(chan struct{}), acked: map[string]string{}, readDeadline: 200 * time.Millisecond}
		if disrupted {
			l.disrupt("test")
		}
		for i := range 2 {
			l.wg.Add(1)
			go l.sender(fmt.Sprintf("p%d", i), i)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			l.mu.Lock()
			nodes := map[string]bool{}
			for _, f := range l.failures {
				nodes[f.node] = true
			}
			l.mu.Unlock()
			if len(nodes) == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("disrupted=%v: failures recorded on %d of 2 nodes within 20s", disrupted, len(nodes))
			}
			time.Sleep(10 * time.Millisecond)
		}
		close(l.stop)
		l.wg.Wait()
		problems := strings.Join(l.problems(), "\n")
		if disrupted {
			if problems != "" || len(l.expectedFailures()) != 2 {
				t.Errorf("failures during a disruption: problems %q, counted %v", problems, l.expectedFailures())
			}
			continue
		}
		for _, want := range []string{refusing.Listener.Addr().String() + " while the cluster was settled", "dial: HTTP 503",
			silent.Listener.Addr().String() + " while the cluster was settled"} {
			if !strings.Contains(problems, want) {
				t.Errorf("problems do not report %q:\n%s", want, problems)
			}
		}
	}
}
