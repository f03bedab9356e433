package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/holocron-run/holocron/storage"
)

// EngineConfig configures the Raft engine of one node.
type EngineConfig struct {
	RaftID     uint64
	Store      *storage.PebbleStore
	Partitions int
	// TickInterval is one Raft tick. Default 100ms; elections take
	// ElectionTicks..2×ElectionTicks ticks.
	TickInterval   time.Duration
	ElectionTicks  int // default 10
	HeartbeatTicks int // default 1
	// PartitionOf maps an object to its partition; snapshots carry the
	// objects of one partition. Required.
	PartitionOf func(storage.ObjectID) int
	// LogKeep is how many applied entries a partition's Raft log keeps;
	// once twice as many have accumulated, the older half is truncated and
	// a follower that needs them gets a snapshot. Default 10000.
	LogKeep uint64
	// Send delivers outgoing Raft messages (the transport).
	Send func([]Envelope)
	// OnServing is called on the engine goroutine when this node starts or
	// stops serving a partition (it may activate its objects). It must not
	// block.
	OnServing func(part int, serving bool)
	Logger    *slog.Logger
	metrics   *metrics
}

// Envelope is a Raft message of one partition's group.
type Envelope struct {
	Partition int
	Msg       *pb.Message
}

// Engine runs one Raft group (etcd raft RawNode) per partition this node is
// a member of, all driven by one goroutine: every Ready of every group is
// persisted in one fsync'd Pebble batch, together with the application of
// their committed entries, before messages leave and proposals are
// acknowledged.
type Engine struct {
	cfg EngineConfig
	log *slog.Logger

	inbox chan []Envelope
	props chan proposal
	ctl   chan func()
	stop  chan struct{}
	done  chan struct{}

	// views are read by any goroutine; the engine goroutine writes them.
	views []partView
	// viewsCh is closed (and replaced) whenever a view's leader or serving
	// flag changes, so a request waiting for a partition's leader wakes up.
	viewsMu sync.Mutex
	viewsCh chan struct{}

	// Owned by the engine goroutine.
	groups  []*group
	started time.Time
	// heard is when a message from each peer last arrived; lease is how
	// recent that must be for a quorum before a leader may serve.
	heard     map[uint64]time.Time
	lease     time.Duration
	propEpoch uint64
	propSeq   uint64
}

type partView struct {
	lead    atomic.Uint64
	serving atomic.Bool
	// leaseEnds is when this node's lease on the partition ends, in
	// nanoseconds of the engine's monotonic clock (sinceStart): serving
	// holds only before it. The flag is refreshed on ticks and Readys; a
	// process paused past its lease (SIGSTOP, a frozen VM) wakes up with
	// the flag still set, and must not serve on it before a tick runs.
	leaseEnds atomic.Int64
	member    atomic.Bool
	// inConf is whether this node is a voter or learner of the group as
	// of the configuration it applied. A node removed from a group keeps
	// the group (and its last known leader, which it never learns to
	// replace: it no longer hears from the group), so its lead is news
	// only while inConf holds.
	inConf atomic.Bool
	// epoch counts the times this node started serving the partition.
	epoch atomic.Uint64
}

type proposal struct {
	part int
	data []byte
	done func(error)
	// epoch is the partition's serving epoch when the proposal was made:
	// one made before an interruption of service is refused after it, as
	// it may build on a batch that was refused during it (an object
	// pipelines its batches).
	epoch uint64
}

type group struct {
	part      int
	rn        *raft.RawNode
	st        *raftStorage
	leader    bool
	serving   bool
	termStart uint64
	pending   map[[16]byte]func(error)
	metrics   *metrics
	// heard is, for each peer, when this node sent the latest heartbeat
	// the peer acknowledged, as the group's leader in its current term.
	heard map[uint64]time.Time
	// holdUntil suspends steering leadership to the preferred member (an
	// operator moved the partition's objects here).
	holdUntil time.Time
	// pendingConf is the index of a proposed, not yet applied, conf change.
	pendingConf   uint64
	pendingConfAt time.Time
	// transferTo is the voter a requested hand-over goes to; transferIssued
	// tells whether Raft has been asked yet (see transferLeader).
	transferTo     uint64
	transferSince  time.Time
	transferIssued bool
	// snapshotsSent is, per follower, the last snapshot this node (as
	// leader) sent it and when, until the follower acknowledges it: the
	// log after it is kept meanwhile (see truncationIndex).
	snapshotsSent map[uint64]sentSnapshot
}

// sentSnapshot is a snapshot on its way to a follower, or being installed.
type sentSnapshot struct {
	index uint64
	at    time.Time
}

// snapshotHold is how long a leader keeps the log after a snapshot it sent
// for a follower that has not acknowledged it: long enough for a large
// snapshot to cross a slow link and be installed on a busy node, during
// which the follower answers nothing (Raft then counts it inactive).
const snapshotHold = time.Minute

// proposal IDs prefix each normal entry: 8 bytes of per-process epoch and
// 8 bytes of sequence, so the proposer can match the applied entry.
const propIDLen = 16

