// Package cluster turns a set of holocron nodes into one runtime: memberlist
// gossip says who is alive, a consistent-hash ring says where each partition
// of the object space should live, one Raft group per partition decides who
// may commit, and a forwarder sends each request to its partition's leader.
package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// MemberState is what gossip currently believes about a member.
type MemberState string

// Member states. A member that left gracefully is removed from Raft groups
// at once; a dead one only after Config.DeadMemberTimeout, so that a node
// restarted after a crash rejoins its groups without a full resync.
const (
	StateAlive   MemberState = "alive"
	StateSuspect MemberState = "suspect"
	StateDead    MemberState = "dead"
	StateLeft    MemberState = "left"
)

// Member is one node as gossip knows it.
type Member struct {
	Name     string `json:"name"`
	RaftID   uint64 `json:"raftId"`
	HTTPAddr string `json:"http"`
	// PeerAddr is the member's peer listener: all node-to-node traffic
	// goes there.
	PeerAddr string      `json:"peer"`
	Gossip   string      `json:"gossip"`
	State    MemberState `json:"state"`
	// Initialized is true once the node holds Raft state (it bootstrapped
	// the cluster or was added to a group).
	Initialized bool `json:"initialized"`
	// Since is when the member entered State, as seen by this node.
	Since time.Time `json:"since"`
	// Proven says this node has reached the member's peer listener and
	// found there the certificate of the member's name; only a proven
	// member is given replicas. LinkError says why a member is not
	// proven yet (the last probe's failure).
	Proven    bool   `json:"proven"`
	LinkError string `json:"linkError,omitempty"`
	// leads is the bitmap of partitions the member leads.
	leads []byte
	// leaving is set while the member announces a graceful leave.
	leaving bool
}

// Leads reports whether the member announced that it leads partition p.
func (m Member) Leads(p int) bool {
	return p/8 < len(m.leads) && m.leads[p/8]&(1<<(p%8)) != 0
}

// RaftIDFor derives a node's Raft ID from its name. Names are the stable
// identity of a node (its data directory remembers its name), so the ID is a
// hash of it; zero is reserved by Raft.
func RaftIDFor(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	if id := h.Sum64(); id != 0 {
		return id
	}
	return 1
}

// nodeMeta travels in memberlist's per-node metadata (at most 512 bytes).
type nodeMeta struct {
	HTTP string `json:"h"`
	Peer string `json:"p"`
	Init bool   `json:"i,omitempty"`
	// Leaving is announced just before a graceful Leave: memberlist reports
	// a leave and a death alike, so this is how peers tell them apart.
	Leaving bool   `json:"x,omitempty"`
	Leads   string `json:"l,omitempty"` // base64 bitmap of led partitions
}

// MembershipConfig configures gossip.
type MembershipConfig struct {
	NodeName string
	// BindAddr is the gossip address (UDP and TCP), host:port.
	BindAddr string
	// AdvertiseAddr is the gossip address others reach; empty means BindAddr.
	AdvertiseAddr string
	// HTTPAddr is the advertised address of this node's client port.
	HTTPAddr string
	// PeerAddr is the advertised address of this node's peer listener.
	PeerAddr string
	// Join lists gossip addresses of any peers; joining retries until one
	// answers and keeps retrying peers that are not alive.
	Join []string
	// GossipKeys, when set, encrypt and authenticate all gossip (see
	// GossipKeys); nil means gossip in clear, for -insecure clusters.
	GossipKeys GossipKeys
	// RetryJoinInterval is the pause between join attempts. Default 1s.
	RetryJoinInterval time.Duration
	Logger            *slog.Logger
	// OnChange is called (from a memberlist goroutine, must not block) after
	// any member joins, leaves, dies or updates its metadata.
	OnChange func()
}

// Membership is this node's view of the cluster's members.
type Membership struct {
	cfg  MembershipConfig
	ml   *memberlist.Memberlist
	log  *slog.Logger
	stop context.CancelFunc
	done chan struct{}

	// self is this node's advertised gossip address.
	self string
	// dirty wakes announceLoop.
	dirty chan struct{}

	// keyring encrypts gossip; nil when it runs in clear.
	keyring *memberlist.Keyring

	mu      sync.Mutex
	meta    nodeMeta
	members map[string]Member
}

