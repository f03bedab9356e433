package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/holocron-run/holocron/storage"
)

const (
	testPartitions = 4
	testTick       = 10 * time.Millisecond
)

// memNet connects engines in one process. Each engine has an inbox
// drained by one goroutine, so messages between a pair keep their order,
// and a full inbox drops messages as the real transport does. An isolated
// engine neither sends nor receives anything.
type memNet struct {
	mu       sync.Mutex
	closed   bool
	engines  map[uint64]*Engine
	isolated map[uint64]bool
	blocked  map[[2]uint64]bool // one direction of a link: from, to
	inboxes  map[uint64]chan []Envelope
	wg       sync.WaitGroup
	// held collects, for an engine put on hold (hold), the messages sent
	// to it instead of delivering them: the answers a paused process
	// finds waiting in its sockets.
	held map[uint64][]Envelope
	// installGate, when set, models a follower slow to install a
	// snapshot: a batch carrying one is reported delivered to its sender
	// (as Transport does once the receiver took the batch), and reaches
	// the receiving engine only once installGate returns.
	installGate func()
}

func newMemNet() *memNet {
	return &memNet{engines: map[uint64]*Engine{}, isolated: map[uint64]bool{}, blocked: map[[2]uint64]bool{}, inboxes: map[uint64]chan []Envelope{}}
}

// attach routes messages for id to e.
func (n *memNet) attach(id uint64, e *Engine) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.engines[id] = e
	if n.inboxes[id] == nil {
		in := make(chan []Envelope, 4096)
		n.inboxes[id] = in
		n.wg.Add(1)
		go n.deliverLoop(id, in)
	}
}

func (n *memNet) setIsolated(id uint64, isolated bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.isolated[id] = isolated
}

// setBlocked cuts (or restores) the link from one engine to another in
// that direction only.
func (n *memNet) setBlocked(from, to uint64, blocked bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.blocked[[2]uint64{from, to}] = blocked
}

// hold makes the messages sent to id wait (heldFor) instead of arriving.
func (n *memNet) hold(id uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.held == nil {
		n.held = map[uint64][]Envelope{}
	}
	n.held[id] = []Envelope{}
}

// heldFor returns what waits for id; with release, it also ends the hold.
func (n *memNet) heldFor(id uint64, release bool) []Envelope {
	n.mu.Lock()
	defer n.mu.Unlock()
	envs := slices.Clone(n.held[id])
	if release {
		delete(n.held, id)
	}
	return envs
}

// passes reports whether a message may travel from one engine to another.
// The caller holds n.mu.
func (n *memNet) passes(from, to uint64) bool {
	return !n.isolated[from] && !n.isolated[to] && !n.blocked[[2]uint64{from, to}]
}

// send is Engine.Send of the engine with Raft ID from.
func (n *memNet) send(from uint64) func([]Envelope) {
	return func(envs []Envelope) {
		byPeer := map[uint64][]Envelope{}
		for _, env := range envs {
			// A copy, as the wire would make: engines must not share
			// messages (and the entries in them).
			msg := proto.Clone(env.Msg).(*pb.Message)
			byPeer[msg.GetTo()] = append(byPeer[msg.GetTo()], Envelope{Partition: env.Partition, Msg: msg})
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.closed {
			return
		}
		for to, list := range byPeer {
			in := n.inboxes[to]
			if in == nil || !n.passes(from, to) {
				continue
			}
			if held, ok := n.held[to]; ok {
				n.held[to] = append(held, list...)
				continue
			}
			select {
			case in <- list:
			default: // full: lost, as on a congested link
			}
		}
	}
}

func (n *memNet) deliverLoop(id uint64, in chan []Envelope) {
	defer n.wg.Done()
	for envs := range in {
		n.mu.Lock()
		e := n.engines[id]
		var keep []Envelope
		for _, env := range envs {
			// Messages queued before a cut are lost too.
			if n.passes(env.Msg.GetFrom(), id) {
				keep = append(keep, env)
			}
		}
		gate := n.installGate
		senders := map[uint64]*Engine{}
		for _, env := range keep {
			senders[env.Msg.GetFrom()] = n.engines[env.Msg.GetFrom()]
		}
		n.mu.Unlock()
		if e == nil || len(keep) == 0 {
			continue
		}
		if parts := snapshotPartitions(keep); gate != nil && len(parts) > 0 {
			for _, from := range senders {
				if from != nil {
					from.ReportSnapshotSent(id, parts)
				}
			}
			gate()
		}
		e.Step(keep)
	}
}

func (n *memNet) close() {
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, in := range n.inboxes {
			close(in)
		}
	}
	n.mu.Unlock()
	n.wg.Wait()
}

// testNode is one engine with its store.
type testNode struct {
	name   string
	id     uint64
	dir    string
	store  *storage.PebbleStore
	engine *Engine
	// logKeep is the engine's LogKeep (0: the default).
	logKeep uint64
}

type engineCluster struct {
	t       *testing.T
	net     *memNet
	nodes   []*testNode
	ring    *Ring
	members []Member
}

func engineConfig(n *testNode, send func([]Envelope)) EngineConfig {
	return EngineConfig{
		RaftID:       n.id,
		Store:        n.store,
		Partitions:   testPartitions,
		TickInterval: testTick,
		Send:         send,
		Logger:       testLogger(),
		PartitionOf:  testPartitionOf,
		LogKeep:      n.logKeep,
	}
}

// testPartitionOf places objects the way a cluster node does.
func testPartitionOf(id storage.ObjectID) int {
	return NewRing(testPartitions, 3, nil).PartitionOf(id[:])
}

// newEngineCluster starts one engine per name, none of them initialized.
func newEngineCluster(t *testing.T, names ...string) *engineCluster {
	t.Helper()
	return newEngineClusterTicks(t, 0, names...)
}

// newEngineClusterTicks is newEngineCluster with elections after
// electionTicks ticks (0: the default).
func newEngineClusterTicks(t *testing.T, electionTicks int, names ...string) *engineCluster {
	t.Helper()
	return newEngineClusterWith(t, electionTicks, 0, names...)
}