// NewEngine loads every group this node holds and starts the engine.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.TickInterval == 0 {
		cfg.TickInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogKeep == 0 {
		cfg.LogKeep = 10000
	}
	if cfg.PartitionOf == nil {
		return nil, errors.New("raft engine: EngineConfig.PartitionOf is required")
	}
	e := &Engine{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "raft"),
		inbox:   make(chan []Envelope, 1024),
		props:   make(chan proposal, 8192),
		ctl:     make(chan func(), 64),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
		views:   make([]partView, cfg.Partitions),
		groups:  make([]*group, cfg.Partitions),
		started: time.Now(),
		lease:   time.Duration(cfg.ElectionTicks) * cfg.TickInterval / 2,
	}
	var seed [8]byte
	rand.Read(seed[:])
	e.propEpoch = binary.BigEndian.Uint64(seed[:])
	for p := range cfg.Partitions {
		st, ok, err := loadRaftStorage(e.cfg.Store, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		if err := e.startGroup(p, st, nil); err != nil {
			return nil, err
		}
	}
	go e.run()
	return e, nil
}

// Initialized reports whether the node holds any Raft group.
func (e *Engine) Initialized() bool {
	for p := range e.views {
		if e.views[p].member.Load() {
			return true
		}
	}
	return false
}

func (e *Engine) startGroup(p int, st *raftStorage, bootstrap []raft.Peer) error {
	st.snapshot = func() (*pb.Snapshot, error) { return e.buildSnapshot(p, st) }
	rn, err := raft.NewRawNode(&raft.Config{
		ID:                e.cfg.RaftID,
		ElectionTick:      e.cfg.ElectionTicks,
		HeartbeatTick:     e.cfg.HeartbeatTicks,
		Storage:           st,
		Applied:           st.applied,
		MaxSizePerMsg:     1 << 20,
		MaxInflightMsgs:   256,
		CheckQuorum:       true,
		PreVote:           true,
		StepDownOnRemoval: true,
		Logger:            raftLogger{e.log.With("partition", p)},
	})
	if err != nil {
		return fmt.Errorf("start raft group of partition %d: %w", p, err)
	}
	if bootstrap != nil {
		if err := rn.Bootstrap(bootstrap); err != nil {
			return fmt.Errorf("bootstrap partition %d: %w", p, err)
		}
	}
	e.groups[p] = &group{part: p, rn: rn, st: st, pending: map[[16]byte]func(error){}, metrics: e.cfg.metrics, heard: map[uint64]time.Time{}}
	e.views[p].member.Store(true)
	e.setConf(e.groups[p], st.conf)
	return nil
}

// setConf records the configuration g applied, and whether this node is
// still part of it.
func (e *Engine) setConf(g *group, conf *pb.ConfState) {
	g.st.conf = conf
	in := slices.Contains(conf.Voters, e.cfg.RaftID) || slices.Contains(conf.Learners, e.cfg.RaftID) ||
		slices.Contains(conf.VotersOutgoing, e.cfg.RaftID) || slices.Contains(conf.LearnersNext, e.cfg.RaftID)
	if e.views[g.part].inConf.Swap(in) != in {
		e.notifyViews()
	}
}

// Bootstrap creates every partition's group with this node as its only
// voter. It is for the first node of a new cluster; others are added by the
// rebalancer. It fails if the node already holds Raft state.
func (e *Engine) Bootstrap(ctx context.Context) error {
	return e.call(ctx, func() error {
		for p := range e.groups {
			if e.groups[p] != nil {
				return errors.New("bootstrap: node already holds raft state")
			}
		}
		for p := range e.groups {
			st := &raftStorage{store: e.cfg.Store, part: p, hard: &pb.HardState{}, conf: &pb.ConfState{}}
			if err := e.startGroup(p, st, []raft.Peer{{ID: e.cfg.RaftID}}); err != nil {
				return err
			}
		}
		return nil
	})
}

// call runs fn on the engine goroutine and waits for its result.
func (e *Engine) call(ctx context.Context, fn func() error) error {
	res := make(chan error, 1)
	select {
	case e.ctl <- func() { res <- fn() }:
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return storage.ErrClosed
	}
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-e.done:
		return storage.ErrClosed
	}
}

// Leader returns the Raft ID of partition p's leader as this node knows it
// (0 when unknown) and whether this node serves p itself.
func (e *Engine) Leader(p int) (lead uint64, serving bool) {
	v := &e.views[p]
	return v.lead.Load(), e.Serving(p)
}

// InGroup reports whether this node is a voter or learner of p's group, as
// of the configuration it applied. Leader(p) is current only while it is:
// a node removed from the group keeps its last view of the leader.
func (e *Engine) InGroup(p int) bool { return e.views[p].inConf.Load() }

// ViewsChanged returns a channel closed at the next change of any
// partition's leader or of this node's serving a partition.
func (e *Engine) ViewsChanged() <-chan struct{} {
	e.viewsMu.Lock()
	defer e.viewsMu.Unlock()
	if e.viewsCh == nil {
		e.viewsCh = make(chan struct{})
	}
	return e.viewsCh
}

func (e *Engine) notifyViews() {
	e.viewsMu.Lock()
	if e.viewsCh != nil {
		close(e.viewsCh)
		e.viewsCh = nil
	}
	e.viewsMu.Unlock()
}

// Serving reports whether this node leads p and has applied its log.
func (e *Engine) Serving(p int) bool {
	v := &e.views[p]
	return v.serving.Load() && int64(time.Since(e.started)) < v.leaseEnds.Load()
}

