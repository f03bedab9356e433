package cluster

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/holocron-run/holocron/protocol"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/storage"
)

// HopHeader names the node that forwarded a request over the peer link. A
// node that receives a forwarded request for an object it does not serve
// answers unavailable instead of forwarding again, so a stale view can
// never make a loop. It means something only on the peer link: the client
// port drops it (and X-Forwarded-For) from what clients send.
const HopHeader = "X-Holocron-Forwarded-By"

// Config configures a cluster node.
type Config struct {
	NodeName string
	// BindAddr and AdvertiseAddr are the gossip addresses (host:port).
	BindAddr      string
	AdvertiseAddr string
	// HTTPAddr is the advertised address of this node's client port (shown
	// to operators and clients; no node-to-node traffic goes there).
	HTTPAddr string
	// PeerAddr is the advertised address of this node's peer listener,
	// where Peer's server (serving PeerHandler) listens.
	PeerAddr string
	// Peer is the peer link (required).
	Peer *PeerLink
	// GossipKeys encrypt gossip (nil: in clear, for -insecure clusters).
	GossipKeys GossipKeys
	Join       []string
	// Bootstrap makes this node create the cluster's partition groups if no
	// member it can reach holds any. Exactly one node of a new cluster sets it.
	Bootstrap   bool
	Partitions  int // default 64; fixed for the cluster's life
	Replication int // default 3
	// DeadMemberTimeout is how long a crashed member keeps its replicas
	// before the partitions' leaders replace it. Default 1m.
	DeadMemberTimeout time.Duration
	// TickInterval is the Raft tick (elections take 10–20 ticks). Default 100ms.
	TickInterval time.Duration
	// RaftLogKeep is how many applied entries each partition's log keeps
	// before older ones are truncated (default 10000).
	RaftLogKeep uint64
	// LeaderWait is how long a request for a partition without a leader
	// (being handed over, or electing after a crash) waits for one before
	// it is answered 503 unavailable. Default: 20 Raft ticks, the longest
	// an election timeout runs.
	LeaderWait time.Duration
	// MaxRequestBody and RequestBodyTimeout bound a request's body, read
	// whole before the request is routed; they should be the runtime's
	// (default: runtime.DefaultMaxRequestBody, DefaultRequestBodyTimeout).
	MaxRequestBody     int64
	RequestBodyTimeout time.Duration

	Store  *storage.PebbleStore
	Logger *slog.Logger
	// OnServing is told when this node starts or stops serving a partition;
	// the runtime evicts the partition's objects on a stop.
	OnServing func(part int, serving bool)
	// Metrics, when set, receives the cluster's Prometheus collectors.
	Metrics prometheus.Registerer
}

// Node is one member of a Holocron cluster.
type Node struct {
	cfg       Config
	log       *slog.Logger
	self      uint64
	members   *Membership
	engine    *Engine
	transport *Transport
	store     *replicatedStore
	peer      *PeerLink
	links     *links
	metrics   *metrics

	ring atomic.Pointer[Ring]

	// ctx ends when the node stops (stop).
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	changed chan struct{}

	// rt runs the sockets this node holds as their edge (SetRuntime).
	rt atomic.Pointer[runtime.Runtime]
	// edgeClients are this node's edge sessions, by owner peer address.
	edgeMu      sync.Mutex
	edgeClients map[string]*edgeClient
	// ownerSessions are the edges' sessions with this node, by ID.
	ownerSessions map[string]*ownerSession
	edgeSIDs      atomic.Uint64
}

