package main

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/holocron-run/holocron/cluster"
)

// replaceDeadTimeout is the -dead-member-timeout of
// TestClusterReplacesDeadMemberOnlyAfterTimeout. It must be long enough
// that the test's "not yet replaced" checks cannot race it on a slow
// machine (see the test), and short enough to keep the test short.
const replaceDeadTimeout = 10 * time.Second

// TestClusterReplacesDeadMemberOnlyAfterTimeout: a node killed with -9
// keeps its place in every partition it was a voter of for
// -dead-member-timeout after the cluster declares it dead (a node
// restarted after a crash rejoins its groups without a resync), and after
// that its replicas are re-placed: every partition ends with exactly three
// voters, none of them the dead node, and is served, with no acknowledged
// message of a chat running throughout lost.
//
// Both halves are checked against the nodes' own clocks: the status of
// every node gives, per member, its gossip state and when it entered it
// (Member.Since, the instant the node's rebalancer measures the timeout
// from). The product promises no removal before Since+timeout on the
// partition's leader, so
//   - right after the kill (check A: milliseconds after it, while gossip
//     has not even declared the node dead, which takes its failure
//     detector seconds, and the timeout runs only from then) the dead node
//     must still be a voter of every partition it held, with no learner
//     added;
//   - as soon as every live node reports it dead (check B), it must still be
//     a voter of all of them. The check fails (as proving nothing) if its
//     statuses were not all fetched before the earliest Since + timeout;
//     with a 10 s timeout and polling every 100 ms that leaves a margin of
//     almost 10 s, which no scheduling delay of a loaded machine spends;
//   - every poll until the end watches for the first view in which a
//     partition the dead node held changed (a learner added, the dead
//     voter removed): that observation can only come later than the change
//     itself, never earlier, so it must be at or after the earliest
//     Since + timeout.
func TestClusterReplacesDeadMemberOnlyAfterTimeout(t *testing.T) {
	c := startCluster(t, 4, "-dead-member-timeout", replaceDeadTimeout.String())
	// startCluster waits for three voters everywhere, which a group passes
	// through while it is still being moved to its ring placement: wait
	// until no group is being moved, so that the voters recorded below
	// are the ones the groups keep.
	replaceWaitPlaced(t, c, 90*time.Second)

	createRoom(t, c.nodes[0], "replace")
	load := startChatLoad(c, "replace", 6)
	load.waitAcks(100, 60*time.Second)

	// The victim leads the lobby's partition, so the chat also goes
	// through a failover, and it is a voter of about 3/4 of the partitions.
	victim := c.leaderOf("ChatLobby", "main")
	victimID := cluster.RaftIDFor(c.names[victim])
	// The partitions it is a voter of, as their leaders say (a node's own
	// view of a group it was removed from may be stale).
	held := map[int][]uint64{} // partition → its voters at the kill
	for p, leader := range replaceLeaderViews(t, replaceStatuses(t, c)) {
		if slices.Contains(leader.Voters, victimID) {
			held[p] = leader.Voters
		}
	}
	if len(held) == 0 {
		t.Fatalf("%s is a voter of no partition", c.names[victim])
	}
	var liveIDs []uint64
	for i := range c.nodes {
		if i != victim {
			liveIDs = append(liveIDs, cluster.RaftIDFor(c.names[i]))
		}
	}
	slices.Sort(liveIDs)

	load.disrupt(fmt.Sprintf("kill -9 of %s; its replicas re-placed after -dead-member-timeout", c.names[victim]))
	c.nodes[victim].kill9()
	killedAt := time.Now()
	acksAtKill := load.ackCount()

	// Check A: at once, the dead node's voters are untouched.
	statuses := replaceStatuses(t, c)
	for _, s := range statuses {
		state := "not listed"
		if m, ok := replaceMember(s, c.names[victim]); ok {
			state = string(m.State)
		}
		if why := replaceStillHeld(s, held); why != "" {
			t.Fatalf("right after the kill of %s (%s ago; the timeout is %s, counted from its death, and %s sees it %s): %s",
				c.names[victim], time.Since(killedAt).Round(time.Millisecond), replaceDeadTimeout, s.Node, state, why)
		}
	}
	if d := time.Since(killedAt); d >= replaceDeadTimeout {
		t.Fatalf("check A took %s, longer than the timeout: it proves nothing", d)
	}

	var (
		deadSince time.Time // earliest Since of the victim's dead state, any node
		checkedB  bool
		// firstGoneAt is the first poll that saw a partition the dead
		// node held change (a learner added, a voter removed).
		firstGoneAt time.Time
		firstGone   string
	)
	deadline := killedAt.Add(replaceDeadTimeout + 120*time.Second)
	for {
		pollStart := time.Now()
		statuses, complete := replaceTryStatuses(c)
		pollEnd := time.Now()
		deadEverywhere := complete
		for _, s := range statuses {
			m, ok := replaceMember(s, c.names[victim])
			if !ok || m.State != cluster.StateDead {
				deadEverywhere = false
				continue
			}
			if deadSince.IsZero() || m.Since.Before(deadSince) {
				deadSince = m.Since
			}
		}
		if firstGoneAt.IsZero() {
			for _, s := range statuses {
				if why := replaceStillHeld(s, held); why != "" {
					firstGoneAt, firstGone = pollStart, why
					break
				}
			}
			if !firstGoneAt.IsZero() {
				if deadSince.IsZero() {
					t.Fatalf("%s replaced while no live node reports it dead: %s", c.names[victim], firstGone)
				}
				if earliest := deadSince.Add(replaceDeadTimeout); pollEnd.Before(earliest) {
					t.Fatalf("%s replaced before -dead-member-timeout: seen at %s after its death was recorded (%s), the timeout is %s: %s",
						c.names[victim], pollEnd.Sub(deadSince).Round(time.Millisecond), deadSince.Format(time.RFC3339Nano), replaceDeadTimeout, firstGone)
				}
			}
		}
		if deadEverywhere && !checkedB {
			// Check B: declared dead everywhere, still in place.
			checkedB = true
			if !pollEnd.Before(deadSince.Add(replaceDeadTimeout)) {
				t.Fatalf("check B came %s after the death was recorded, not within the %s timeout: it proves nothing",
					pollEnd.Sub(deadSince).Round(time.Millisecond), replaceDeadTimeout)
			}
			for _, s := range statuses {
				if why := replaceStillHeld(s, held); why != "" {
					t.Fatalf("%s dead since %s ago (timeout %s), yet already: %s",
						c.names[victim], pollEnd.Sub(deadSince).Round(time.Millisecond), replaceDeadTimeout, why)
				}
			}
			t.Logf("check B: %s declared dead by every live node %s after the kill; still a voter of its %d partitions %s after the first death record",
				c.names[victim], deadSince.Sub(killedAt).Round(time.Millisecond), len(held), pollEnd.Sub(deadSince).Round(time.Millisecond))
		}
		why := "statuses incomplete"
		if complete {
			why = replaceReplaced(statuses, victimID, liveIDs)
		}
		if why == "" {
			if !checkedB {
				t.Fatalf("re-placed before every live node reported %s dead", c.names[victim])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions of %s not re-placed within %s of the kill (dead since %v): %s",
				c.names[victim], deadline.Sub(killedAt), deadSince.Format(time.RFC3339Nano), why)
		}
		time.Sleep(100 * time.Millisecond)
	}
	replacedAt := time.Now()
	t.Logf("%s (voter of %d partitions) killed; dead after %s; first replacement seen %s after the death record (timeout %s); all %d partitions on the 3 survivors %s after the kill",
		c.names[victim], len(held), deadSince.Sub(killedAt).Round(time.Millisecond), firstGoneAt.Sub(deadSince).Round(time.Millisecond),
		replaceDeadTimeout, len(statuses[0].Partitions), replacedAt.Sub(killedAt).Round(time.Millisecond))

	// The chat went on throughout, and goes on now.
	if load.ackCount() <= acksAtKill {
		t.Errorf("no message acknowledged between the kill and the re-placement")
	}
	load.settle(3)
	load.waitAcks(load.ackCount()+100, 60*time.Second)
	load.finish()
}