// Propose replicates data in partition p's group; done is called once it is
// committed and applied on this node, or with storage.ErrNotOwner when this
// node does not serve p (or loses leadership first).
func (e *Engine) Propose(p int, data []byte, done func(error)) {
	e.ProposeAt(p, e.Epoch(p), data, done)
}

// Epoch is p's serving epoch: it grows each time this node starts serving
// p. Read it before Serving: a node that serves p serves it in that epoch
// or a later one.
func (e *Engine) Epoch(p int) uint64 { return e.views[p].epoch.Load() }

// ProposeAt is Propose for a proposal that belongs to serving epoch epoch:
// it is refused (storage.ErrNotWritten) unless p is still served in that
// epoch when the engine takes it.
func (e *Engine) ProposeAt(p int, epoch uint64, data []byte, done func(error)) {
	if !e.views[p].serving.Load() {
		if m := e.cfg.metrics; m != nil {
			m.proposals.WithLabelValues("not_owner").Inc()
		}
		done(errRefused)
		return
	}
	select {
	case <-e.done:
		done(storage.ErrClosed)
		return
	default:
	}
	select {
	case e.props <- proposal{part: p, data: data, done: done, epoch: epoch}:
	case <-e.done:
		done(storage.ErrClosed)
	}
}

// Step delivers messages received from peers.
func (e *Engine) Step(envs []Envelope) {
	select {
	case e.inbox <- envs:
	case <-e.done:
	}
}

// ReportUnreachable tells the groups that messages to a peer failed.
func (e *Engine) ReportUnreachable(to uint64, parts []int) {
	select {
	case e.ctl <- func() {
		for _, p := range parts {
			if g := e.groups[p]; g != nil {
				g.rn.ReportUnreachable(to)
				// A snapshot in the failed batch must be sent again
				// (a no-op unless the peer is waiting for one).
				g.rn.ReportSnapshot(to, raft.SnapshotFailure)
			}
		}
	}:
	default: // best effort: raft retries anyway
	}
}

// ReportSnapshotSent tells the groups of parts that their snapshot reached
// peer to. Raft keeps a peer that was sent a snapshot paused until it hears
// this (or the peer acknowledges an index the log still holds): without
// it, a follower whose snapshot was overtaken by a log truncation while in
// flight (a busy partition, a slow link) was never sent another, and a
// learner stayed a learner forever.
func (e *Engine) ReportSnapshotSent(to uint64, parts []int) {
	select {
	case e.ctl <- func() {
		for _, p := range parts {
			if g := e.groups[p]; g != nil {
				g.rn.ReportSnapshot(to, raft.SnapshotFinish)
			}
		}
	}:
	case <-e.done:
	}
}

// Close stops the engine; pending proposals fail.
func (e *Engine) Close() {
	select {
	case <-e.stop:
	default:
		close(e.stop)
	}
	<-e.done
}

func (e *Engine) run() {
	defer close(e.done)
	ticker := time.NewTicker(e.cfg.TickInterval)
	defer ticker.Stop()
	for {
		select {
		case <-e.stop:
			e.stopServing(storage.ErrClosed)
			return
		case now := <-ticker.C:
			for _, g := range e.groups {
				if g != nil {
					g.rn.Tick()
					e.refreshServing(g, now)
				}
			}
		case envs := <-e.inbox:
			e.step(envs)
		drainInbox:
			for {
				select {
				case more := <-e.inbox:
					e.step(more)
				default:
					break drainInbox
				}
			}
		case p := <-e.props:
			e.propose(p)
		drainProps:
			for range 4096 {
				select {
				case more := <-e.props:
					e.propose(more)
				default:
					break drainProps
				}
			}
		case fn := <-e.ctl:
			fn()
		}
		if err := e.processReadyGuarded(); err != nil {
			// The node cannot persist Raft state: continuing could break
			// Raft's promises, so stop serving everything, and fail the
			// node's store (which logs the cause): its owner then
			// fail-stops the process (storage.PebbleOptions.OnFailure) and
			// the other voters elect new leaders.
			e.cfg.Store.Fail(fmt.Errorf("raft persistence failed: %w", err))
			e.log.Warn("raft persistence failed; engine stopping", "err", err)
			e.stopServing(err)
			return
		}
	}
}

// processReadyGuarded is processReady on storage that may fail. Once the
// store has failed it writes nothing (Pebble's commit pipeline may be
// wedged). And Pebble does not return a failed WAL write or fsync: it
// calls its logger's Fatalf, which fails the store and panics, or panics
// itself with the error (see storage's syncCommit); that panic becomes the
// error here. A panic that is not an error (Raft's invariants) or is a
// runtime error (a bug) goes on.
func (e *Engine) processReadyGuarded() (err error) {
	if err := e.cfg.Store.Err(); err != nil {
		return err
	}
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if failed := e.cfg.Store.Err(); failed != nil {
			err = failed // Pebble's Fatalf: the store has the cause
			return
		}
		if perr, ok := r.(error); ok {
			if _, bug := r.(interface{ RuntimeError() }); !bug {
				err = fmt.Errorf("pebble: %w", perr)
				return
			}
		}
		panic(r)
	}()
	return e.processReady()
}