// Start joins (or bootstraps) the cluster.
func Start(cfg Config) (*Node, error) {
	if cfg.Partitions == 0 {
		cfg.Partitions = 64
	}
	if cfg.Replication == 0 {
		cfg.Replication = 3
	}
	if cfg.DeadMemberTimeout == 0 {
		cfg.DeadMemberTimeout = time.Minute
	}
	if cfg.MaxRequestBody == 0 {
		cfg.MaxRequestBody = runtime.DefaultMaxRequestBody
	}
	if cfg.RequestBodyTimeout == 0 {
		cfg.RequestBodyTimeout = runtime.DefaultRequestBodyTimeout
	}
	if cfg.LeaderWait == 0 {
		cfg.LeaderWait = 20 * cmp.Or(cfg.TickInterval, 100*time.Millisecond)
	}

	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Peer == nil || cfg.PeerAddr == "" {
		return nil, errors.New("cluster: Config.Peer and Config.PeerAddr are required")
	}
	if err := checkIdentity(cfg.Store, cfg.NodeName, cfg.Partitions); err != nil {
		return nil, err
	}
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "cluster"),
		self:    RaftIDFor(cfg.NodeName),
		changed: make(chan struct{}, 1),
		peer:    cfg.Peer,
		links:   newLinks(cfg.NodeName, cfg.Peer),

		edgeClients:   map[string]*edgeClient{},
		ownerSessions: map[string]*ownerSession{},
	}
	n.ring.Store(NewRing(cfg.Partitions, cfg.Replication, []string{cfg.NodeName}))
	if cfg.Metrics != nil {
		m, err := newMetrics(cfg.Metrics, n)
		if err != nil {
			return nil, fmt.Errorf("cluster metrics: %w", err)
		}
		n.metrics = m
	}
	n.transport = NewTransport(n.self, n.addrOf, cfg.Peer, func(envs []Envelope) { n.engine.Step(envs) },
		func(to uint64, parts []int) { n.engine.ReportUnreachable(to, parts) }, cfg.Logger)
	if n.metrics != nil {
		n.transport.onFailure = n.metrics.sendFailures.Inc
	}
	n.transport.snapshotSent = func(to uint64, parts []int) { n.engine.ReportSnapshotSent(to, parts) }
	eng, err := NewEngine(EngineConfig{
		PartitionOf:  func(id storage.ObjectID) int { return n.PartitionOf(runtime.ID(id)) },
		LogKeep:      cfg.RaftLogKeep,
		RaftID:       n.self,
		Store:        cfg.Store,
		Partitions:   cfg.Partitions,
		TickInterval: cfg.TickInterval,
		Send:         n.transport.Send,
		OnServing:    n.onServing,
		Logger:       cfg.Logger,
		metrics:      n.metrics,
	})
	if err != nil {
		return nil, err
	}
	n.engine = eng
	n.store = &replicatedStore{local: cfg.Store, engine: eng, part: func(id storage.ObjectID) int { return n.PartitionOf(runtime.ID(id)) }}
	ms, err := StartMembership(MembershipConfig{
		NodeName:      cfg.NodeName,
		BindAddr:      cfg.BindAddr,
		AdvertiseAddr: cfg.AdvertiseAddr,
		HTTPAddr:      cfg.HTTPAddr,
		PeerAddr:      cfg.PeerAddr,
		GossipKeys:    cfg.GossipKeys,
		Join:          cfg.Join,
		Logger:        cfg.Logger,
		OnChange:      n.poke,
	})
	if err != nil {
		eng.Close()
		n.transport.Close()
		return nil, err
	}
	n.members = ms
	cfg.Peer.setNameAt(n.memberAt)
	if eng.Initialized() {
		ms.SetInitialized()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.ctx, n.stop = ctx, cancel
	n.wg.Add(2)
	go n.maintain(ctx)
	go n.watchEdges(ctx)
	return n, nil
}

// checkIdentity checks (and on first use records) which node a data
// directory belongs to: Raft IDs are derived from names, so reusing a
// directory under another name would make one node speak with another's
// voice.
func checkIdentity(s *storage.PebbleStore, name string, partitions int) error {
	want, _ := json.Marshal(map[string]any{"node": name, "partitions": partitions})
	got, ok, err := s.NodeIdentity()
	if err != nil {
		return err
	}
	if ok {
		var id struct {
			Node       string `json:"node"`
			Partitions int    `json:"partitions"`
		}
		if err := json.Unmarshal(got, &id); err != nil {
			return fmt.Errorf("data directory identity: %w", err)
		}
		if id.Node != name || id.Partitions != partitions {
			return fmt.Errorf("data directory belongs to node %q with %d partitions, not %q with %d", id.Node, id.Partitions, name, partitions)
		}
		return nil
	}
	return s.SetNodeIdentity(want)
}

