package main

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/holocron-run/holocron/internal/testenv"
)

// netLab puts each node in its own network namespace on one Linux bridge,
// so a node can be cut off from its peers with iptables inside its
// namespace while the test (on the host side of the bridge) still talks to
// every node. It needs root, iproute2 and iptables; .ci/run installs them.
type netLab struct {
	t      *testing.T
	id     string
	subnet string // "10.X.0"
	hosts  []int  // node i is subnet.hosts[i]
	bridge string
	spaces []string
}

func sh(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func newNetLab(t *testing.T, nodes int) *netLab {
	t.Helper()
	var hosts []int
	for i := range nodes {
		hosts = append(hosts, i+1)
	}
	return newNetLabAt(t, hosts)
}

// newNetLabAt is newNetLab with node i at 10.X.0.hosts[i], X chosen among
// the /24s this machine has no route for: test traffic must reach only
// the namespaces the test made, never a network the machine is on.
func newNetLabAt(t *testing.T, hosts []int) *netLab {
	t.Helper()
	testenv.NeedRoot(t, "the network namespace tests")
	testenv.NeedCommand(t, "iproute2 iptables", "ip", "iptables")
	routes, err := exec.Command("ip", "-4", "route", "show", "table", "all").CombinedOutput()
	if err != nil {
		t.Fatalf("ip route: %v\n%s", err, routes)
	}
	x := -1
	for _, c := range rand.Perm(150) {
		if !strings.Contains(string(routes), fmt.Sprintf("10.%d.", 100+c)) && !strings.Contains(string(routes), "10.0.0.0/8") {
			x = 100 + c
			break
		}
	}
	if x < 0 {
		t.Fatal("no 10.X.0.0/24 (X in 100..249) free of this machine's routes")
	}
	l := &netLab{t: t, id: fmt.Sprintf("%03d", x), subnet: fmt.Sprintf("10.%d.0", x), hosts: hosts}
	nodes := len(hosts)
	l.bridge = "hcbr" + l.id
	t.Cleanup(l.destroy)
	sh(t, "ip", "link", "add", l.bridge, "type", "bridge")
	sh(t, "ip", "addr", "add", l.subnet+".254/24", "dev", l.bridge)
	sh(t, "ip", "link", "set", l.bridge, "up")
	for i := range nodes {
		ns := fmt.Sprintf("hc%sn%d", l.id, i+1)
		veth := fmt.Sprintf("hc%sv%d", l.id, i+1)
		l.spaces = append(l.spaces, ns)
		sh(t, "ip", "netns", "add", ns)
		sh(t, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "link", "set", veth, "master", l.bridge, "up")
		sh(t, "ip", "netns", "exec", ns, "ip", "addr", "add", l.ip(i)+"/24", "dev", "eth0")
		sh(t, "ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
		sh(t, "ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
	}
	return l
}

func (l *netLab) ip(i int) string { return fmt.Sprintf("%s.%d", l.subnet, l.hosts[i]) }

func (l *netLab) destroy() {
	for _, ns := range l.spaces {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "link", "del", l.bridge).Run()
}

// isolate drops all traffic between node i and the other nodes; the host
// (the test's clients) can still reach it.
func (l *netLab) isolate(i int) {
	ns, host := l.spaces[i], l.subnet+".254"
	for _, rule := range [][]string{
		{"INPUT", "-s", host, "-j", "ACCEPT"},
		{"INPUT", "-s", l.subnet + ".0/24", "-j", "DROP"},
		{"OUTPUT", "-d", host, "-j", "ACCEPT"},
		{"OUTPUT", "-d", l.subnet + ".0/24", "-j", "DROP"},
	} {
		sh(l.t, append([]string{"ip", "netns", "exec", ns, "iptables", "-A"}, rule...)...)
	}
}

func (l *netLab) heal(i int) {
	sh(l.t, "ip", "netns", "exec", l.spaces[i], "iptables", "-F")
}

func TestClusterPartitionedLeaderAcknowledgesNothing(t *testing.T) {
	lab := newNetLab(t, 3)
	c := &testCluster{t: t, wrap: func(i int) []string { return []string{"ip", "netns", "exec", lab.spaces[i]} }}
	for i := range 3 {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
		c.gossip = append(c.gossip, lab.ip(i)+":7946")
		c.https = append(c.https, lab.ip(i)+":8080")
		c.peers = append(c.peers, lab.ip(i)+":7947")
		c.dirs = append(c.dirs, t.TempDir())
	}
	c.start()
	createRoom(t, c.nodes[0], "split")
	load := startChatLoad(c, "split", 6)
	load.waitAcks(100, 60*time.Second)

	leader := c.leaderOf("ChatLobby", "main")
	isolatedAddr := c.nodes[leader].addr
	load.disrupt("the lobby's leader cut off from its peers, then healed")
	lab.isolate(leader)
	isolatedAt := time.Now()
	// The majority elects a new leader; from then on the isolated node must
	// not acknowledge anything.
	var electedAt time.Time
	deadline := time.Now().Add(30 * time.Second)
	for electedAt.IsZero() {
		for j, n := range c.nodes {
			if j == leader {
				continue
			}
			var loc struct {
				Leader string `json:"leader"`
			}
			if n.do("GET", "/admin/cluster/locate/ChatLobby/main", nil, &loc) == 200 && loc.Leader != "" && loc.Leader != c.names[leader] {
				electedAt = time.Now()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the majority elected no new leader within 30s of the partition")
		}
		time.Sleep(20 * time.Millisecond)
	}
	load.waitAcks(load.ackCount()+100, 60*time.Second)

	load.mu.Lock()
	late := 0
	for k, at := range load.times {
		if load.via[k] == isolatedAddr && at.After(electedAt) {
			late++
		}
	}
	load.mu.Unlock()
	if late > 0 {
		t.Errorf("the isolated old leader acknowledged %d messages after the majority elected a new leader", late)
	}
	t.Logf("isolated leader %s; majority had a new leader after %s", c.names[leader], electedAt.Sub(isolatedAt).Round(time.Millisecond))

	lab.heal(leader)
	load.settle(3)
	load.waitAcks(load.ackCount()+50, 60*time.Second)
	load.finish()
}