func (e *Engine) step(envs []Envelope) {
	for _, env := range envs {
		p := env.Partition
		if p < 0 || p >= len(e.groups) || env.Msg.GetTo() != e.cfg.RaftID {
			continue
		}
		g := e.groups[p]
		if g == nil {
			// A leader is adding this node to the group: start it empty; the
			// leader's log (or a snapshot) fills it in.
			switch env.Msg.GetType() {
			case pb.MessageType_MsgApp, pb.MessageType_MsgHeartbeat, pb.MessageType_MsgSnap:
			default:
				continue
			}
			st := &raftStorage{store: e.cfg.Store, part: p, hard: &pb.HardState{}, conf: &pb.ConfState{}}
			if err := e.startGroup(p, st, nil); err != nil {
				e.log.Error("start group for incoming message", "partition", p, "err", err)
				continue
			}
			g = e.groups[p]
			e.log.Info("joining partition group", "partition", p, "from", env.Msg.GetFrom())
		}
		if env.Msg.GetType() == pb.MessageType_MsgHeartbeatResp {
			// Only a peer's acknowledgement of a heartbeat of this group's
			// leader in its current term extends the leader's lease, and
			// from when that heartbeat was sent, not when its answer came:
			// a leader woken from a pause finds answers to its heartbeats
			// from before the pause waiting in its sockets, and the peers
			// may have elected another leader since (CI at 232ae14).
			sent, stamped := e.heartbeatSent(env.Msg.GetContext())
			if stamped {
				env.Msg.Context = nil // Raft's own read-index contexts are never stamped
			}
			if stamped && g.leader && env.Msg.GetTerm() == g.rn.BasicStatus().GetTerm() && sent.After(g.heard[env.Msg.GetFrom()]) {
				g.heard[env.Msg.GetFrom()] = sent
			}
		}
		if err := g.rn.Step(env.Msg); err != nil && !errors.Is(err, raft.ErrStepPeerNotFound) {
			e.log.Debug("raft step", "partition", p, "err", err)
		}
	}
}

// errRefused answers a proposal this node turned away before it reached the
// Raft log: it was written nowhere.
var errRefused = fmt.Errorf("%w: %w", storage.ErrNotOwner, storage.ErrNotWritten)

func (e *Engine) propose(p proposal) {
	g := e.groups[p.part]
	if g == nil || !g.serving || p.epoch != e.views[p.part].epoch.Load() {
		p.done(errRefused)
		return
	}
	e.propSeq++
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], e.propEpoch)
	binary.BigEndian.PutUint64(id[8:], e.propSeq)
	data := make([]byte, 0, propIDLen+len(p.data))
	data = append(append(data, id[:]...), p.data...)
	if err := g.rn.Propose(data); err != nil {
		p.done(fmt.Errorf("propose in partition %d: %w: %w", p.part, errRefused, err))
		return
	}
	g.pending[id] = p.done
}

// stopServing ends the engine's service: no partition is served any more,
// and every pending or queued proposal is answered with err.
func (e *Engine) stopServing(err error) {
	for p := range e.views {
		e.setServing(p, false)
	}
	for _, g := range e.groups {
		if g != nil {
			g.failPending(err)
		}
	}
	for {
		select {
		case p := <-e.props:
			p.done(err)
		default:
			return
		}
	}
}

func (g *group) failPending(err error) {
	for id, done := range g.pending {
		if g.metrics != nil {
			outcome := "failed"
			if errors.Is(err, storage.ErrNotOwner) {
				outcome = "not_owner"
			}
			g.metrics.proposals.WithLabelValues(outcome).Inc()
		}
		done(err)
		delete(g.pending, id)
	}
}

// readyWork is one group's Ready and what persisting it changes.
type readyWork struct {
	g          *group
	rd         raft.Ready
	last, term uint64
	applied    uint64
	conf       *pb.ConfState
	acks       []func(error)
	fails      []func()
}