// StartMembership starts gossip and the background join loop.
func StartMembership(cfg MembershipConfig) (*Membership, error) {
	if cfg.RetryJoinInterval == 0 {
		cfg.RetryJoinInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Membership{cfg: cfg, log: cfg.Logger, members: map[string]Member{}, done: make(chan struct{}), dirty: make(chan struct{}, 1)}
	m.meta.HTTP = cfg.HTTPAddr
	m.meta.Peer = cfg.PeerAddr

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.NodeName
	host, port, err := splitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("gossip bind address %q: %w", cfg.BindAddr, err)
	}
	mc.BindAddr, mc.BindPort = host, port
	// With a wildcard bind and no advertise address memberlist advertises
	// a private IP of this host (what containers want).
	mc.AdvertisePort = port
	if host != "0.0.0.0" && host != "::" {
		mc.AdvertiseAddr = host
	}
	if cfg.AdvertiseAddr != "" {
		if mc.AdvertiseAddr, mc.AdvertisePort, err = splitHostPort(cfg.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("gossip advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		// memberlist needs an IP; a host name is resolved once here.
		if ip, err := resolveHost(mc.AdvertiseAddr); err != nil {
			return nil, fmt.Errorf("gossip advertise address %q: %w", cfg.AdvertiseAddr, err)
		} else {
			mc.AdvertiseAddr = ip
		}
	}
	if len(cfg.GossipKeys) > 0 {
		if mc.Keyring, err = cfg.GossipKeys.keyring(); err != nil {
			return nil, fmt.Errorf("gossip keys: %w", err)
		}
		m.keyring = mc.Keyring
		// Refuse anything not encrypted with a key of the ring, in both
		// directions (memberlist's defaults, stated here on purpose).
		mc.GossipVerifyIncoming, mc.GossipVerifyOutgoing = true, true
	}
	mc.Delegate = (*metaDelegate)(m)
	mc.Events = (*eventDelegate)(m)
	mc.Logger = slog.NewLogLogger(cfg.Logger.With("component", "memberlist").Handler(), slog.LevelDebug)
	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("start gossip on %s: %w", cfg.BindAddr, err)
	}
	m.ml = ml
	m.self = ml.LocalNode().Address()
	ctx, cancel := context.WithCancel(context.Background())
	m.stop = cancel
	go m.joinLoop(ctx)
	go m.announceLoop(ctx)
	return m, nil
}

// resolveHost returns host if it is an IP, else its first address.
func resolveHost(host string) (string, error) {
	if net.ParseIP(host) != nil {
		return host, nil
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return "", err
	}
	for _, ip := range ips {
		if ip.To4() != nil {
			return ip.String(), nil
		}
	}
	if len(ips) == 0 {
		return "", fmt.Errorf("host %q has no address", host)
	}
	return ips[0].String(), nil
}

// resolveAddr turns host:port into ip:port, leaving it as is when the host
// does not resolve (yet): peers may appear in DNS only once they start.
func resolveAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ip, err := resolveHost(host)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(ip, port)
}

func splitHostPort(addr string) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", ps, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, port, nil
}