// SetGossipKeys rotates the gossip keyring while the node runs (see
// GossipKeys for the steps).
func (n *Node) SetGossipKeys(keys GossipKeys) error { return n.members.SetGossipKeys(keys) }

// Store is the replicated Store for the runtime.
func (n *Node) Store() storage.Store { return n.store }

// PartitionOf returns the partition of an object.
func (n *Node) PartitionOf(id runtime.ID) int { return n.ring.Load().PartitionOf(id[:]) }

// RaftHandler receives Raft traffic from peers (mount it at RaftPath).
func (n *Node) RaftHandler() http.Handler { return n.transport }

// addrOf is where a member's peer listener (Raft traffic, forwarded
// requests) is. Members that left are included: a leaving node hands its
// partitions over after it announced the leave, and the hand-over needs
// the others' answers to reach it.
func (n *Node) addrOf(raftID uint64) (string, bool) {
	for _, m := range n.members.Members() {
		if m.RaftID == raftID && m.PeerAddr != "" {
			return m.PeerAddr, true
		}
	}
	return "", false
}

// memberAt names the member whose peer listener is at addr: the peer link
// checks that the node answering there holds that member's certificate.
func (n *Node) memberAt(addr string) (string, bool) {
	for _, m := range n.members.Members() {
		if m.PeerAddr == addr {
			return m.Name, true
		}
	}
	return "", false
}

func (n *Node) poke() {
	select {
	case n.changed <- struct{}{}:
	default:
	}
}

func (n *Node) onServing(part int, serving bool) {
	if n.cfg.OnServing != nil {
		n.cfg.OnServing(part, serving)
	}
	n.poke()
}

// maintain keeps the ring current, bootstraps when asked, announces led
// partitions and runs the rebalancer.
func (n *Node) maintain(ctx context.Context) {
	defer n.wg.Done()
	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-n.changed:
		}
		members := n.members.Members()
		n.links.probe(ctx, members)
		n.links.annotate(members)
		n.ring.Store(NewRing(n.cfg.Partitions, n.cfg.Replication, n.placementMembers(members)))
		if n.cfg.Bootstrap && !n.engine.Initialized() && time.Since(start) > 2*time.Second {
			n.maybeBootstrap(ctx, members)
		}
		if n.engine.Initialized() {
			n.members.SetInitialized()
		}
		bitmap := make([]byte, (n.cfg.Partitions+7)/8)
		for p := range n.cfg.Partitions {
			if n.engine.Serving(p) {
				bitmap[p/8] |= 1 << (p % 8)
			}
		}
		n.members.SetLeads(bitmap)
		if err := n.engine.rebalance(ctx, n.ring.Load(), members, n.cfg.DeadMemberTimeout); err != nil && ctx.Err() == nil {
			n.log.Warn("rebalance", "err", err)
		}
	}
}

// placementMembers are the members the ring places partitions on: those
// alive or suspected, and crashed ones until DeadMemberTimeout. Members that
// left are gone at once.
func (n *Node) placementMembers(members []Member) []string {
	var names []string
	for _, m := range members {
		switch m.State {
		case StateAlive, StateSuspect:
		case StateDead:
			if time.Since(m.Since) > n.cfg.DeadMemberTimeout {
				continue
			}
		default:
			continue
		}
		names = append(names, m.Name)
	}
	if len(names) == 0 {
		names = []string{n.cfg.NodeName}
	}
	return names
}

func (n *Node) maybeBootstrap(ctx context.Context, members []Member) {
	for _, m := range members {
		if m.Initialized && m.Name != n.cfg.NodeName {
			n.log.Info("cluster already initialized; waiting to be added", "seen", m.Name)
			n.cfg.Bootstrap = false
			return
		}
	}
	if err := n.engine.Bootstrap(ctx); err != nil {
		n.log.Error("bootstrap", "err", err)
		return
	}
	n.log.Info("bootstrapped cluster", "partitions", n.cfg.Partitions)
	n.members.SetInitialized()
}