// replaceWaitPlaced waits until, seen from every live node, every
// partition's voters are exactly its ring placement (no move under way).
func replaceWaitPlaced(t *testing.T, c *testCluster, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		why := "statuses incomplete"
		if statuses, complete := replaceTryStatuses(c); complete {
			why = replacePlaced(statuses)
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions not at their ring placement within %s: %s", within, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// replacePlaced says how statuses differ from every partition being at its
// ring placement: its leader's voters are the placement's nodes, with no
// learners, and every voter has applied that configuration.
func replacePlaced(statuses []cluster.Status) string {
	if ok, why := cluster.Converged(statuses, 3); !ok {
		return why
	}
	byID := map[uint64]cluster.Status{}
	for _, s := range statuses {
		byID[s.RaftID] = s
	}
	for p, leader := range replaceLeaderViewsOf(statuses) {
		var want []uint64
		for _, name := range leader.preferred {
			want = append(want, cluster.RaftIDFor(name))
		}
		slices.Sort(want)
		if !slices.Equal(leader.Voters, want) || len(leader.Learners) > 0 {
			return fmt.Sprintf("partition %d: voters %v, learners %v on its leader %s; placement %v", p, leader.Voters, leader.Learners, leader.node, leader.preferred)
		}
		for _, id := range leader.Voters {
			s, ok := byID[id]
			if !ok {
				return fmt.Sprintf("partition %d: voter %d is no live node", p, id)
			}
			if v := s.Partitions[p]; !v.Member || !slices.Equal(v.Voters, leader.Voters) || len(v.Learners) > 0 {
				return fmt.Sprintf("partition %d: voters %v, learners %v on %s; %v on its leader %s", p, v.Voters, v.Learners, s.Node, leader.Voters, leader.node)
			}
		}
	}
	return ""
}

// replaceLeaderView is a partition as its serving leader reports it.
type replaceLeaderView struct {
	cluster.PartitionStatus
	node      string
	preferred []string
}

// replaceLeaderViewsOf returns each partition's view from the node that
// serves it (the latest term, should two claim to); partitions that no
// node serves are missing.
func replaceLeaderViewsOf(statuses []cluster.Status) map[int]replaceLeaderView {
	out := map[int]replaceLeaderView{}
	for _, s := range statuses {
		for _, p := range s.Partitions {
			if !p.Serving {
				continue
			}
			if cur, ok := out[p.Partition]; !ok || p.Term > cur.Term {
				out[p.Partition] = replaceLeaderView{PartitionStatus: p, node: s.Node, preferred: s.Preferred[p.Partition]}
			}
		}
	}
	return out
}

// replaceLeaderViews is replaceLeaderViewsOf for statuses in which every
// partition must be served.
func replaceLeaderViews(t *testing.T, statuses []cluster.Status) map[int]replaceLeaderView {
	t.Helper()
	views := replaceLeaderViewsOf(statuses)
	if len(statuses) == 0 || len(views) != len(statuses[0].Partitions) {
		t.Fatalf("%d partitions served, want every one", len(views))
	}
	return views
}

// replaceTryStatuses returns the statuses of the live nodes that answered,
// and whether all did.
func replaceTryStatuses(c *testCluster) ([]cluster.Status, bool) {
	var out []cluster.Status
	complete := true
	for _, n := range c.live() {
		st, ok := c.status(n)
		if !ok {
			complete = false
			continue
		}
		out = append(out, st)
	}
	return out, complete
}

// replaceStatuses is replaceTryStatuses for a check that needs every one.
func replaceStatuses(t *testing.T, c *testCluster) []cluster.Status {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		statuses, complete := replaceTryStatuses(c)
		if complete {
			return statuses
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every live node answered /admin/cluster within 5s (%d of %d did)", len(statuses), len(c.live()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func replaceMember(s cluster.Status, name string) (cluster.Member, bool) {
	for _, m := range s.Members {
		if m.Name == name {
			return m, true
		}
	}
	return cluster.Member{}, false
}

// replaceStillHeld says how s's view differs from the voters recorded at
// the kill for the partitions the dead node held ("" if it does not).
func replaceStillHeld(s cluster.Status, held map[int][]uint64) string {
	for _, p := range s.Partitions {
		voters, ok := held[p.Partition]
		if !ok || !p.Member || !slices.Contains(voters, s.RaftID) {
			// Only the group's members speak for it: a node removed from
			// a group may keep it, with the configuration it last knew.
			continue
		}
		if !slices.Equal(p.Voters, voters) {
			return fmt.Sprintf("partition %d on %s: voters %v, were %v at the kill", p.Partition, s.Node, p.Voters, voters)
		}
		if len(p.Learners) > 0 {
			return fmt.Sprintf("partition %d on %s: learners %v added (voters %v)", p.Partition, s.Node, p.Learners, p.Voters)
		}
	}
	return ""
}

// replaceReplaced says what is still missing for the dead node to be
// re-placed: every live node a member of every partition, whose voters are
// exactly the live nodes (three, without the dead one), no learners, and
// every partition served by some live node.
func replaceReplaced(statuses []cluster.Status, deadID uint64, liveIDs []uint64) string {
	served := map[int]bool{}
	parts := 0
	for _, s := range statuses {
		parts = len(s.Partitions)
		for _, p := range s.Partitions {
			switch {
			case !p.Member:
				return fmt.Sprintf("partition %d: %s is not a member", p.Partition, s.Node)
			case slices.Contains(p.Voters, deadID):
				return fmt.Sprintf("partition %d on %s: the dead node %d is still a voter (voters %v, learners %v)", p.Partition, s.Node, deadID, p.Voters, p.Learners)
			case len(p.Voters) != 3 || !slices.Equal(p.Voters, liveIDs) || len(p.Learners) != 0:
				return fmt.Sprintf("partition %d on %s: voters %v, learners %v; want voters %v", p.Partition, s.Node, p.Voters, p.Learners, liveIDs)
			}
			if p.Serving {
				served[p.Partition] = true
			}
		}
	}
	if parts == 0 || len(served) != parts {
		var missing []int
		for p := range parts {
			if !served[p] {
				missing = append(missing, p)
			}
		}
		return fmt.Sprintf("partitions %v served by no live node", missing)
	}
	return ""
}
