package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestMemberLeads(t *testing.T) {
	tests := []struct {
		bitmap []byte
		leads  []int
	}{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte{0x01}, []int{0}},
		{[]byte{0x80}, []int{7}},
		{[]byte{0x00, 0x01}, []int{8}},
		{[]byte{0x05, 0x80, 0x00, 0x40}, []int{0, 2, 15, 30}},
		{[]byte{0xff}, []int{0, 1, 2, 3, 4, 5, 6, 7}},
	}
	for _, tt := range tests {
		m := Member{leads: tt.bitmap}
		for p := range 40 {
			want := false
			for _, l := range tt.leads {
				want = want || l == p
			}
			if got := m.Leads(p); got != want {
				t.Errorf("bitmap %x: Leads(%d) = %v, want %v", tt.bitmap, p, got, want)
			}
		}
	}
}

func TestRaftIDFor(t *testing.T) {
	seen := map[uint64]string{}
	for i := range 1000 {
		name := fmt.Sprintf("node-%d", i)
		id := RaftIDFor(name)
		if id == 0 {
			t.Fatalf("RaftIDFor(%q) = 0, which Raft reserves", name)
		}
		if RaftIDFor(name) != id {
			t.Fatalf("RaftIDFor(%q) is not deterministic", name)
		}
		if other, ok := seen[id]; ok {
			t.Fatalf("RaftIDFor(%q) = RaftIDFor(%q)", name, other)
		}
		seen[id] = name
	}
}

// freeGossipAddr returns a loopback address whose port is free for both
// TCP and UDP, as memberlist needs both.
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		pc, err := net.ListenPacket("udp", addr)
		ln.Close()
		if err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no loopback port free for TCP and UDP")
	return ""
}

func httpAddrOf(name string) string { return "http-" + name + ".test:8080" }

// startMember starts gossip for name on addr (a fresh port when empty).
func startMember(t *testing.T, name, addr string, join ...string) *Membership {
	t.Helper()
	if addr == "" {
		addr = freeGossipAddr(t)
	}
	m, err := StartMembership(MembershipConfig{
		NodeName:          name,
		BindAddr:          addr,
		HTTPAddr:          httpAddrOf(name),
		Join:              join,
		RetryJoinInterval: 100 * time.Millisecond,
		Logger:            testLogger(),
	})
	if err != nil {
		t.Fatalf("StartMembership(%s on %s): %v", name, addr, err)
	}
	// Shutdown after Leave is harmless.
	t.Cleanup(func() { m.Shutdown() })
	return m
}

func memberByName(m *Membership, name string) (Member, bool) {
	for _, mem := range m.Members() {
		if mem.Name == name {
			return mem, true
		}
	}
	return Member{}, false
}

// waitMember waits until m's view of name satisfies cond.
func waitMember(t *testing.T, m *Membership, name, what string, cond func(Member) bool) Member {
	t.Helper()
	var got Member
	waitFor(t, convergeTimeout, fmt.Sprintf("%s: %s %s", m.cfg.NodeName, name, what), func() (bool, string) {
		mem, ok := memberByName(m, name)
		if !ok {
			return false, "not known"
		}
		got = mem
		return cond(mem), fmt.Sprintf("%+v", mem)
	})
	return got
}

func TestMembershipJoin(t *testing.T) {
	addrA := freeGossipAddr(t)
	a := startMember(t, "a", addrA)
	b := startMember(t, "b", "", addrA)
	c := startMember(t, "c", "", addrA)
	all := map[string]*Membership{"a": a, "b": b, "c": c}
	for viewer, m := range all {
		if l := m.Local(); l.Name != viewer || l.HTTPAddr != httpAddrOf(viewer) || l.State != StateAlive {
			t.Errorf("%s: Local() = %+v", viewer, l)
		}
		waitFor(t, convergeTimeout, viewer+" to see three members", func() (bool, string) {
			ms := m.Members()
			return len(ms) == 3, fmt.Sprintf("%d members", len(ms))
		})
		ms := m.Members()
		for i, mem := range ms {
			if i > 0 && ms[i-1].Name >= mem.Name {
				t.Errorf("%s: Members() not sorted by name: %q before %q", viewer, ms[i-1].Name, mem.Name)
			}
		}
		for name, other := range all {
			mem := waitMember(t, m, name, "alive", func(mem Member) bool { return mem.State == StateAlive })
			if mem.HTTPAddr != httpAddrOf(name) {
				t.Errorf("%s sees %s at HTTP %q, want %q", viewer, name, mem.HTTPAddr, httpAddrOf(name))
			}
			if mem.Gossip != other.self {
				t.Errorf("%s sees %s at gossip %q, want %q", viewer, name, mem.Gossip, other.self)
			}
			if mem.RaftID != RaftIDFor(name) {
				t.Errorf("%s sees %s with Raft ID %x, want %x", viewer, name, mem.RaftID, RaftIDFor(name))
			}
			if mem.Initialized || mem.Leads(0) {
				t.Errorf("%s sees %s initialized or leading before it said so: %+v", viewer, name, mem)
			}
		}
	}
}

