package cluster

import (
	"context"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
)

// confChangeTimeout is how long a proposed conf change may stay unapplied
// before the rebalancer tries again (the proposal was probably dropped).
const confChangeTimeout = 10 * time.Second

// catchUpSlack is how many entries behind the commit index a learner may be
// and still count as caught up (Raft finishes the catch-up itself).
const catchUpSlack = 256

// rebalance moves, for every partition this node leads, the group's members
// one step toward the ring's choice: add a missing member as a learner,
// promote a caught-up learner, remove a member the ring no longer wants
// (crashed ones only after deadTimeout, and never below the wanted replica
// count while a replacement is still catching up), and hand leadership to
// the ring's preferred leader once it is caught up.
func (e *Engine) rebalance(ctx context.Context, ring *Ring, members []Member, deadTimeout time.Duration) error {
	byID := map[uint64]Member{}
	for _, m := range members {
		byID[m.RaftID] = m
	}
	now := time.Now()
	return e.call(ctx, func() error {
		for p, g := range e.groups {
			if g == nil || !g.serving {
				continue
			}
			if g.pendingConf != 0 && now.Sub(g.pendingConfAt) < confChangeTimeout {
				continue
			}
			g.pendingConf = 0
			e.rebalanceGroup(g, ring.Preferred(p), byID, now, deadTimeout)
		}
		return nil
	})
}

func (e *Engine) rebalanceGroup(g *group, preferred []string, byID map[uint64]Member, now time.Time, deadTimeout time.Duration) {
	conf := g.st.conf
	if len(conf.VotersOutgoing) > 0 {
		return // a joint configuration is being left
	}
	target := make([]uint64, len(preferred))
	for i, name := range preferred {
		target[i] = RaftIDFor(name)
	}
	alive := func(id uint64) bool {
		m, ok := byID[id]
		return ok && (m.State == StateAlive || m.State == StateSuspect)
	}
	gone := func(id uint64) bool {
		m, ok := byID[id]
		if !ok {
			return now.Sub(e.started) > deadTimeout
		}
		switch m.State {
		case StateLeft:
			return true
		case StateDead:
			return now.Sub(m.Since) > deadTimeout
		}
		return false
	}
	status := g.rn.Status()
	progress := status.Progress
	// Caught up means replicating and close behind: under steady load a
	// follower's match trails the commit index by the entries in flight, so
	// demanding equality would starve promotions and transfers.
	caughtUp := func(id uint64) bool {
		pr, ok := progress[id]
		return ok && pr.State == tracker.StateReplicate && pr.Match+catchUpSlack >= status.GetCommit()
	}
	voters, learners := conf.Voters, conf.Learners
	// 1. Add a wanted member that is not in the group yet, once its peer
	// link is proven (a host that only has the gossip key gets nothing;
	// until it is added the group keeps its members, step 3).
	for _, id := range target {
		if !slices.Contains(voters, id) && !slices.Contains(learners, id) && alive(id) && byID[id].Proven {
			e.proposeConf(g, pb.ConfChangeType_ConfChangeAddLearnerNode, id)
			return
		}
	}
	// 2. Promote a wanted learner once it has the log.
	for _, id := range learners {
		if slices.Contains(target, id) && caughtUp(id) {
			e.proposeConf(g, pb.ConfChangeType_ConfChangeAddNode, id)
			return
		}
	}
	// 3. Remove unwanted learners, then unwanted voters: a gone one at
	// once, a live one only when every wanted member is a voter.
	for _, id := range learners {
		if !slices.Contains(target, id) {
			e.proposeConf(g, pb.ConfChangeType_ConfChangeRemoveNode, id)
			return
		}
	}
	allWantedVoters := true
	for _, id := range target {
		if !slices.Contains(voters, id) {
			allWantedVoters = false
		}
	}
	for _, id := range voters {
		if slices.Contains(target, id) {
			continue
		}
		if !gone(id) && (!allWantedVoters || !alive(id)) {
			continue
		}
		if id == e.cfg.RaftID {
			// Never remove the leader itself: hand leadership over first.
			if next := e.bestTransferee(g, target, alive); next != 0 {
				e.transferLeader(g, next, now)
			}
			return
		}
		e.proposeConf(g, pb.ConfChangeType_ConfChangeRemoveNode, id)
		return
	}
	// 4. Steer leadership to the preferred member.
	if len(target) > 0 && target[0] != e.cfg.RaftID && slices.Contains(voters, target[0]) &&
		alive(target[0]) && caughtUp(target[0]) && status.LeadTransferee == 0 && g.transferTo == 0 && now.After(g.holdUntil) {
		if pr := progress[target[0]]; pr.RecentActive {
			e.transferLeader(g, target[0], now)
		}
	}
}

