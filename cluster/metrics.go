package cluster

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the cluster's Prometheus collectors. A nil *metrics (no
// registerer configured) records nothing.
type metrics struct {
	readyBatches   prometheus.Counter
	readySeconds   prometheus.Histogram
	proposals      *prometheus.CounterVec
	servingChanges *prometheus.CounterVec
	sendFailures   prometheus.Counter
	messagesSent   prometheus.Counter
	forwards       *prometheus.CounterVec
	snapshots      *prometheus.CounterVec
	edgeMessages   prometheus.Counter
	edgeFrames     prometheus.Counter
	edgeSessions   *prometheus.CounterVec
	edgeMoves      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, n *Node) (*metrics, error) {
	m := &metrics{
		readyBatches: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_raft_ready_batches_total",
			Help: "fsync'd Pebble batches holding the Raft Ready of every partition with work."}),
		readySeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "holocron_raft_ready_seconds",
			Help: "Time to persist and apply one shared Ready batch, fsync included.", Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		proposals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "holocron_raft_proposals_total",
			Help: "Object event batches proposed, by outcome (committed, not_owner, failed)."}, []string{"outcome"}),
		servingChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "holocron_cluster_serving_changes_total",
			Help: "Times this node started or stopped serving a partition."}, []string{"change"}),
		sendFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_raft_send_failures_total",
			Help: "Batches of Raft messages that could not be delivered to a peer."}),
		messagesSent: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_raft_messages_sent_total",
			Help: "Raft messages handed to the transport."}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "holocron_raft_snapshots_total",
			Help: "Partition snapshots built for lagging replicas (sent) and applied here (installed)."}, []string{"event"}),
		forwards: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "holocron_cluster_forwarded_requests_total",
			Help: "Client requests for objects led elsewhere, by outcome (proxied; rerouted when the leader turned one away unserved; unavailable when no leader appeared within the wait)."}, []string{"outcome"}),
		edgeMessages: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_edge_frame_messages_sent_total",
			Help: "Frame messages this node, as an owner, sent to edge nodes: one per frame and edge, however many of the edge's sockets it is for."}),
		edgeFrames: prometheus.NewCounter(prometheus.CounterOpts{Name: "holocron_edge_socket_frames_sent_total",
			Help: "Socket frames those messages carried (a broadcast to 100 sockets of one edge: 1 message, 100 frames)."}),
		edgeSessions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "holocron_edge_sessions_total",
			Help: "Edge sessions opened, by this node's side of them (edge, owner)."}, []string{"side"}),
		edgeMoves: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "holocron_edge_socket_moves_total",
			Help: "Sockets held here whose object's owner changed: moves started, and how they ended (attached to the new owner; closed with 1012 for the client to reconnect)."}, []string{"outcome"}),
	}
	members := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "holocron_cluster_members_alive",
		Help: "Members gossip currently believes alive (this node included)."}, func() float64 {
		alive := 0
		for _, mem := range n.members.Members() {
			if mem.State == StateAlive {
				alive++
			}
		}
		return float64(alive)
	})
	led := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "holocron_cluster_partitions_serving",
		Help: "Partitions this node leads and serves."}, func() float64 {
		count := 0
		for p := range n.cfg.Partitions {
			if n.engine.Serving(p) {
				count++
			}
		}
		return float64(count)
	})
	replicas := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "holocron_cluster_partition_replicas",
		Help: "Partitions whose Raft group this node is a member of."}, func() float64 {
		count := 0
		for p := range n.engine.views {
			if n.engine.views[p].member.Load() {
				count++
			}
		}
		return float64(count)
	})
	for _, c := range []prometheus.Collector{m.readyBatches, m.readySeconds, m.proposals, m.servingChanges,
		m.sendFailures, m.messagesSent, m.forwards, m.snapshots, m.edgeMessages, m.edgeFrames, m.edgeSessions, m.edgeMoves, members, led, replicas} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