// processReady persists every group's Ready in one fsync'd batch, applies
// committed entries in the same batch, then sends messages, acknowledges
// applied proposals and advances the groups.
func (e *Engine) processReady() error {
	var work []*readyWork
	for _, g := range e.groups {
		if g != nil && g.rn.HasReady() {
			work = append(work, &readyWork{g: g, rd: g.rn.Ready()})
		}
	}
	if len(work) == 0 {
		return nil
	}
	for _, w := range work {
		if snap := w.rd.Snapshot; snap != nil && !raft.IsEmptySnap(snap) {
			if err := e.installSnapshot(w.g, snap); err != nil {
				return fmt.Errorf("partition %d: install snapshot: %w", w.g.part, err)
			}
		}
	}
	start := time.Now()
	b := e.cfg.Store.NewWriteBatch()
	defer b.Close()
	sync := false
	for _, w := range work {
		if err := e.persist(b, w); err != nil {
			return fmt.Errorf("partition %d: %w", w.g.part, err)
		}
		sync = sync || raft.MustSync(w.rd.HardState, w.g.st.hard, len(w.rd.Entries))
	}
	// The batch is fsync'd when it holds what Raft must have on disk before
	// anything is sent or acknowledged: log entries, or a new term or vote.
	// A batch that only applies committed entries (and moves the commit
	// index) is not: the Raft log, fsync'd on this node and a quorum when
	// the entries were appended, is their write-ahead log. A crash that
	// loses such a batch (Pebble's WAL keeps a prefix of the batches, so
	// nothing written after it survives either) leaves the applied index
	// and the objects' data as they were before it, together, and the
	// entries are applied again from the log at restart, before the node
	// serves: an acknowledged write is never lost. CockroachDB applies
	// without a sync likewise.
	if err := b.Commit(sync); err != nil {
		return fmt.Errorf("commit raft batch: %w", err)
	}
	if m := e.cfg.metrics; m != nil {
		m.readyBatches.Inc()
		m.readySeconds.Observe(time.Since(start).Seconds())
	}
	var out []Envelope
	for _, w := range work {
		g := w.g
		if hs := w.rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
			g.st.hard = proto.Clone(hs).(*pb.HardState)
		}
		g.st.last, g.st.lastTerm = w.last, w.term
		g.st.applied = w.applied
		if w.conf != nil {
			e.setConf(g, w.conf)
		}
		sentAt := e.stampHeartbeat(time.Now())
		for _, m := range w.rd.Messages {
			if m.GetType() == pb.MessageType_MsgHeartbeat && len(m.GetContext()) == 0 {
				m.Context = sentAt
			}
			out = append(out, Envelope{Partition: g.part, Msg: m})
			if m.GetType() == pb.MessageType_MsgSnap {
				if g.snapshotsSent == nil {
					g.snapshotsSent = map[uint64]sentSnapshot{}
				}
				g.snapshotsSent[m.GetTo()] = sentSnapshot{index: m.GetSnapshot().GetMetadata().GetIndex(), at: time.Now()}
			}
		}
	}
	if len(out) > 0 && e.cfg.Send != nil {
		e.cfg.Send(out)
		if m := e.cfg.metrics; m != nil {
			m.messagesSent.Add(float64(len(out)))
		}
	}
	for _, w := range work {
		for _, ack := range w.acks {
			ack(nil)
		}
		for _, fail := range w.fails {
			fail()
		}
		if m := e.cfg.metrics; m != nil && len(w.acks) > 0 {
			m.proposals.WithLabelValues("committed").Add(float64(len(w.acks)))
		}
		w.g.rn.Advance(w.rd)
		e.updateRole(w)
		if err := e.maybeTruncate(w.g); err != nil {
			return fmt.Errorf("partition %d: truncate log: %w", w.g.part, err)
		}
	}
	return nil
}