// Direct implements runtime.Director: serve here (with local) if this node
// serves the object's partition, otherwise forward to the leader in one
// hop. While leadership is changing (a hand-over takes a few round trips,
// an election after a crash about a second) the request waits up to
// LeaderWait for a leader before it is answered unavailable, and a request
// turned away unserved (the leader, here or there, had just let the
// partition go: runtime.HeaderNotServed) is routed again within that time,
// so clients rarely see a partition move.
func (n *Node) Direct(w http.ResponseWriter, r *http.Request, id runtime.ID, local http.Handler) {
	p := n.PartitionOf(id)
	// Over the peer link every object request was forwarded by a peer.
	forwarded := FromPeer(r)
	var (
		deadline *time.Timer
		poll     *time.Ticker
		retrying bool
	)
	// The whole body first, bounded in size and time as the runtime
	// bounds it: so that the request can be sent again to a partition's
	// next leader, and so that a client sending half a body holds up only
	// its own request, here as on the owner.
	body, ok := runtime.ReadBody(w, r, n.cfg.MaxRequestBody, n.cfg.RequestBodyTimeout)
	if !ok {
		return // answered: too large, too slow or broken off
	}
	for {
		changed := n.engine.ViewsChanged()
		serve, candidates, why := n.route(p, forwarded)
		if (serve || len(candidates) > 0) && !retrying {
			if len(body) > 0 {
				r.Body = io.NopCloser(bytes.NewReader(body))
			} else {
				r.Body = http.NoBody
			}
			again := false
			if serve {
				again = serveLocal(w, r, local)
			} else {
				n.countForward("proxied")
				again = n.forward(w, r, p, candidates)
			}
			if !again {
				return
			}
			n.countForward("rerouted")
			retrying = true
			why = fmt.Sprintf("partition %d is moving", p)
		}
		if lead, _ := n.engine.Leader(p); forwarded && lead != 0 && lead != n.self {
			// The partition has moved on from here: let the forwarding
			// node, which routes by its own view, find the new leader.
			n.countForward("unavailable")
			notServed(w, why)
			return
		}
		if deadline == nil {
			deadline = time.NewTimer(n.cfg.LeaderWait)
			defer deadline.Stop()
			// What other nodes lead arrives by gossip, which signals
			// nothing here: look again now and then as well.
			poll = time.NewTicker(50 * time.Millisecond)
			defer poll.Stop()
		}
		select {
		case <-changed:
			retrying = false
			continue
		case <-poll.C:
			retrying = false
			continue
		case <-r.Context().Done():
		case <-deadline.C:
		}
		n.countForward("unavailable")
		notServed(w, why)
		return
	}
}

// serveLocal serves r here. When the runtime turned r away unserved (its
// object's partition was let go while it ran), nothing is written and
// again is true.
func serveLocal(w http.ResponseWriter, r *http.Request, local http.Handler) (again bool) {
	c := &notServedCatcher{ResponseWriter: w, before: w.Header().Clone()}
	local.ServeHTTP(c, r)
	return c.caught
}

// notServedCatcher passes a response through unless it is a 503 marked
// runtime.HeaderNotServed, which it swallows (restoring the headers as they
// were) so that the request can be routed again.
type notServedCatcher struct {
	http.ResponseWriter
	before  http.Header
	decided bool
	caught  bool
}

func (c *notServedCatcher) WriteHeader(status int) {
	if !c.decided {
		c.decided = true
		h := c.ResponseWriter.Header()
		if status == http.StatusServiceUnavailable && h.Get(runtime.HeaderNotServed) != "" {
			c.caught = true
			clear(h)
			maps.Copy(h, c.before)
			return
		}
	}
	if !c.caught {
		c.ResponseWriter.WriteHeader(status)
	}
}