// newEngineClusterWith also sets the engines' LogKeep (0: the default).
func newEngineClusterWith(t *testing.T, electionTicks int, logKeep uint64, names ...string) *engineCluster {
	t.Helper()
	c := &engineCluster{t: t, net: newMemNet(), ring: NewRing(testPartitions, 3, names)}
	for _, name := range names {
		n := &testNode{name: name, id: RaftIDFor(name), dir: t.TempDir(), logKeep: logKeep}
		n.store = openTestStore(t, n.dir)
		cfg := engineConfig(n, c.net.send(n.id))
		cfg.ElectionTicks = electionTicks
		e, err := NewEngine(cfg)
		if err != nil {
			t.Fatalf("NewEngine(%s): %v", name, err)
		}
		n.engine = e
		c.net.attach(n.id, e)
		c.nodes = append(c.nodes, n)
		c.members = append(c.members, Member{Name: name, RaftID: n.id, State: StateAlive, Proven: true})
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.engine.Close()
		}
		c.net.close()
		for _, n := range c.nodes {
			if err := n.store.Close(); err != nil {
				t.Errorf("close store of %s: %v", n.name, err)
			}
		}
	})
	return c
}

func (c *engineCluster) node(id uint64) *testNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (c *engineCluster) ids() []uint64 {
	var ids []uint64
	for _, n := range c.nodes {
		ids = append(ids, n.id)
	}
	slices.Sort(ids)
	return ids
}

// servers returns the nodes that serve partition p.
func (c *engineCluster) servers(p int, among []*testNode) []*testNode {
	var out []*testNode
	for _, n := range among {
		if n.engine.Serving(p) {
			out = append(out, n)
		}
	}
	return out
}

func status(t *testing.T, e *Engine) []PartitionStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	st, err := e.Status(ctx)
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// settled reports whether every partition has all nodes as voters, no
// learners, and its ring-preferred leader serving it alone: the state in
// which the rebalancer has nothing left to do.
func (c *engineCluster) settled() (bool, string) {
	want := c.ids()
	for p := range testPartitions {
		pref := c.node(RaftIDFor(c.ring.Preferred(p)[0]))
		if s := c.servers(p, c.nodes); len(s) != 1 || s[0] != pref {
			return false, fmt.Sprintf("partition %d: served by %d nodes, want only %s", p, len(s), pref.name)
		}
		for _, n := range c.nodes {
			st := status(c.t, n.engine)[p]
			if !st.Member {
				return false, fmt.Sprintf("partition %d: %s holds no group", p, n.name)
			}
			if n == pref && (!slices.Equal(st.Voters, want) || len(st.Learners) > 0) {
				return false, fmt.Sprintf("partition %d: voters %x, learners %x; want voters %x", p, st.Voters, st.Learners, want)
			}
		}
	}
	return true, ""
}

// bootstrap makes the first node the cluster's only voter, then runs the
// rebalancer on every node, as the maintenance loop of Node does, until
// every partition is replicated on all nodes and led by its preferred
// member.
func (c *engineCluster) bootstrap() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	first := c.nodes[0].engine
	if err := first.Bootstrap(ctx); err != nil {
		c.t.Fatalf("Bootstrap: %v", err)
	}
	if !first.Initialized() {
		c.t.Fatal("Initialized() is false after Bootstrap")
	}
	waitFor(c.t, convergeTimeout, "partitions replicated on every node", func() (bool, string) {
		for _, n := range c.nodes {
			if err := n.engine.rebalance(ctx, c.ring, c.members, time.Minute); err != nil {
				return false, fmt.Sprintf("rebalance on %s: %v", n.name, err)
			}
		}
		return c.settled()
	})
}

// bootstrapFirst makes the first node the cluster's only voter and waits
// until it serves partition 0; the others join through the rebalancer.
func (c *engineCluster) bootstrapFirst(ctx context.Context) *testNode {
	c.t.Helper()
	first := c.nodes[0]
	if err := first.engine.Bootstrap(ctx); err != nil {
		c.t.Fatal(err)
	}
	waitServing(c.t, first.engine, 0)
	return first
}

// waitAllVoters runs the rebalancer on partition p's leader until every
// node is a voter of p (while, as the message says, what else happens).
func (c *engineCluster) waitAllVoters(ctx context.Context, p int, while string) {
	c.t.Helper()
	waitFor(c.t, convergeTimeout, fmt.Sprintf("every node to become a voter of partition %d %s", p, while), func() (bool, string) {
		s := c.servers(p, c.nodes)
		if len(s) != 1 {
			return false, "no single leader"
		}
		if err := s[0].engine.rebalance(ctx, c.ring, c.members, time.Minute); err != nil {
			return false, err.Error()
		}
		st := status(c.t, s[0].engine)[p]
		return slices.Equal(st.Voters, c.ids()), fmt.Sprintf("voters %x, learners %x", st.Voters, st.Learners)
	})
}

func testObject(name string) storage.ObjectID { return sha256.Sum256([]byte(name)) }

func putBatch(obj storage.ObjectID, key, value string) []byte {
	return storage.AppendBatch(nil, &storage.Batch{
		Object: obj,
		Meta:   &storage.ObjectMeta{Class: "Test", Name: "test"},
		Ops:    []storage.Op{{Kind: storage.OpPut, Key: key, Value: []byte(value)}},
	})
}

// propose proposes data on e and waits for the outcome.
func propose(t *testing.T, e *Engine, p int, data []byte) error {
	t.Helper()
	done := make(chan error, 2)
	e.Propose(p, data, func(err error) { done <- err })
	select {
	case err := <-done:
		select {
		case again := <-done:
			t.Fatalf("proposal answered twice: %v, then %v", err, again)
		case <-time.After(10 * time.Millisecond):
		}
		return err
	case <-time.After(convergeTimeout):
		t.Fatalf("proposal in partition %d not answered within %v", p, convergeTimeout)
		return nil
	}
}

