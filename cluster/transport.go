package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// RaftPath is the HTTP path on which nodes receive Raft messages.
const RaftPath = "/internal/raft"

// maxQueuedPerPeer bounds the messages waiting for one peer; beyond it the
// oldest are dropped (Raft retransmits what matters).
const maxQueuedPerPeer = 16384

// Transport carries Raft messages of every partition between node pairs
// over the peer link: one sender goroutine per peer drains everything
// queued for it into one request, so the heartbeats of all partitions
// travel together. Snapshots, which can be megabytes, go in requests of
// their own from a second sender per peer, so that heartbeats and appends
// never wait behind one (the peer would call an election meanwhile), as
// etcd's rafthttp and CockroachDB's RaftTransport stream them apart.
type Transport struct {
	self    uint64
	resolve func(raftID uint64) (peerAddr string, ok bool)
	link    *PeerLink
	deliver func([]Envelope)
	// unreachable is told which partitions' messages to a peer failed.
	unreachable func(to uint64, parts []int)
	client      *http.Client
	log         *slog.Logger
	// onFailure, when set, counts failed sends.
	onFailure func()
	// snapshotSent, when set, is told which partitions' snapshots a batch
	// to a peer delivered (Raft waits to hear it; see
	// Engine.ReportSnapshotSent).
	snapshotSent func(to uint64, parts []int)

	mu     sync.Mutex
	peers  map[peerKey]*peerQueue
	closed bool
	wg     sync.WaitGroup

	// readers (of *bufio.Reader) serve incoming batches in turn: a batch
	// arrives per peer per Raft tick and more under load.
	readers sync.Pool
}

// peerKey names one sender: a peer, and whether it carries snapshots.
type peerKey struct {
	to        uint64
	snapshots bool
}

type peerQueue struct {
	mu     sync.Mutex
	queue  []Envelope
	wake   chan struct{}
	closed bool
}

// NewTransport returns a transport over link; resolve maps a Raft ID to
// the peer's peer-listener address, deliver receives incoming messages.
func NewTransport(self uint64, resolve func(uint64) (string, bool), link *PeerLink, deliver func([]Envelope), unreachable func(uint64, []int), log *slog.Logger) *Transport {
	return &Transport{
		self:        self,
		resolve:     resolve,
		link:        link,
		deliver:     deliver,
		unreachable: unreachable,
		log:         log.With("component", "raft-transport"),
		peers:       map[peerKey]*peerQueue{},
		client:      link.Client(0), // each request has its own deadline (postTimeout)
	}
}

// Send queues messages for their peers.
func (t *Transport) Send(envs []Envelope) {
	byPeer := map[peerKey][]Envelope{}
	for _, env := range envs {
		k := peerKey{to: env.Msg.GetTo(), snapshots: env.Msg.GetType() == pb.MessageType_MsgSnap}
		byPeer[k] = append(byPeer[k], env)
	}
	for k, list := range byPeer {
		if q := t.peer(k); q != nil {
			q.push(list)
		}
	}
}

func (t *Transport) peer(k peerKey) *peerQueue {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	q := t.peers[k]
	if q == nil {
		q = &peerQueue{wake: make(chan struct{}, 1)}
		t.peers[k] = q
		t.wg.Add(1)
		go t.sendLoop(k.to, q)
	}
	return q
}

func (q *peerQueue) push(envs []Envelope) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.queue = append(q.queue, envs...)
	if over := len(q.queue) - maxQueuedPerPeer; over > 0 {
		q.queue = append(q.queue[:0:0], q.queue[over:]...)
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (t *Transport) sendLoop(to uint64, q *peerQueue) {
	defer t.wg.Done()
	var buf []byte
	for range q.wake {
		q.mu.Lock()
		batch := q.queue
		q.queue = nil
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return
		}
		if len(batch) == 0 {
			continue
		}
		buf = buf[:0]
		for _, env := range batch {
			buf = appendEnvelope(buf, env)
		}
		err := t.post(to, buf)
		if err == nil && t.snapshotSent != nil {
			if parts := snapshotPartitions(batch); len(parts) > 0 {
				t.snapshotSent(to, parts)
			}
		}
		if err != nil {
			t.log.Debug("raft send failed", "to", to, "messages", len(batch), "err", err)
			if t.onFailure != nil {
				t.onFailure()
			}
			parts := map[int]bool{}
			var list []int
			for _, env := range batch {
				if !parts[env.Partition] {
					parts[env.Partition] = true
					list = append(list, env.Partition)
				}
			}
			t.unreachable(to, list)
		}
	}
}