func TestMembershipMetadata(t *testing.T) {
	changes := make(chan struct{}, 1024)
	addrA := freeGossipAddr(t)
	a, err := StartMembership(MembershipConfig{
		NodeName: "a", BindAddr: addrA, HTTPAddr: httpAddrOf("a"), Logger: testLogger(),
		OnChange: func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Shutdown() })
	b := startMember(t, "b", "", addrA)
	c := startMember(t, "c", "", addrA)
	for _, name := range []string{"b", "c"} {
		waitMember(t, a, name, "alive", func(m Member) bool { return m.State == StateAlive })
	}
	if len(changes) == 0 {
		t.Error("OnChange was not called for joins")
	}

	b.SetInitialized()
	b.SetLeads([]byte{0x02, 0x04}) // partitions 1 and 10
	for _, viewer := range []*Membership{a, c} {
		mem := waitMember(t, viewer, "b", "initialized, leading 1 and 10", func(m Member) bool {
			return m.Initialized && m.Leads(1) && m.Leads(10)
		})
		for p := range 32 {
			if mem.Leads(p) != (p == 1 || p == 10) {
				t.Errorf("%s: b.Leads(%d) = %v", viewer.cfg.NodeName, p, mem.Leads(p))
			}
		}
	}
	if l := b.Local(); !l.Initialized || !l.Leads(10) {
		t.Errorf("b's own view of itself: %+v", l)
	}
	// Leadership moves: the new bitmap replaces the old one.
	b.SetLeads([]byte{0x08}) // partition 3 only
	waitMember(t, a, "b", "leading only 3", func(m Member) bool {
		return m.Leads(3) && !m.Leads(1) && !m.Leads(10) && m.Initialized
	})
	if mem, _ := memberByName(a, "c"); mem.Initialized || mem.Leads(3) {
		t.Errorf("a sees c's metadata changed by b's: %+v", mem)
	}

}

// memberlist hands NotifyLeave the embedded Node, whose State field it
// never sets (its own nodeState.State shadows it): a graceful leave and a
// crash must be told apart some other way.
func TestMembershipLeave(t *testing.T) {
	addrA := freeGossipAddr(t)
	a := startMember(t, "a", addrA)
	b := startMember(t, "b", "", addrA)
	c := startMember(t, "c", "", addrA)
	alive := func(m Member) bool { return m.State == StateAlive }
	waitMember(t, a, "b", "alive", alive)
	waitMember(t, a, "c", "alive", alive)
	waitMember(t, b, "c", "alive", alive)
	left := time.Now()
	if err := c.Leave(5 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	for _, viewer := range []*Membership{a, b} {
		mem := waitMember(t, viewer, "c", "left", func(m Member) bool { return m.State == StateLeft })
		if mem.Since.Before(left) {
			t.Errorf("%s: c left at %v, but Since is %v", viewer.cfg.NodeName, left, mem.Since)
		}
	}
	if mem, _ := memberByName(a, "b"); mem.State != StateAlive {
		t.Errorf("a sees b as %s after c left", mem.State)
	}
}

func TestMembershipCrashIsDead(t *testing.T) {
	addrA := freeGossipAddr(t)
	a := startMember(t, "a", addrA)
	b := startMember(t, "b", "", addrA)
	waitMember(t, a, "b", "alive", func(m Member) bool { return m.State == StateAlive })
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// memberlist first suspects, then declares dead; never "left".
	waitMember(t, a, "b", "suspect or dead", func(m Member) bool {
		if m.State == StateLeft {
			t.Fatalf("a crashed member is seen as left: %+v", m)
		}
		return m.State == StateSuspect || m.State == StateDead
	})
}

// countingHandler counts log records whose message starts with prefix.
type countingHandler struct {
	prefix string
	n      *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

func TestMembershipRetryJoin(t *testing.T) {
	addrA := freeGossipAddr(t)
	// b starts first, pointing at a peer that does not exist yet.
	var failedJoins atomic.Int64
	b, err := StartMembership(MembershipConfig{
		NodeName:          "b",
		BindAddr:          freeGossipAddr(t),
		HTTPAddr:          httpAddrOf("b"),
		Join:              []string{addrA},
		RetryJoinInterval: 50 * time.Millisecond,
		Logger:            slog.New(countingHandler{prefix: "join: no peer answered", n: &failedJoins}),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Shutdown() })
	waitFor(t, convergeTimeout, "failed join attempts", func() (bool, string) {
		n := failedJoins.Load()
		return n >= 3, fmt.Sprintf("%d failed attempts", n)
	})
	if ms := b.Members(); len(ms) != 1 || ms[0].Name != "b" {
		t.Fatalf("before a exists, b sees %+v", ms)
	}
	a := startMember(t, "a", addrA)
	for _, tt := range []struct {
		viewer *Membership
		name   string
	}{{b, "a"}, {a, "b"}} {
		mem := waitMember(t, tt.viewer, tt.name, "alive", func(m Member) bool { return m.State == StateAlive })
		if mem.HTTPAddr != httpAddrOf(tt.name) {
			t.Errorf("%s sees %s at %q", tt.viewer.cfg.NodeName, tt.name, mem.HTTPAddr)
		}
	}
}

func TestStartMembershipBadAddress(t *testing.T) {
	for _, addr := range []string{"", "127.0.0.1", "127.0.0.1:port", "[::1"} {
		m, err := StartMembership(MembershipConfig{NodeName: "x", BindAddr: addr, Logger: testLogger()})
		if err == nil {
			m.Shutdown()
			t.Errorf("StartMembership with bind address %q succeeded", addr)
		} else if !strings.Contains(err.Error(), "address") {
			t.Errorf("bind address %q: error %q does not say what is wrong", addr, err)
		}
	}
}