// buildSnapshot captures partition p's applied state: every key of its
// objects, with the applied index, its term and the configuration.
func (e *Engine) buildSnapshot(p int, st *raftStorage) (*pb.Snapshot, error) {
	index := st.applied
	term, err := st.Term(index)
	if err != nil {
		return nil, fmt.Errorf("snapshot of partition %d at %d: %w", p, index, err)
	}
	var data []byte
	err = e.cfg.Store.ExportObjects(func(id storage.ObjectID) bool { return e.cfg.PartitionOf(id) == p },
		func(key, value []byte) error {
			data = binary.AppendUvarint(data, uint64(len(key)))
			data = append(data, key...)
			data = binary.AppendUvarint(data, uint64(len(value)))
			data = append(data, value...)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("snapshot of partition %d: %w", p, err)
	}
	conf := proto.Clone(st.conf).(*pb.ConfState)
	e.log.Info("sending snapshot", "partition", p, "index", index, "bytes", len(data))
	if m := e.cfg.metrics; m != nil {
		m.snapshots.WithLabelValues("sent").Inc()
	}
	return &pb.Snapshot{Data: data, Metadata: &pb.SnapshotMetadata{Index: &index, Term: &term, ConfState: conf}}, nil
}

// installSnapshot replaces a partition's state and log with a snapshot, in
// its own fsync'd batch (later writes of the same Ready read what it wrote).
func (e *Engine) installSnapshot(g *group, snap *pb.Snapshot) error {
	md := snap.GetMetadata()
	index, term := md.GetIndex(), md.GetTerm()
	b := e.cfg.Store.NewWriteBatch()
	defer b.Close()
	if err := b.DeleteObjects(func(id storage.ObjectID) bool { return e.cfg.PartitionOf(id) == g.part }); err != nil {
		return err
	}
	data := snap.Data
	for len(data) > 0 {
		kl, n := binary.Uvarint(data)
		if n <= 0 || kl > uint64(len(data)-n) {
			return errors.New("malformed snapshot data")
		}
		key := data[n : n+int(kl)]
		data = data[n+int(kl):]
		vl, n := binary.Uvarint(data)
		if n <= 0 || vl > uint64(len(data)-n) {
			return errors.New("malformed snapshot data")
		}
		value := data[n : n+int(vl)]
		data = data[n+int(vl):]
		if err := b.ImportObjectKey(key, value); err != nil {
			return err
		}
	}
	if err := b.DeleteRaftLog(g.part); err != nil {
		return err
	}
	if err := b.SetRaft(g.part, storage.RaftTruncated, truncatedValue(index, term)); err != nil {
		return err
	}
	if err := putProto(b, g.part, storage.RaftConfState, md.GetConfState()); err != nil {
		return err
	}
	if err := b.SetRaft(g.part, storage.RaftApplied, binary.BigEndian.AppendUint64(nil, index)); err != nil {
		return err
	}
	if err := b.Commit(true); err != nil {
		return err
	}
	g.st.truncIndex, g.st.truncTerm = index, term
	g.st.last, g.st.lastTerm = index, term
	g.st.applied = index
	e.setConf(g, proto.Clone(md.GetConfState()).(*pb.ConfState))
	e.log.Info("installed snapshot", "partition", g.part, "index", index, "bytes", len(snap.Data))
	if m := e.cfg.metrics; m != nil {
		m.snapshots.WithLabelValues("installed").Inc()
	}
	return nil
}

// maybeTruncate drops the older half of a partition's log once it holds
// twice LogKeep applied entries. Followers further behind get a snapshot.
// Losing this batch in a crash only leaves a longer log, so it is not
// fsync'd on its own.
func (e *Engine) maybeTruncate(g *group) error {
	keep := e.cfg.LogKeep
	if g.st.applied < g.st.truncIndex+2*keep {
		return nil
	}
	index := e.truncationIndex(g, g.st.applied-keep)
	if index <= g.st.truncIndex {
		return nil
	}
	term, err := g.st.Term(index)
	if err != nil {
		return err
	}
	b := e.cfg.Store.NewWriteBatch()
	defer b.Close()
	if err := b.SetRaft(g.part, storage.RaftTruncated, truncatedValue(index, term)); err != nil {
		return err
	}
	if err := b.DeleteRaftEntries(g.part, 0, index+1); err != nil {
		return err
	}
	if err := b.Commit(false); err != nil {
		return err
	}
	g.st.truncIndex, g.st.truncTerm = index, term
	return nil
}

// maxHeldForCatchUp bounds how far behind the applied index a leader keeps
// its log for a follower that is catching up: 16×LogKeep, and at least
// minHeldForCatchUp entries whatever LogKeep is (a short log kept for tests
// or small disks must still outlast one snapshot's transfer under load).
const (
	maxHeldForCatchUp = 16
	minHeldForCatchUp = 100_000
)

// truncationIndex lowers want, on a leader, so as not to truncate entries a
// follower is about to need (see neededFrom): one heard from lately, or
// one sent a snapshot it has not acknowledged yet (within snapshotHold; a
// follower installing a large snapshot answers nothing meanwhile).
// Otherwise a busy partition's log moves past a snapshot while it is in
// flight or being installed, and the follower is sent snapshot after
// snapshot, never catching up (a learner then stays a learner). A follower
// further behind than the bound, or silent with no snapshot on its way,
// holds nothing (CockroachDB's raft log queue weighs the same, and holds
// the log for its in-flight snapshots likewise).
func (e *Engine) truncationIndex(g *group, want uint64) uint64 {
	if !g.leader {
		clear(g.snapshotsSent)
		return want
	}
	floor := uint64(0)
	if held := max(maxHeldForCatchUp*e.cfg.LogKeep, minHeldForCatchUp); g.st.applied > held {
		floor = g.st.applied - held
	}
	now := time.Now()
	for id, pr := range g.rn.Status().Progress {
		if id == e.cfg.RaftID {
			continue
		}
		need, holds := neededFrom(pr), pr.RecentActive
		if sent, ok := g.snapshotsSent[id]; ok {
			if pr.Match >= sent.index || now.Sub(sent.at) > snapshotHold {
				delete(g.snapshotsSent, id)
			} else {
				need, holds = min(need, sent.index), true
			}
		}
		if holds && need < want && need >= floor {
			want = need
		}
	}
	return want
}

// neededFrom is the last index a leader's log must keep (its term, and every
// entry after it) for the next message Raft sends a follower in progress
// pr: the snapshot's index while one is in flight; the index a probe
// starts from (Next-1), which after a delivered snapshot is the snapshot's
// index although the follower has not acknowledged it yet (it may still be
// installing it: Match is then far behind, and holding only Match let the
// log move past the snapshot, the livelock truncationIndex prevents); and
// Match while entries stream.
func neededFrom(pr tracker.Progress) uint64 {
	switch pr.State {
	case tracker.StateSnapshot:
		return pr.PendingSnapshot
	case tracker.StateProbe:
		return max(pr.Match, pr.Next-1)
	default:
		return pr.Match
	}
}

func (e *Engine) persist(b *storage.WriteBatch, w *readyWork) error {
	g, rd := w.g, w.rd
	last, term, err := g.st.appendEntries(b, rd.Entries)
	if err != nil {
		return err
	}
	w.last, w.term = last, term
	if hs := rd.HardState; hs != nil && !raft.IsEmptyHardState(hs) {
		if err := putProto(b, g.part, storage.RaftHardState, hs); err != nil {
			return err
		}
	}
	w.applied = g.st.applied
	for _, ent := range rd.CommittedEntries {
		switch ent.GetType() {
		case pb.EntryType_EntryNormal:
			if len(ent.Data) < propIDLen {
				break // a new leader's empty entry
			}
			var id [16]byte
			copy(id[:], ent.Data[:propIDLen])
			done, mine := g.pending[id]
			if mine {
				delete(g.pending, id)
			}
			batch, err := storage.DecodeBatch(ent.Data[propIDLen:])
			if err != nil {
				// Deterministic on every replica: skipping keeps them equal.
				e.log.Error("undecodable entry skipped", "partition", g.part, "index", ent.GetIndex(), "err", err)
				if mine {
					w.fails = append(w.fails, func() { done(fmt.Errorf("entry %d: %w", ent.GetIndex(), err)) })
				}
				break
			}
			if err := b.Apply(batch); err != nil {
				return fmt.Errorf("apply entry %d: %w", ent.GetIndex(), err)
			}
			if mine {
				w.acks = append(w.acks, done)
			}
		case pb.EntryType_EntryConfChange, pb.EntryType_EntryConfChangeV2:
			cc, err := decodeConfChange(ent)
			if err != nil {
				return fmt.Errorf("entry %d: %w", ent.GetIndex(), err)
			}
			// A node removed from a group keeps it (a passive, vote-less
			// member): a conf change removing this node may be old history
			// being replayed by a re-added node, so dropping the group on
			// seeing it would lose a live replica's state.
			w.conf = g.rn.ApplyConfChange(cc)
			if err := putProto(b, g.part, storage.RaftConfState, w.conf); err != nil {
				return err
			}
			if ent.GetIndex() >= g.pendingConf {
				g.pendingConf = 0
			}
			e.log.Debug("membership of partition changed", "partition", g.part, "voters", w.conf.Voters, "learners", w.conf.Learners)
		}
		w.applied = ent.GetIndex()
	}
	if w.applied != g.st.applied {
		if err := b.SetRaft(g.part, storage.RaftApplied, binary.BigEndian.AppendUint64(nil, w.applied)); err != nil {
			return err
		}
	}
	return nil
}

func decodeConfChange(ent *pb.Entry) (pb.ConfChangeI, error) {
	if ent.GetType() == pb.EntryType_EntryConfChange {
		var cc pb.ConfChange
		if err := proto.Unmarshal(ent.Data, &cc); err != nil {
			return nil, fmt.Errorf("decode conf change: %w", err)
		}
		return &cc, nil
	}
	var cc pb.ConfChangeV2
	if err := proto.Unmarshal(ent.Data, &cc); err != nil {
		return nil, fmt.Errorf("decode conf change: %w", err)
	}
	return &cc, nil
}

// updateRole tracks leadership after a Ready: a leader serves its partition
// once it has applied every entry up to the first of its term, so it never
// activates an object on stale state; losing leadership fails the
// partition's pending proposals (they may still commit, but were never
// acknowledged) and stops serving at once.
func (e *Engine) updateRole(w *readyWork) {
	g := w.g
	bs := g.rn.BasicStatus()
	if e.views[g.part].lead.Swap(bs.Lead) != bs.Lead {
		e.notifyViews()
	}
	isLeader := bs.RaftState == raft.StateLeader
	if isLeader && !g.leader {
		g.termStart = g.st.last

		clear(g.heard) // acknowledgements of an earlier term do not count
	}
	g.leader = isLeader
	if !isLeader {
		g.pendingConf = 0
		g.transferTo, g.transferIssued = 0, false
		if len(g.pending) > 0 {
			g.failPending(storage.ErrNotOwner)
		}
		e.setServing(g.part, false)
		return
	}
	e.refreshServing(g, time.Now())
}

// heartbeatStampPrefix starts the Context of every heartbeat a leader
// sends; followers echo it in their answers (etcd raft's handleHeartbeat),
// so that the leader knows when the heartbeat an answer acknowledges left.
const heartbeatStampPrefix = "hlease1:"

// stampHeartbeat returns the Context of a heartbeat sent at t: the prefix
// and t on the engine's monotonic clock (nanoseconds since it started).
func (e *Engine) stampHeartbeat(t time.Time) []byte {
	b := make([]byte, len(heartbeatStampPrefix), len(heartbeatStampPrefix)+8)
	copy(b, heartbeatStampPrefix)
	return binary.BigEndian.AppendUint64(b, uint64(t.Sub(e.started)))
}

// heartbeatSent decodes a stamp that a heartbeat answer echoes. A stamp
// from the future (a forged or garbled answer) is refused.
func (e *Engine) heartbeatSent(ctx []byte) (time.Time, bool) {
	rest, ok := bytes.CutPrefix(ctx, []byte(heartbeatStampPrefix))
	if !ok || len(rest) != 8 {
		return time.Time{}, false
	}
	d := time.Duration(binary.BigEndian.Uint64(rest))
	if d < 0 || d > time.Since(e.started) {
		return time.Time{}, false
	}
	return e.started.Add(d), true
}

// refreshServing decides whether a leader may serve: it must have applied
// its log up to the start of its term (so objects never start on stale
// state) and hold a lease: a quorum of the group's voters acknowledged a
// heartbeat it sent within half an election timeout. Followers do not vote for anyone else
// within an election timeout of hearing from this leader, so while the
// lease holds no other node can have become leader, and an isolated leader
// stops serving (and its objects close their sockets) well before the
// majority elects a new one.
func (e *Engine) refreshServing(g *group, now time.Time) {
	if !g.leader {
		return
	}
	e.advanceTransfer(g, now)
	heard := 0
	var recent []time.Time // when each voter was last heard from
	for _, v := range g.st.conf.Voters {
		at := g.heard[v]
		if v == e.cfg.RaftID {
			at = now
		}
		recent = append(recent, at)
		if now.Sub(at) < e.lease {
			heard++
		}
	}
	// The lease lasts while a quorum was heard from within e.lease: until
	// the quorum-th most recent of those times, plus e.lease.
	if q := len(recent)/2 + 1; len(recent) >= q {
		slices.SortFunc(recent, func(a, b time.Time) int { return b.Compare(a) })
		e.views[g.part].leaseEnds.Store(int64(recent[q-1].Add(e.lease).Sub(e.started)))
	}
	// A leader handing over leadership stops serving at once: the transferee
	// campaigns without waiting for leases to expire.
	ok := g.st.applied >= g.termStart && heard*2 > len(g.st.conf.Voters) && g.transferTo == 0 && g.rn.BasicStatus().LeadTransferee == 0
	e.setServing(g.part, ok)
}

// transferLeader hands g's leadership to voter to. The leader stops serving
// at once, so it accepts no new batch, and asks Raft to transfer only once
// the batches it already accepted have committed: etcd raft drops proposals
// during a transfer, and a leader that loses office must fail its pending
// ones although they may still commit, which would leave their writers in
// doubt. A drain that takes longer than an election timeout (no quorum
// acknowledges) transfers anyway.
func (e *Engine) transferLeader(g *group, to uint64, now time.Time) {
	if !g.leader || g.transferTo != 0 {
		return
	}
	g.transferTo, g.transferSince, g.transferIssued = to, now, false
	e.refreshServing(g, now)
}

// advanceTransfer moves a requested hand-over along: it issues the Raft
// transfer once the pending batches are done, and ends the request when
// Raft gave the transfer up (the leader then serves again; whoever asked
// may ask again).
func (e *Engine) advanceTransfer(g *group, now time.Time) {
	if g.transferTo == 0 {
		return
	}
	if !g.transferIssued {
		if len(g.pending) > 0 && now.Sub(g.transferSince) < 2*e.lease {
			return
		}
		g.rn.TransferLeader(g.transferTo)
		g.transferIssued = true
		return
	}
	if g.rn.BasicStatus().LeadTransferee == 0 {
		g.transferTo, g.transferIssued = 0, false
	}
}

func (e *Engine) setServing(p int, serving bool) {
	if g := e.groups[p]; g != nil {
		if g.serving == serving {
			return
		}
		g.serving = serving
	}
	if serving {
		e.views[p].epoch.Add(1) // first: a Propose that sees serving sees this epoch
	}
	e.views[p].serving.Store(serving)
	e.notifyViews()
	if m := e.cfg.metrics; m != nil {
		change := "stop"
		if serving {
			change = "start"
		}
		m.servingChanges.WithLabelValues(change).Inc()
	}
	if e.cfg.OnServing != nil {
		e.cfg.OnServing(p, serving)
	}
}

// PartitionStatus describes one partition's group on this node.
type PartitionStatus struct {
	Partition int      `json:"partition"`
	Member    bool     `json:"member"`
	Role      string   `json:"role,omitempty"`
	Leader    uint64   `json:"leader,omitempty"`
	Serving   bool     `json:"serving"`
	Term      uint64   `json:"term,omitempty"`
	Commit    uint64   `json:"commit,omitempty"`
	Applied   uint64   `json:"applied,omitempty"`
	Voters    []uint64 `json:"voters,omitempty"`
	Learners  []uint64 `json:"learners,omitempty"`
	// Lag is, on the leader, how far each peer's log is behind its own.
	Lag map[uint64]uint64 `json:"lag,omitempty"`
	// Peers is, on the leader, Raft's replication state of each peer.
	Peers map[uint64]string `json:"peers,omitempty"`
}

// Status reports every partition's group as this node sees it.
func (e *Engine) Status(ctx context.Context) ([]PartitionStatus, error) {
	out := make([]PartitionStatus, len(e.groups))
	err := e.call(ctx, func() error {
		for p, g := range e.groups {
			ps := PartitionStatus{Partition: p}
			if g != nil {
				st := g.rn.Status()
				ps.Member = true
				ps.Role = st.RaftState.String()
				ps.Leader = st.Lead
				ps.Serving = g.serving
				ps.Term = st.GetTerm()
				ps.Commit = st.GetCommit()
				ps.Applied = g.st.applied
				ps.Voters = slices.Sorted(slices.Values(g.st.conf.Voters))
				ps.Learners = slices.Sorted(slices.Values(g.st.conf.Learners))
				if st.RaftState == raft.StateLeader {
					ps.Lag = map[uint64]uint64{}
					ps.Peers = map[uint64]string{}
					for id, pr := range st.Progress {
						ps.Lag[id] = g.st.last - min(pr.Match, g.st.last)
						ps.Peers[id] = pr.String()
					}
				}
			}
			out[p] = ps
		}
		return nil
	})
	return out, err
}

// raftLogger sends etcd raft's log lines to slog; its routine chatter
// (elections, appends) goes to debug.
type raftLogger struct{ l *slog.Logger }

func (r raftLogger) Debug(v ...any)                 { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Debugf(format string, v ...any) { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Info(v ...any)                  { r.l.Debug(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Debug(fmt.Sprintf(format, v...)) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn(fmt.Sprintf(format, v...))
}
func (r raftLogger) Error(v ...any)                 { r.l.Error(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error(fmt.Sprintf(format, v...)) }
func (r raftLogger) Fatal(v ...any)                 { r.Panic(v...) }
func (r raftLogger) Fatalf(format string, v ...any) { r.Panicf(format, v...) }
func (r raftLogger) Panic(v ...any) {
	msg := fmt.Sprint(v...)
	r.l.Error(msg, "fatal", true)
	panic(msg)
}
func (r raftLogger) Panicf(format string, v ...any) { r.Panic(fmt.Sprintf(format, v...)) }