// snapshotPartitions lists the partitions of the snapshots in batch.
func snapshotPartitions(batch []Envelope) []int {
	var parts []int
	for _, env := range batch {
		if env.Msg.GetType() == pb.MessageType_MsgSnap && !slices.Contains(parts, env.Partition) {
			parts = append(parts, env.Partition)
		}
	}
	return parts
}

func (t *Transport) post(to uint64, body []byte) error {
	addr, ok := t.resolve(to)
	if !ok {
		return fmt.Errorf("no address for node %x", to)
	}
	ctx, cancel := context.WithTimeout(context.Background(), postTimeout(len(body)))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.link.URL(addr, RaftPath), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("peer answered %s", resp.Status)
	}
	return nil
}

// postTimeout bounds one request of size bytes: a batch of heartbeats
// fails within seconds when a peer stops answering, while a batch carrying
// a large snapshot is given the time a slow link (1 MiB/s) needs for it
// (a fixed bound failed every snapshot above it, forever).
func postTimeout(size int) time.Duration {
	return 5*time.Second + time.Duration(size>>20)*time.Second
}

func appendEnvelope(buf []byte, env Envelope) []byte {
	buf = binary.AppendUvarint(buf, uint64(env.Partition))
	buf = binary.AppendUvarint(buf, uint64(proto.Size(env.Msg)))
	out, err := proto.MarshalOptions{}.MarshalAppend(buf, env.Msg)
	if err != nil {
		// A message raft produced always marshals.
		panic(fmt.Sprintf("marshal raft message: %v", err))
	}
	return out
}

// maxRaftBody bounds one request of Raft messages.
const maxRaftBody = 256 << 20

// ServeHTTP receives a batch of messages from a peer over the peer link.
// With mutual TLS every message must be from the node whose certificate
// sent it: one node of the cluster cannot speak for another.
func (t *Transport) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	peer, ok := PeerName(r)
	if !ok {
		http.Error(w, "raft messages come over the peer link only", http.StatusForbidden)
		return
	}
	var from uint64 // 0: insecure mode, nobody proven
	if peer != "" {
		from = RaftIDFor(peer)
	}
	br, _ := t.readers.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReader(nil)
	}
	br.Reset(io.LimitReader(r.Body, maxRaftBody))
	defer func() {
		br.Reset(nil)
		t.readers.Put(br)
	}()
	var envs []Envelope
	var b []byte // one message's bytes; Unmarshal copies what it keeps
	for {
		part, err := binary.ReadUvarint(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			http.Error(w, "bad raft batch", http.StatusBadRequest)
			return
		}
		n, err := binary.ReadUvarint(br)
		if err != nil || n > maxRaftBody {
			http.Error(w, "bad raft batch", http.StatusBadRequest)
			return
		}
		b = slices.Grow(b[:0], int(n))[:n]
		if _, err := io.ReadFull(br, b); err != nil {
			http.Error(w, "bad raft batch", http.StatusBadRequest)
			return
		}
		m := &pb.Message{}
		if err := proto.Unmarshal(b, m); err != nil {
			http.Error(w, "bad raft message", http.StatusBadRequest)
			return
		}
		if from != 0 && m.GetFrom() != from {
			http.Error(w, fmt.Sprintf("raft message from %x sent by node %q", m.GetFrom(), peer), http.StatusForbidden)
			return
		}
		if m.GetTo() != t.self {
			http.Error(w, fmt.Sprintf("raft message for %x delivered to %x", m.GetTo(), t.self), http.StatusBadRequest)
			return
		}
		envs = append(envs, Envelope{Partition: int(part), Msg: m})
	}
	if len(envs) > 0 {
		t.deliver(envs)
	}
	w.WriteHeader(http.StatusNoContent)
}

// Close stops the sender goroutines.
func (t *Transport) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	peers := t.peers
	t.mu.Unlock()
	for _, q := range peers {
		q.mu.Lock()
		q.closed = true
		close(q.wake)
		q.mu.Unlock()
	}
	t.wg.Wait()
	t.client.CloseIdleConnections()
}