func (c *notServedCatcher) Write(b []byte) (int, error) {
	if !c.decided {
		c.WriteHeader(http.StatusOK)
	}
	if c.caught {
		return len(b), nil
	}
	return c.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (a WebSocket
// upgrade hijacks it).
func (c *notServedCatcher) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// route decides where a request for partition p goes right now: here, to
// candidates (the likeliest leader first), or nowhere yet (why says so). A
// request another node forwarded is served here or nowhere, so a stale view
// never makes a loop.
//
// The engine's view of p's leader comes first, but only while this node is
// in p's group and that leader is not known dead: a node removed from the
// group keeps the group and its last leader forever (it no longer hears
// from the group, and a node outside the configuration never campaigns),
// so once that leader died it would forward every request to a dead
// address. The leaders announced in gossip follow, so a dial that fails
// moves on to one of them.
func (n *Node) route(p int, forwarded bool) (serve bool, candidates []string, why string) {
	lead, serving := n.engine.Leader(p)
	if serving {
		return true, nil, ""
	}
	if forwarded {
		return false, nil, fmt.Sprintf("partition %d is moving (this node does not serve it)", p)
	}
	members := n.members.Members()
	leaderAt := func(state func(MemberState) bool) {
		for _, m := range members {
			if m.RaftID == lead && state(m.State) && m.PeerAddr != "" && !slices.Contains(candidates, m.PeerAddr) {
				candidates = append(candidates, m.PeerAddr)
			}
		}
	}
	inGroup := n.engine.InGroup(p)
	if lead != 0 && lead != n.self && inGroup {
		leaderAt(func(s MemberState) bool { return s != StateDead })
	}
	for _, m := range members {
		// What a member gossips it leads counts once it is proven: with
		// the gossip key alone a host could claim every partition.
		if m.Name != n.cfg.NodeName && m.State == StateAlive && m.Leads(p) && m.PeerAddr != "" && !slices.Contains(candidates, m.PeerAddr) && n.links.isProven(m.Name) {
			candidates = append(candidates, m.PeerAddr)
		}
	}
	if lead != 0 && lead != n.self && !inGroup {
		// A node removed from the group still knows the leader of its
		// last term there: often still right (gossip announces a new
		// leader only after a while), and if not, that node answers "not
		// served" and the request is routed again. So it goes last, and
		// only while that member is alive.
		leaderAt(func(s MemberState) bool { return s == StateAlive })
	}
	if len(candidates) == 0 {
		return false, nil, fmt.Sprintf("partition %d has no leader right now", p)
	}
	return false, candidates, ""
}

// forward proxies r to the first candidate; when a candidate cannot be
// dialled (it just died, and gossip has not noticed) the next is tried,
// which is safe because nothing of the request has been sent. It reports
// retry (and writes nothing) when no candidate could be dialled or the
// one reached answered that it does not serve the partition: nothing of
// the request was handled, so the caller may route it again.
func (n *Node) forward(w http.ResponseWriter, r *http.Request, p int, candidates []string) (retry bool) {
	if websocket.IsWebSocketUpgrade(r) {
		return n.serveEdgeSocket(w, r, p, candidates)
	}
	addr := candidates[0]
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target, _ := url.Parse(n.peer.URL(addr, ""))
			pr.Out.URL.Scheme = target.Scheme
			pr.Out.URL.Host = addr
			pr.Out.Host = pr.In.Host
			pr.Out.Header.Set(HopHeader, n.cfg.NodeName)
			pr.SetXForwarded()
		},
		Transport:     n.peer.RoundTripper(),
		FlushInterval: -1,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get(runtime.HeaderNotServed) != "" {
				resp.Body.Close()
				return fmt.Errorf("next hop does not serve partition %d: %w", p, runtime.ErrNotServed)
			}
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, runtime.ErrNotServed) {
				retry = true
				return
			}
			n.log.Debug("forward failed", "to", addr, "err", err)
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				if len(candidates) > 1 {
					retry = n.forward(w, r, p, candidates[1:])
				} else {
					retry = true // nothing was sent: route again
				}
				return
			}
			unavailable(w, fmt.Sprintf("partition %d leader unreachable", p))
		},
	}
	rp.ServeHTTP(w, r)
	return retry
}