// joinLoop joins the listed peers, retrying any that is not alive in our
// view, so nodes may start in any order and a partitioned node re-merges.
func (m *Membership) joinLoop(ctx context.Context) {
	defer close(m.done)
	if len(m.cfg.Join) == 0 {
		return
	}
	t := time.NewTicker(m.cfg.RetryJoinInterval)
	defer t.Stop()
	joined := false
	for {
		// Our own member map, not memberlist's nodes: those are mutated by
		// memberlist's goroutines while we would read them.
		var missing []string
		alive := map[string]bool{m.self: true}
		for _, mem := range m.Members() {
			if mem.State == StateAlive || mem.State == StateSuspect {
				alive[mem.Gossip] = true
			}
		}
		for _, addr := range m.cfg.Join {
			if !alive[resolveAddr(addr)] {
				missing = append(missing, addr)
			}
		}
		if len(missing) > 0 {
			n, err := m.ml.Join(missing)
			switch {
			case err != nil && n == 0 && !joined:
				m.log.Debug("join: no peer answered yet; retrying", "peers", missing, "err", err)
			case n > 0 && !joined:
				joined = true
				m.log.Info("joined cluster", "via", missing, "members", m.ml.NumMembers())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SetInitialized announces that this node holds Raft state.
func (m *Membership) SetInitialized() {
	m.mu.Lock()
	changed := !m.meta.Init
	m.meta.Init = true
	m.mu.Unlock()
	if changed {
		m.announce()
	}
}

// SetLeads announces the partitions this node leads.
func (m *Membership) SetLeads(bitmap []byte) {
	enc := base64.RawStdEncoding.EncodeToString(bitmap)
	m.mu.Lock()
	changed := m.meta.Leads != enc
	m.meta.Leads = enc
	m.mu.Unlock()
	if changed {
		m.announce()
	}
}

// announce asks the announcer goroutine to gossip the current metadata.
// It never blocks: memberlist's UpdateNode waits for the broadcast to go
// out, which must not hold up the caller (the rebalancer).
func (m *Membership) announce() {
	select {
	case m.dirty <- struct{}{}:
	default:
	}
}

// announceLoop gossips metadata changes one at a time; changes made while
// one is going out are sent together next.
func (m *Membership) announceLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.dirty:
		}
		if err := m.ml.UpdateNode(2 * time.Second); err != nil {
			m.log.Debug("gossip metadata update", "err", err)
		}
	}
}

// Members returns every member known, dead and left ones included, sorted
// by name.
func (m *Membership) Members() []Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Member, 0, len(m.members))
	for _, mem := range m.members {
		out = append(out, mem)
	}
	slices.SortFunc(out, func(a, b Member) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

// Local returns this node as a Member.
func (m *Membership) Local() Member {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.members[m.cfg.NodeName]
}

// Leave tells the cluster this node is going away for good (its replicas
// are re-placed at once) and stops gossip.
func (m *Membership) Leave(timeout time.Duration) error {
	m.stop()
	<-m.done
	m.mu.Lock()
	m.meta.Leaving = true
	m.mu.Unlock()
	if err := m.ml.UpdateNode(timeout); err != nil {
		m.log.Warn("announce leave", "err", err)
	}
	if err := m.ml.Leave(timeout); err != nil {
		return fmt.Errorf("leave cluster: %w", err)
	}
	return m.ml.Shutdown()
}

// Shutdown stops gossip without telling anyone (a crash, as others see it).
func (m *Membership) Shutdown() error {
	m.stop()
	<-m.done
	return m.ml.Shutdown()
}

// updateLocked records a member from a memberlist event. memberlist's
// Node.State is not kept current (its internal state shadows it), so the
// state comes from the event: joins and updates mean alive; a leave is
// graceful if the member announced it was leaving, else a death.
func (m *Membership) updateLocked(n *memberlist.Node, gone bool, now time.Time) {
	var meta nodeMeta
	if len(n.Meta) > 0 {
		if err := json.Unmarshal(n.Meta, &meta); err != nil {
			m.log.Warn("bad gossip metadata", "member", n.Name, "err", err)
		}
	}
	leads, _ := base64.RawStdEncoding.DecodeString(meta.Leads)
	prev, ok := m.members[n.Name]
	state := StateAlive
	if gone {
		state = StateDead
		if meta.Leaving || (ok && prev.leaving) {
			state = StateLeft
		}
	}
	since := now
	if ok && prev.State == state {
		since = prev.Since
	}
	if !ok || prev.State != state {
		m.log.Info("member state", "member", n.Name, "state", string(state), "gossip", n.Address())
	}
	m.members[n.Name] = Member{
		Name: n.Name, RaftID: RaftIDFor(n.Name), HTTPAddr: meta.HTTP, PeerAddr: meta.Peer, Gossip: n.Address(),
		State: state, Initialized: meta.Init, Since: since, leads: leads, leaving: meta.Leaving && !gone,
	}
}

// metaDelegate publishes this node's metadata.
type metaDelegate Membership

func (d *metaDelegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, _ := json.Marshal(d.meta)
	if len(b) > limit {
		d.log.Error("gossip metadata too large; partitions led not announced", "bytes", len(b), "limit", limit)
		m := d.meta
		m.Leads = ""
		b, _ = json.Marshal(m)
	}
	return b
}
func (d *metaDelegate) NotifyMsg([]byte)                           {}
func (d *metaDelegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (d *metaDelegate) LocalState(join bool) []byte                { return nil }
func (d *metaDelegate) MergeRemoteState(buf []byte, join bool)     {}

// eventDelegate keeps the member map current. memberlist calls it
// synchronously, so it only records and hands off.
type eventDelegate Membership

func (d *eventDelegate) NotifyJoin(n *memberlist.Node)   { d.note(n, false) }
func (d *eventDelegate) NotifyLeave(n *memberlist.Node)  { d.note(n, true) }
func (d *eventDelegate) NotifyUpdate(n *memberlist.Node) { d.note(n, false) }

func (d *eventDelegate) note(n *memberlist.Node, gone bool) {
	m := (*Membership)(d)
	m.mu.Lock()
	m.updateLocked(n, gone, time.Now())
	m.mu.Unlock()
	if m.cfg.OnChange != nil {
		m.cfg.OnChange()
	}
}