// proposeRetry proposes data on whichever of among serves p, retrying
// while leadership is moving (ErrNotOwner); it returns the node that
// committed it. It may run on any goroutine.
func (c *engineCluster) proposeRetry(p int, among []*testNode, data []byte) (*testNode, error) {
	deadline := time.Now().Add(convergeTimeout)
	err := fmt.Errorf("no node serves partition %d", p)
	for time.Now().Before(deadline) {
		if s := c.servers(p, among); len(s) > 0 {
			done := make(chan error, 1)
			s[0].engine.Propose(p, data, func(err error) { done <- err })
			select {
			case err = <-done:
			case <-time.After(time.Until(deadline)):
				return nil, fmt.Errorf("proposal on %s not answered", s[0].name)
			}
			if err == nil {
				return s[0], nil
			}
			if !errors.Is(err, storage.ErrNotOwner) {
				return nil, fmt.Errorf("proposal on the leader %s: %w", s[0].name, err)
			}
		}
		time.Sleep(pollInterval)
	}
	return nil, fmt.Errorf("no leader of partition %d accepted a proposal within %v: %w", p, convergeTimeout, err)
}

func (c *engineCluster) proposeOnLeader(p int, among []*testNode, data []byte) *testNode {
	c.t.Helper()
	n, err := c.proposeRetry(p, among, data)
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

func valueOf(t *testing.T, s *storage.PebbleStore, obj storage.ObjectID, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get(obj, key)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return string(v), ok
}

func (c *engineCluster) waitValue(nodes []*testNode, obj storage.ObjectID, key, want string) {
	c.t.Helper()
	waitFor(c.t, convergeTimeout, fmt.Sprintf("%q = %q on every node", key, want), func() (bool, string) {
		for _, n := range nodes {
			if v, ok := valueOf(c.t, n.store, obj, key); !ok || v != want {
				return false, fmt.Sprintf("%s has %q (present %v)", n.name, v, ok)
			}
		}
		return true, ""
	})
}

func TestEngineReplicates(t *testing.T) {
	c := newEngineCluster(t, "alpha", "beta", "gamma")
	start := time.Now()
	c.bootstrap()
	t.Logf("3 voters in every partition after %v", time.Since(start).Round(time.Millisecond))
	for _, n := range c.nodes {
		if !n.engine.Initialized() {
			t.Errorf("%s: Initialized() is false in a replicated cluster", n.name)
		}
	}

	obj := testObject("replicated")
	p := c.ring.PartitionOf(obj[:])
	leader := c.proposeOnLeader(p, c.nodes, putBatch(obj, "k", "v1"))
	// done is called once the entry is applied on the leader.
	if v, ok := valueOf(t, leader.store, obj, "k"); !ok || v != "v1" {
		t.Errorf("leader %s: k = %q (present %v) when the proposal is done, want v1", leader.name, v, ok)
	}
	if meta, ok, err := leader.store.Meta(obj); err != nil || !ok || meta.Class != "Test" {
		t.Errorf("leader %s: Meta = %+v, %v, %v", leader.name, meta, ok, err)
	}
	c.waitValue(c.nodes, obj, "k", "v1")

	// Followers refuse proposals.
	for _, n := range c.nodes {
		if n == leader {
			continue
		}
		lead, serving := n.engine.Leader(p)
		if serving || lead != leader.id {
			t.Errorf("%s: Leader(%d) = %x, %v; want %x, false", n.name, p, lead, serving, leader.id)
		}
		if err := propose(t, n.engine, p, putBatch(obj, "k", "never")); !errors.Is(err, storage.ErrNotOwner) {
			t.Errorf("proposal on follower %s: %v, want ErrNotOwner", n.name, err)
		}
	}

	// Many concurrent proposals in every partition: each is acknowledged
	// once, and all replicas end with every value.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			obj := testObject(fmt.Sprint("many-", i))
			_, err := c.proposeRetry(c.ring.PartitionOf(obj[:]), c.nodes, putBatch(obj, "i", fmt.Sprint(i)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent proposal: %v", err)
		}
	}
	for i := range 40 {
		c.waitValue(c.nodes, testObject(fmt.Sprint("many-", i)), "i", fmt.Sprint(i))
	}
	// Replicas agree on what they applied.
	waitFor(t, convergeTimeout, "equal applied indexes", func() (bool, string) {
		var applied [][]uint64
		for _, n := range c.nodes {
			var a []uint64
			for _, st := range status(t, n.engine) {
				a = append(a, st.Applied)
			}
			applied = append(applied, a)
		}
		for _, a := range applied[1:] {
			if !slices.Equal(a, applied[0]) {
				return false, fmt.Sprintf("applied indexes per node %v", applied)
			}
		}
		return true, ""
	})
}

func TestEngineFailover(t *testing.T) {
	c := newEngineCluster(t, "alpha", "beta", "gamma")
	c.bootstrap()
	obj := testObject("failover")
	p := c.ring.PartitionOf(obj[:])
	old := c.proposeOnLeader(p, c.nodes, putBatch(obj, "k", "v1"))
	c.waitValue(c.nodes, obj, "k", "v1")
	var rest []*testNode
	for _, n := range c.nodes {
		if n != old {
			rest = append(rest, n)
		}
	}

	// Cut the leader off. A proposal it accepts now cannot commit: it
	// must fail once the leader notices, never succeed.
	oldViews, restViews := old.engine.ViewsChanged(), rest[0].engine.ViewsChanged()
	c.net.setIsolated(old.id, true)
	isolated := time.Now()
	lost := make(chan error, 2)
	old.engine.Propose(p, putBatch(obj, "k", "lost"), func(err error) { lost <- err })

	var newLeaderAt, oldStoppedAt time.Duration
	overlap := false
	waitFor(t, convergeTimeout, "a new leader and the old one stepping down", func() (bool, string) {
		others := c.servers(p, rest)
		oldServes := old.engine.Serving(p)
		if len(others) > 0 && newLeaderAt == 0 {
			newLeaderAt = time.Since(isolated)
		}
		if !oldServes && oldStoppedAt == 0 {
			oldStoppedAt = time.Since(isolated)
		}
		if len(others) > 0 && oldServes {
			overlap = true
		}
		if len(others) > 1 {
			t.Fatalf("partition %d served by %s and %s at once", p, others[0].name, others[1].name)
		}
		return len(others) == 1 && !oldServes, fmt.Sprintf("%d of the others serve; old leader serves: %v", len(others), oldServes)
	})
	t.Logf("after isolating %s: a new leader serves after %v, the old one stops after %v (overlap seen: %v)",
		old.name, newLeaderAt.Round(time.Millisecond), oldStoppedAt.Round(time.Millisecond), overlap)
	// Requests waiting for the partition's leader are woken on both sides.
	for name, ch := range map[string]<-chan struct{}{old.name: oldViews, rest[0].name: restViews} {
		select {
		case <-ch:
		default:
			t.Errorf("%s: ViewsChanged not closed after the leader changed", name)
		}
	}

	select {
	case err := <-lost:
		if !errors.Is(err, storage.ErrNotOwner) {
			t.Fatalf("proposal on the isolated leader: %v, want ErrNotOwner", err)
		}
	case <-time.After(convergeTimeout):
		t.Fatal("proposal on the isolated leader not answered")
	}
	if err := propose(t, old.engine, p, putBatch(obj, "k", "lost2")); !errors.Is(err, storage.ErrNotOwner) {
		t.Fatalf("proposal on the deposed leader: %v, want ErrNotOwner", err)
	}
	if lead, serving := old.engine.Leader(p); serving || lead == old.id {
		t.Errorf("deposed leader: Leader(%d) = %x, %v", p, lead, serving)
	}

	// The majority goes on without it.
	c.proposeOnLeader(p, rest, putBatch(obj, "k", "v2"))
	c.waitValue(rest, obj, "k", "v2")
	if v, _ := valueOf(t, old.store, obj, "k"); v != "v1" {
		t.Errorf("isolated node has k = %q, want v1", v)
	}

	// Heal: the old leader's uncommitted tail is replaced by the new
	// leader's log, and every replica converges.
	c.net.setIsolated(old.id, false)
	c.waitValue(c.nodes, obj, "k", "v2")
	c.proposeOnLeader(p, c.nodes, putBatch(obj, "k", "v3"))
	c.waitValue(c.nodes, obj, "k", "v3")
	waitFor(t, convergeTimeout, "one leader per partition", func() (bool, string) {
		for p := range testPartitions {
			if s := c.servers(p, c.nodes); len(s) != 1 {
				return false, fmt.Sprintf("partition %d served by %d nodes", p, len(s))
			}
		}
		return true, ""
	})
	select {
	case err := <-lost:
		t.Fatalf("proposal on the isolated leader answered twice, again with %v", err)
	default:
	}
}

// An isolated leader stops serving before the others can elect a new one
// (the leader lease), so two nodes never serve a partition at once.
func TestEngineNoServingOverlap(t *testing.T) {
	// Longer elections than elsewhere (lease 150ms, elections after 300ms
	// or more): the margin between the two must absorb a loaded machine's
	// late ticks.
	c := newEngineClusterTicks(t, 30, "alpha", "beta", "gamma")
	c.bootstrap()
	for round := range 4 {
		p := round % testPartitions
		var old *testNode
		waitFor(t, convergeTimeout, "one leader", func() (bool, string) {
			s := c.servers(p, c.nodes)
			if len(s) != 1 {
				return false, fmt.Sprintf("%d nodes serve partition %d", len(s), p)
			}
			old = s[0]
			return true, ""
		})
		c.net.setIsolated(old.id, true)
		isolated := time.Now()
		var stopped time.Duration
		waitFor(t, convergeTimeout, "a new leader", func() (bool, string) {
			// The new leader is looked at first: if it serves and the old
			// one still does afterwards, both served at that instant.
			others := c.servers(p, c.nodes)
			others = slices.DeleteFunc(others, func(n *testNode) bool { return n == old })
			oldServes := old.engine.Serving(p)
			if len(others) > 0 && oldServes {
				t.Fatalf("round %d: partition %d served by the isolated %s and by %s at once", round, p, old.name, others[0].name)
			}
			if !oldServes && stopped == 0 {
				stopped = time.Since(isolated)
			}
			return len(others) == 1, fmt.Sprintf("old leader serves: %v", oldServes)
		})
		t.Logf("round %d: isolated leader stopped serving after %v, a new one serves after %v",
			round, stopped.Round(time.Millisecond), time.Since(isolated).Round(time.Millisecond))
		c.net.setIsolated(old.id, false)
	}
}

// A leader's lease rests on when the heartbeats its followers acknowledged
// were sent, not on when the acknowledgements arrived. Here the leader A of
// partition p is paused (its engine goroutine blocked, as by SIGSTOP) with
// acknowledgements of its last heartbeats waiting for it, and cut off; the
// others elect a new leader. When A wakes, it reads those acknowledgements:
// they are of its own term, but must not make it serve p again beside the
// new leader (CI at 232ae14 saw that as a stale read).
func TestEngineLateAcksDoNotRenewTheLease(t *testing.T) {
	c := newEngineClusterTicks(t, 30, "alpha", "beta", "gamma")
	c.bootstrap()
	p := 0
	leader := func() *testNode {
		var l *testNode
		waitFor(t, convergeTimeout, "a leader of partition 0", func() (bool, string) {
			s := c.servers(p, c.nodes)
			if len(s) != 1 {
				return false, fmt.Sprintf("%d nodes serve it", len(s))
			}
			l = s[0]
			return true, ""
		})
		return l
	}
	a := leader()
	// Hold what is sent to A until both followers' acknowledgements of a
	// heartbeat of p wait, then pause A. Raft's check-quorum may have
	// made A step down in between (it heard nothing for a while): then
	// try again.
	resume := make(chan struct{})
	var late []Envelope
	for attempt := 0; ; attempt++ {
		if attempt == 10 {
			t.Fatal("A stepped down before it was paused, ten times")
		}
		c.net.hold(a.id)
		waitFor(t, convergeTimeout, "acknowledgements of A's heartbeats", func() (bool, string) {
			from := map[uint64]bool{}
			for _, env := range c.net.heldFor(a.id, false) {
				if env.Partition == p && env.Msg.GetType() == pb.MessageType_MsgHeartbeatResp {
					from[env.Msg.GetFrom()] = true
				}
			}
			return len(from) == 2, fmt.Sprintf("from %d followers", len(from))
		})
		paused := make(chan bool)
		go a.engine.call(context.Background(), func() error {
			paused <- a.engine.groups[p].leader
			<-resume
			return nil
		})
		if <-paused {
			break
		}
		close(resume)
		resume = make(chan struct{})
		c.net.heldFor(a.id, true)
		a = leader()
	}
	c.net.setIsolated(a.id, true)
	late = c.net.heldFor(a.id, true)
	var next *testNode
	waitFor(t, convergeTimeout, "a new leader", func() (bool, string) {
		s := slices.DeleteFunc(c.servers(p, c.nodes), func(n *testNode) bool { return n == a })
		if len(s) == 0 {
			return false, "none"
		}
		next = s[0]
		return true, ""
	})
	// A wakes and reads the acknowledgements; until check-quorum makes it
	// step down (it hears nothing new), it must not serve.
	go a.engine.Step(late)
	close(resume)
	waitFor(t, convergeTimeout, "A to step down", func() (bool, string) {
		for range 50 {
			if a.engine.Serving(p) && next.engine.Serving(p) {
				t.Fatalf("%s serves partition %d again on acknowledgements of heartbeats from before its pause, beside the new leader %s", a.name, p, next.name)
			}
			time.Sleep(time.Millisecond)
		}
		for _, ps := range status(t, a.engine) {
			if ps.Partition == p && ps.Role == raft.StateLeader.String() {
				return false, "A still leads"
			}
		}
		return true, ""
	})
}

// resettle runs the rebalancer until the cluster is settled again.
func (c *engineCluster) resettle() {
	c.t.Helper()
	waitFor(c.t, convergeTimeout, "the cluster to settle", func() (bool, string) {
		for _, n := range c.nodes {
			if err := n.engine.rebalance(c.t.Context(), c.ring, c.members, time.Minute); err != nil {
				return false, err.Error()
			}
		}
		return c.settled()
	})
}

// The lease must rest on what the partition's followers acknowledged, not
// on any message from them. Here the leader A of partition p can no longer
// reach anyone and C cannot reach A, but B still reaches A with the
// heartbeats of a partition B leads: A keeps counting B toward its lease
// of p while B and C elect a new leader of p.
func TestEngineLeaseCountsOnlyAcks(t *testing.T) {
	c := newEngineCluster(t, "alpha", "beta", "gamma")
	c.bootstrap()
	for round := range 20 {
		// A leads p; B leads another partition.
		var a, b, other *testNode
		p := -1
		for q := range testPartitions {
			s := c.servers(q, c.nodes)[0]
			if a == nil {
				a, p = s, q
			} else if s != a && b == nil {
				b = s
			}
		}
		if b == nil {
			t.Fatal("one node leads every partition")
		}
		for _, n := range c.nodes {
			if n != a && n != b {
				other = n
			}
		}
		cut := [][2]uint64{{a.id, b.id}, {a.id, other.id}, {other.id, a.id}}
		for _, l := range cut {
			c.net.setBlocked(l[0], l[1], true)
		}
		waitFor(t, convergeTimeout, "a new leader", func() (bool, string) {
			s := slices.DeleteFunc(c.servers(p, c.nodes), func(n *testNode) bool { return n == a })
			if len(s) > 0 && a.engine.Serving(p) {
				t.Fatalf("round %d: partition %d served by %s, which hears nothing from its followers in it, and by the new leader %s", round, p, a.name, s[0].name)
			}
			return len(s) > 0, "no new leader"
		})
		for _, l := range cut {
			c.net.setBlocked(l[0], l[1], false)
		}
		c.resettle()
	}
}

func TestEngineRestartKeepsGroups(t *testing.T) {
	for _, reopenStore := range []bool{false, true} {
		t.Run(fmt.Sprintf("reopenStore=%v", reopenStore), func(t *testing.T) {
			n := &testNode{name: "solo", id: RaftIDFor("solo"), dir: t.TempDir()}
			n.store = openTestStore(t, n.dir)
			defer func() { n.store.Close() }()
			e, err := NewEngine(engineConfig(n, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { e.Close() }()
			if e.Initialized() {
				t.Fatal("fresh engine: Initialized() is true")
			}
			ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
			defer cancel()
			if err := e.Bootstrap(ctx); err != nil {
				t.Fatal(err)
			}
			obj := testObject("durable")
			p := NewRing(testPartitions, 1, []string{n.name}).PartitionOf(obj[:])
			waitServing(t, e, p)
			for i := range 5 {
				if err := propose(t, e, p, putBatch(obj, fmt.Sprint("k", i), fmt.Sprint("v", i))); err != nil {
					t.Fatalf("proposal %d: %v", i, err)
				}
			}
			before := status(t, e)[p]

			e.Close()
			if reopenStore {
				if err := n.store.Close(); err != nil {
					t.Fatal(err)
				}
				n.store = openTestStore(t, n.dir)
			}
			e, err = NewEngine(engineConfig(n, nil))
			if err != nil {
				t.Fatalf("NewEngine on the old store: %v", err)
			}
			if !e.Initialized() {
				t.Fatal("reopened engine: Initialized() is false")
			}
			if err := e.Bootstrap(ctx); err == nil {
				t.Error("Bootstrap of an initialized engine succeeded")
			}
			for i := range 5 {
				if v, ok := valueOf(t, n.store, obj, fmt.Sprint("k", i)); !ok || v != fmt.Sprint("v", i) {
					t.Errorf("after restart: k%d = %q (present %v)", i, v, ok)
				}
			}
			after := status(t, e)
			for q, st := range after {
				if !st.Member || !slices.Equal(st.Voters, []uint64{n.id}) {
					t.Errorf("partition %d after restart: member %v, voters %x", q, st.Member, st.Voters)
				}
			}
			if after[p].Applied < before.Applied {
				t.Errorf("applied index went back from %d to %d", before.Applied, after[p].Applied)
			}
			waitServing(t, e, p)
			if err := propose(t, e, p, putBatch(obj, "k0", "new")); err != nil {
				t.Fatalf("proposal after restart: %v", err)
			}
			if v, _ := valueOf(t, n.store, obj, "k0"); v != "new" {
				t.Errorf("after a new proposal: k0 = %q, want new", v)
			}
			if st := status(t, e)[p]; st.Term <= before.Term || st.Applied <= before.Applied {
				t.Errorf("after restart: term %d, applied %d; before: term %d, applied %d", st.Term, st.Applied, before.Term, before.Applied)
			}
		})
	}
}

func waitServing(t *testing.T, e *Engine, p int) {
	t.Helper()
	waitFor(t, convergeTimeout, fmt.Sprintf("serving partition %d", p), func() (bool, string) {
		return e.Serving(p), "not serving"
	})
}

func startSolo(t *testing.T) (*testNode, *Engine) {
	t.Helper()
	n := &testNode{name: "solo", id: RaftIDFor("solo"), dir: t.TempDir()}
	n.store = openTestStore(t, n.dir)
	e, err := NewEngine(engineConfig(n, nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.Close()
		n.store.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	if err := e.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	for p := range testPartitions {
		waitServing(t, e, p)
	}
	return n, e
}

// An undecodable entry is skipped (the same way on every replica) and
// does not stop the group.
func TestEngineSkipsUndecodableEntry(t *testing.T) {
	n, e := startSolo(t)
	e.Propose(0, []byte("not a batch"), func(error) {})
	obj := testObject("after-garbage")
	if err := propose(t, e, 0, putBatch(obj, "k", "v")); err != nil {
		t.Fatalf("proposal after an undecodable one: %v", err)
	}
	if v, _ := valueOf(t, n.store, obj, "k"); v != "v" {
		t.Fatalf("k = %q, want v", v)
	}
}

func TestEngineAnswersUndecodableProposal(t *testing.T) {
	_, e := startSolo(t)
	answered := make(chan error, 1)
	e.Propose(0, []byte("not a batch"), func(err error) { answered <- err })
	select {
	case err := <-answered:
		t.Logf("answered with %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("proposal of an undecodable batch never answered")
	}
}

func TestEngineCloseAnswersProposals(t *testing.T) {
	_, e := startSolo(t)
	e.Close()
	if e.Serving(0) {
		t.Error("Serving(0) is true after Close")
	}
	const count = 32
	answered := make(chan error, count)
	for range count {
		e.Propose(0, putBatch(testObject("x"), "k", "v"), func(err error) { answered <- err })
	}
	for i := range count {
		select {
		case err := <-answered:
			if err == nil {
				t.Fatalf("proposal after Close succeeded")
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d proposals after Close were answered", i, count)
		}
	}
}

// A new member catches up from the leader's log, even when the log before
// the entry adding it is longer than one Raft message (1 MiB): it then
// arrives, and commits, in pieces, and the first pieces hold configurations
// without the new member. (An engine that drops its group when an applied
// configuration lacks it, as commit 50a5a90 did, loses the group here, and
// the leader's next heartbeat makes raft panic on the empty log.)
func TestEngineAddMemberWithLongLog(t *testing.T) {
	c := newEngineCluster(t, "alpha", "beta") // the ring wants both everywhere
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	first := c.bootstrapFirst(ctx)
	big := bytes.Repeat([]byte("x"), 100<<10)
	for i := range 14 {
		if err := propose(t, first.engine, 0, putBatch(testObject("big"), fmt.Sprint(i), string(big))); err != nil {
			t.Fatal(err)
		}
	}
	c.waitAllVoters(ctx, 0, "")
	for _, key := range []string{"0", "7", "13"} {
		c.waitValue(c.nodes, testObject("big"), key, string(big))
	}
}

func TestEngineAddMemberBySnapshotAfterTruncation(t *testing.T) {
	c := newEngineClusterWith(t, 0, 10, "alpha", "beta")
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	first := c.bootstrapFirst(ctx)
	// Objects of partition 0 and of another partition: the snapshot must
	// carry exactly partition 0's.
	var mine, other storage.ObjectID
	for i := 0; mine == (storage.ObjectID{}) || other == (storage.ObjectID{}); i++ {
		id := testObject(fmt.Sprint("obj", i))
		switch testPartitionOf(id) {
		case 0:
			mine = id
		case 1:
			other = id
		}
	}
	const puts = 100
	for i := range puts {
		if err := propose(t, first.engine, 0, putBatch(mine, fmt.Sprint(i), fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	alarm := time.Unix(1900000000, 0).UTC()
	if err := propose(t, first.engine, 0, storage.AppendBatch(nil, &storage.Batch{Object: mine,
		Meta: &storage.ObjectMeta{Class: "C", Name: "n"}, Alarm: storage.AlarmChange{Set: true, At: alarm}})); err != nil {
		t.Fatal(err)
	}
	waitServing(t, first.engine, 1)
	if err := propose(t, first.engine, 1, putBatch(other, "k", "v")); err != nil {
		t.Fatal(err)
	}
	var truncated uint64
	first.engine.call(ctx, func() error { truncated = first.engine.groups[0].st.truncIndex; return nil })
	if truncated == 0 {
		t.Fatalf("the log of partition 0 was not truncated after %d entries with LogKeep 10", puts)
	}
	c.waitAllVoters(ctx, 0, "")
	beta := c.nodes[1]
	for _, i := range []int{0, 50, puts - 1} {
		c.waitValue([]*testNode{beta}, mine, fmt.Sprint(i), fmt.Sprint("v", i))
	}
	if at, ok, err := beta.store.Alarm(mine); err != nil || !ok || !at.Equal(alarm) {
		t.Fatalf("beta's alarm of the object = %v %v %v, want %v", at, ok, err, alarm)
	}
	if due, err := beta.store.Alarms(alarm, 10); err != nil || len(due) != 1 || due[0].Object != mine || due[0].Meta.Class != "C" {
		t.Fatalf("beta's alarm index = %+v %v, want the object's alarm", due, err)
	}
	// Partition 1 reaches beta too (it is a wanted member there as well),
	// but never through partition 0's snapshot: check the snapshot's
	// content directly.
	var snap *pb.Snapshot
	if err := first.engine.call(ctx, func() (err error) {
		snap, err = first.engine.groups[0].st.Snapshot()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(snap.Data, other[:]) {
		t.Fatal("partition 0's snapshot carries an object of partition 1")
	}
	if !bytes.Contains(snap.Data, mine[:]) {
		t.Fatal("partition 0's snapshot lacks its object")
	}
}

// A learner whose snapshot takes a while to install, on a partition whose
// log moves on meanwhile by many times LogKeep, still catches up and is
// promoted. Raft hears the snapshot was delivered before the learner
// acknowledges it; the leader used to hold its log only for what the
// learner had acknowledged, truncated past the snapshot during the
// install, and sent snapshot after snapshot (the dead-member process test
// saw the lobby's learner stay a learner under chat load).
func TestEngineLearnerCatchesUpWhileTheLogOutrunsItsSnapshot(t *testing.T) {
	const logKeep = 10
	c := newEngineClusterWith(t, 0, logKeep, "alpha", "beta")
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	first := c.bootstrapFirst(ctx)
	var obj storage.ObjectID
	for i := 0; ; i++ {
		if obj = testObject(fmt.Sprint("obj", i)); testPartitionOf(obj) == 0 {
			break
		}
	}
	for i := range 50 {
		if err := propose(t, first.engine, 0, putBatch(obj, fmt.Sprint(i), "v")); err != nil {
			t.Fatal(err)
		}
	}
	// The load: writers that keep the log moving until the learner is a
	// voter.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var committed atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan error, 1)
				first.engine.Propose(0, putBatch(obj, fmt.Sprint("w", w, "-", i), "v"), func(err error) { done <- err })
				select {
				case err := <-done:
					if err == nil {
						committed.Add(1)
					}
				case <-stop:
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	// Each install takes until the leader counts beta inactive (it answers
	// nothing while installing) and the log has moved on by far more than
	// LogKeep entries: what let the log outrun the snapshot. The leader
	// commits alone while beta is a learner; once beta votes, commits wait
	// for it, so the gate gives up after a while rather than hold the
	// commits it waits for.
	beta := c.nodes[1].id
	inactive := func() bool {
		var active bool
		err := first.engine.call(ctx, func() error {
			active = first.engine.groups[0].rn.Status().Progress[beta].RecentActive
			return nil
		})
		return err == nil && !active
	}
	var outrun atomic.Int64
	c.net.mu.Lock()
	c.net.installGate = func() {
		from := committed.Load()
		deadline := time.Now().Add(5 * time.Second)
		for committed.Load()-from < 4*logKeep || !inactive() {
			if time.Now().After(deadline) {
				return
			}
			time.Sleep(time.Millisecond)
		}
		outrun.Add(1)
	}
	c.net.mu.Unlock()
	c.waitAllVoters(ctx, 0, "under load")
	if outrun.Load() == 0 {
		t.Fatal("no snapshot install lasted until the leader counted beta inactive and the log moved on by 4×LogKeep entries: the test proves nothing")
	}
}

// TestNeededFrom: what a leader keeps for a follower, per Raft progress.
func TestNeededFrom(t *testing.T) {
	for _, tc := range []struct {
		name string
		pr   tracker.Progress
		want uint64
	}{
		{"snapshot in flight", tracker.Progress{State: tracker.StateSnapshot, Match: 0, Next: 1, PendingSnapshot: 700}, 700},
		{"probe after a delivered snapshot", tracker.Progress{State: tracker.StateProbe, Match: 0, Next: 701}, 700},
		{"probe of a follower that acknowledged more", tracker.Progress{State: tracker.StateProbe, Match: 900, Next: 901}, 900},
		{"streaming", tracker.Progress{State: tracker.StateReplicate, Match: 650, Next: 800}, 650},
	} {
		if got := neededFrom(tc.pr); got != tc.want {
			t.Errorf("%s: neededFrom(%+v) = %d, want %d", tc.name, tc.pr, got, tc.want)
		}
	}
}

// A proposal made before the partition stopped serving is refused once it
// serves again: it may build on a batch refused in between (an object
// pipelines its batches), so it must not commit without it.
func TestEngineRefusesProposalsAcrossAServiceGap(t *testing.T) {
	n, e := startSolo(t)
	obj := testObject("gap")
	before := e.views[0].epoch.Load()
	refused := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	err := e.call(ctx, func() error {
		e.setServing(0, false)
		e.setServing(0, true)
		// As if queued by Propose before the gap.
		e.propose(proposal{part: 0, data: putBatch(obj, "k", "stale"), done: func(err error) { refused <- err }, epoch: before})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refused:
		if !errors.Is(err, storage.ErrNotOwner) || !errors.Is(err, storage.ErrNotWritten) {
			t.Fatalf("proposal from before the gap: %v, want refused (ErrNotOwner, ErrNotWritten)", err)
		}
	case <-time.After(convergeTimeout):
		t.Fatal("proposal from before the gap not answered")
	}
	if err := propose(t, e, 0, putBatch(obj, "k", "fresh")); err != nil {
		t.Fatalf("proposal after the gap: %v", err)
	}
	if v, _ := valueOf(t, n.store, obj, "k"); v != "fresh" {
		t.Fatalf("k = %q, want fresh (the stale batch must not have landed)", v)
	}
}

// A batch submitted while an earlier batch of its object is in flight
// belongs to that batch's serving epoch: after a gap in service it is
// refused with it (it may build on its writes), while another object's
// batch, begun after the gap, commits.
// An object's batches are answered in the order it submitted them, as
// storage.Store promises, even when the engine refuses a later batch at
// once while an earlier one is still on its way through Raft (a partition
// handed over mid-chain): the runtime matches answers to batches by that
// order.
func TestReplicatedStoreAnswersAnObjectsBatchesInOrder(t *testing.T) {
	n, e := startSolo(t)
	s := &replicatedStore{local: n.store, engine: e, part: testPartitionOf}
	obj := testObject("ordered")
	p := testPartitionOf(obj)
	batch := func(value string) *storage.Batch {
		return &storage.Batch{Object: obj, Meta: &storage.ObjectMeta{Class: "Test", Name: "test"},
			Ops: []storage.Op{{Kind: storage.OpPut, Key: "k", Value: []byte(value)}}}
	}
	var mu sync.Mutex
	var order []string
	answer := func(name string) func(error) {
		return func(err error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				order = append(order, name+": committed")
			case errors.Is(err, storage.ErrNotWritten):
				order = append(order, name+": refused")
			default:
				order = append(order, name+": "+err.Error())
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	if err := e.call(ctx, func() error {
		// The first batch goes into the Raft log (pending until the
		// engine's next Ready); then the partition stops being served and
		// the second is refused on the spot.
		s.Commit(batch("first"), answer("first"))
		e.propose(<-e.props)
		e.setServing(p, false)
		s.Commit(batch("second"), answer("second"))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, convergeTimeout, "both batches answered", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(order) == 2, fmt.Sprint(order)
	})
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"first: committed", "second: refused"}; !slices.Equal(order, want) {
		t.Fatalf("answers %v, want %v", order, want)
	}
}

func TestReplicatedStoreRefusesTheRestOfAChainAfterAGap(t *testing.T) {
	n, e := startSolo(t)
	s := &replicatedStore{local: n.store, engine: e, part: testPartitionOf}
	chained := testObject("chained")
	p := testPartitionOf(chained)
	var fresh storage.ObjectID
	for i := 0; ; i++ { // another object in the same partition
		if fresh = testObject(fmt.Sprint("fresh", i)); testPartitionOf(fresh) == p {
			break
		}
	}
	batch := func(obj storage.ObjectID, value string) *storage.Batch {
		return &storage.Batch{Object: obj, Meta: &storage.ObjectMeta{Class: "Test", Name: "test"},
			Ops: []storage.Op{{Kind: storage.OpPut, Key: "k", Value: []byte(value)}}}
	}
	results := make(chan string, 3)
	answer := func(name string) func(error) {
		return func(err error) {
			switch {
			case err == nil:
				results <- name + ": committed"
			case errors.Is(err, storage.ErrNotWritten):
				results <- name + ": refused"
			default:
				results <- name + ": " + err.Error()
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	// On the engine's goroutine, so that nothing is proposed before the
	// gap: the proposals wait in its queue.
	err := e.call(ctx, func() error {
		s.Commit(batch(chained, "first"), answer("first"))
		e.setServing(p, false)
		e.setServing(p, true)
		s.Commit(batch(chained, "second"), answer("second"))
		s.Commit(batch(fresh, "other"), answer("other"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for range 3 {
		select {
		case r := <-results:
			got[r] = true
		case <-time.After(convergeTimeout):
			t.Fatalf("answers so far: %v", got)
		}
	}
	for _, want := range []string{"first: refused", "second: refused", "other: committed"} {
		if !got[want] {
			t.Errorf("want %q; got %v", want, got)
		}
	}
	if v, ok := valueOf(t, n.store, chained, "k"); ok {
		t.Errorf("chained object has k = %q; nothing of its chain may land", v)
	}
}

// An acknowledged write survives a crash that loses every write not yet
// fsync'd (a power cut, not only kill -9: Pebble's strict in-memory file
// system keeps only what was synced). The batch that applies committed
// entries is not fsync'd on its own (the Raft log, synced when the entries
// were appended, is their write-ahead log): after the crash the entries
// are applied again from the log, before the partition serves. The test
// fails if the log itself went unsynced.
func TestEngineAckedWritesSurviveLosingUnsyncedWrites(t *testing.T) {
	mem := vfs.NewCrashableMem()
	open := func() (*testNode, *Engine) {
		t.Helper()
		n := &testNode{name: "solo", id: RaftIDFor("solo"), dir: "data"}
		s, err := storage.OpenPebble(n.dir, storage.PebbleOptions{FS: mem})
		if err != nil {
			t.Fatalf("OpenPebble: %v", err)
		}
		n.store = s
		e, err := NewEngine(engineConfig(n, nil))
		if err != nil {
			t.Fatal(err)
		}
		return n, e
	}
	n, e := open()
	ctx, cancel := context.WithTimeout(context.Background(), convergeTimeout)
	defer cancel()
	if err := e.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	obj := testObject("crash")
	p := testPartitionOf(obj)
	waitServing(t, e, p)
	for i := range 20 {
		if err := propose(t, e, p, putBatch(obj, fmt.Sprint("k", i), fmt.Sprint("v", i))); err != nil {
			t.Fatal(err)
		}
	}
	// The crash: the disk as it is now, with exactly what was synced.
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	e.Close()
	n.store.Close()
	mem = crashed

	n, e = open()
	t.Cleanup(func() {
		e.Close()
		n.store.Close()
	})
	waitServing(t, e, p)
	for i := range 20 {
		if v, ok := valueOf(t, n.store, obj, fmt.Sprint("k", i)); !ok || v != fmt.Sprint("v", i) {
			t.Fatalf("after the crash k%d = %q (present %v), want v%d: an acknowledged write was lost", i, v, ok, i)
		}
	}
}