func (n *Node) countForward(outcome string) {
	if n.metrics != nil {
		n.metrics.forwards.WithLabelValues(outcome).Inc()
	}
}

// notServed answers unavailable for a request no object saw.
func notServed(w http.ResponseWriter, msg string) {
	w.Header().Set(runtime.HeaderNotServed, "1")
	unavailable(w, msg)
}

func unavailable(w http.ResponseWriter, msg string) {
	runtime.WriteError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, msg)
}

// Location is where an object lives right now.
type Location struct {
	Partition int    `json:"partition"`
	Leader    string `json:"leader,omitempty"`
	LeaderURL string `json:"leaderHttp,omitempty"`
	// Replicas are the partition's voters.
	Replicas []string `json:"replicas,omitempty"`
}

// Locate tells which partition an object is in and which node leads it, as
// this node knows.
func (n *Node) Locate(ctx context.Context, id runtime.ID) (Location, error) {
	p := n.PartitionOf(id)
	loc := Location{Partition: p}
	parts, err := n.engine.Status(ctx)
	if err != nil {
		return loc, err
	}
	lead, _ := n.engine.Leader(p)
	if !n.engine.InGroup(p) {
		lead = 0 // a stale view: go by what leaders announce (see route)
	}
	names := map[uint64]Member{}
	for _, m := range n.members.Members() {
		names[m.RaftID] = m
		if lead == 0 && m.Leads(p) {
			lead = m.RaftID
		}
	}
	if m, ok := names[lead]; ok {
		loc.Leader, loc.LeaderURL = m.Name, m.HTTPAddr
	}
	for _, v := range parts[p].Voters {
		if m, ok := names[v]; ok {
			loc.Replicas = append(loc.Replicas, m.Name)
		}
	}
	return loc, nil
}