// bestTransferee picks the voter to hand leadership to: a wanted, live,
// caught-up voter, else any live caught-up voter.
func (e *Engine) bestTransferee(g *group, target []uint64, alive func(uint64) bool) uint64 {
	status := g.rn.Status()
	var best uint64
	var bestMatch uint64
	for id, pr := range status.Progress {
		if id == e.cfg.RaftID || pr.IsLearner || !alive(id) || !pr.RecentActive {
			continue
		}
		match := pr.Match
		if slices.Contains(target, id) {
			match++ // prefer a wanted member on ties
		}
		if best == 0 || match > bestMatch {
			best, bestMatch = id, match
		}
	}
	return best
}

func (e *Engine) proposeConf(g *group, typ pb.ConfChangeType, id uint64) {
	cc := &pb.ConfChangeV2{Changes: []*pb.ConfChangeSingle{{Type: typ.Enum(), NodeId: &id}}}
	if err := g.rn.ProposeConfChange(cc); err != nil {
		e.log.Warn("propose membership change", "partition", g.part, "change", typ.String(), "node", id, "err", err)
		return
	}
	e.log.Info("proposed membership change", "partition", g.part, "change", typ.String(), "node", id)
	g.pendingConf = g.st.last + 1
	g.pendingConfAt = time.Now()
}

// handOff transfers leadership of every partition this node leads to
// another voter and waits (bounded by ctx) until it leads none. Groups
// without another live voter are left as they are.
func (e *Engine) handOff(ctx context.Context) error {
	for {
		leading := 0
		err := e.call(ctx, func() error {
			for _, g := range e.groups {
				if g == nil || g.rn.BasicStatus().RaftState != raft.StateLeader {
					continue
				}
				next := e.bestTransferee(g, nil, func(uint64) bool { return true })
				if next == 0 {
					continue // a group of one: nobody to hand to
				}
				leading++
				e.transferLeader(g, next, time.Now())
			}
			return nil
		})
		if err != nil {
			return err
		}
		if leading == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// moveLeadership hands partition p's leadership to another live, caught-up
// voter, if this node leads it, and returns that voter (0: no transfer).
func (e *Engine) moveLeadership(ctx context.Context, p int) (uint64, error) {
	var to uint64
	err := e.call(ctx, func() error {
		g := e.groups[p]
		if g == nil || g.rn.BasicStatus().RaftState != raft.StateLeader {
			return nil
		}
		if next := e.bestTransferee(g, nil, func(uint64) bool { return true }); next != 0 {
			e.transferLeader(g, next, time.Now())
			if g.transferTo == next {
				to = next // (another transfer already under way: none)
			}
		}
		return nil
	})
	return to, err
}

// hold suspends steering partition p's leadership back to its preferred
// member until the given time, so that an operator's move sticks.
func (e *Engine) hold(ctx context.Context, p int, until time.Time) error {
	return e.call(ctx, func() error {
		if g := e.groups[p]; g != nil {
			g.holdUntil = until
		}
		return nil
	})
}