// MoveObject re-places an object: leadership of its partition goes to
// another replica (with the partition's other objects), so the object is
// next activated there. It reports whether a move started (false: this node
// does not lead the partition, or no other replica is caught up).
//
// The new leader holds the partition for MoveHold before the rebalancer may
// steer it back to the ring's preferred member.
func (n *Node) MoveObject(ctx context.Context, id runtime.ID) (bool, error) {
	p := n.PartitionOf(id)
	to, err := n.engine.moveLeadership(ctx, p)
	if err != nil || to == 0 {
		return false, err
	}
	addr, ok := n.addrOf(to)
	if !ok {
		return true, nil
	}
	u := n.peer.URL(addr, fmt.Sprintf("%s?partition=%d&seconds=%d", HoldPath, p, int(MoveHold.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return true, err
	}
	resp, err := n.peer.RoundTripper().RoundTrip(req)
	if err != nil {
		return true, fmt.Errorf("hold partition %d on its new leader: %w", p, err)
	}
	resp.Body.Close()
	return true, nil
}

// MoveHold is how long a moved partition stays with its new leader.
const MoveHold = 5 * time.Minute

// HoldPath is where a node is told to keep a partition it was given.
const HoldPath = "/internal/hold"

// HoldHandler serves HoldPath.
func (n *Node) HoldHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err1 := strconv.Atoi(r.URL.Query().Get("partition"))
		secs, err2 := strconv.Atoi(r.URL.Query().Get("seconds"))
		if err1 != nil || err2 != nil || p < 0 || p >= n.cfg.Partitions || secs < 0 || secs > 86400 {
			http.Error(w, "bad hold request", http.StatusBadRequest)
			return
		}
		if err := n.engine.hold(r.Context(), p, time.Now().Add(time.Duration(secs)*time.Second)); err != nil {
			unavailable(w, err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// Serves reports whether this node serves the object's partition now.
func (n *Node) Serves(id runtime.ID) bool { return n.engine.Serving(n.PartitionOf(id)) }

// Status is what /admin/cluster shows.
type Status struct {
	Node       string            `json:"node"`
	RaftID     uint64            `json:"raftId"`
	Members    []Member          `json:"members"`
	Partitions []PartitionStatus `json:"partitions"`
	// Preferred is each partition's ring placement, preferred leader first.
	Preferred [][]string `json:"preferred"`
}

// Converged reports whether the cluster that statuses describe (one from
// each live node) has settled: every partition is served by some node,
// whose group has exactly voters voters and no learners. Tools and tests
// wait for it after starting or changing a cluster; why says what is still
// missing.
func Converged(statuses []Status, voters int) (ok bool, why string) {
	served := map[int]bool{}
	parts := 0
	for _, st := range statuses {
		parts = len(st.Partitions)
		for _, p := range st.Partitions {
			if !p.Serving {
				continue
			}
			if len(p.Voters) != voters || len(p.Learners) != 0 {
				return false, fmt.Sprintf("partition %d on %s: %d voters, %d learners", p.Partition, st.Node, len(p.Voters), len(p.Learners))
			}
			served[p.Partition] = true
		}
	}
	if parts == 0 || len(served) != parts {
		return false, fmt.Sprintf("%d of %d partitions served", len(served), parts)
	}
	return true, ""
}

// Balanced reports whether every partition is served by its preferred
// member (the first of its ring placement), as statuses (one from each live
// node) show. After a member returns, Converged holds as soon as its groups
// have their voters again, but the rebalancer then steers leadership back to
// it partition by partition, and every such move drops the outputs of the
// partition's running events. A test that must not see its objects move
// waits for Balanced too. A partition held by MoveObject stays unbalanced
// until its hold ends.
func Balanced(statuses []Status) (ok bool, why string) {
	parts := 0
	served := map[int]bool{}
	for _, st := range statuses {
		parts = len(st.Partitions)
		for _, p := range st.Partitions {
			if !p.Serving {
				continue
			}
			served[p.Partition] = true
			if p.Partition >= len(st.Preferred) || len(st.Preferred[p.Partition]) == 0 {
				return false, fmt.Sprintf("partition %d on %s: no ring placement", p.Partition, st.Node)
			}
			if want := st.Preferred[p.Partition][0]; want != st.Node {
				return false, fmt.Sprintf("partition %d served by %s, preferred %s", p.Partition, st.Node, want)
			}
		}
	}
	if parts == 0 || len(served) != parts {
		return false, fmt.Sprintf("%d of %d partitions served", len(served), parts)
	}
	return true, ""
}

// Status reports members and every partition's group.
func (n *Node) Status(ctx context.Context) (Status, error) {
	parts, err := n.engine.Status(ctx)
	if err != nil {
		return Status{}, err
	}
	ring := n.ring.Load()
	pref := make([][]string, ring.Partitions())
	for p := range pref {
		pref[p] = ring.Preferred(p)
	}
	members := n.members.Members()
	n.links.annotate(members)
	return Status{Node: n.cfg.NodeName, RaftID: n.self, Members: members, Partitions: parts, Preferred: pref}, nil
}

// AdminHandler serves /admin/cluster as JSON.
func (n *Node) AdminHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, err := n.Status(r.Context())
		if err != nil {
			unavailable(w, err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(st)
	})
}

// Shutdown leaves gracefully: it leaves the gossip cluster, hands leadership
// of every partition it leads to another voter (bounded by ctx), and stops. Commits in flight on handed-off partitions fail with
// ErrNotOwner, so nothing unacknowledged is reported as done.
func (n *Node) Shutdown(ctx context.Context) error {
	n.stop()
	n.wg.Wait()
	var errs []error
	// Leave first, so that no peer's rebalancer steers leadership back here
	// and the partitions' leaders replace this node's replicas.
	if err := n.members.Leave(2 * time.Second); err != nil {
		errs = append(errs, err)
	}
	if err := n.engine.handOff(ctx); err != nil {
		errs = append(errs, fmt.Errorf("hand off leadership: %w", err))
	}
	n.engine.Close()
	n.transport.Close()
	return errors.Join(errs...)
}

// Close stops without handing off (tests of crashes use kill -9 instead).
func (n *Node) Close() {
	n.stop()
	n.wg.Wait()
	n.members.Shutdown()
	n.engine.Close()
	n.transport.Close()
}
