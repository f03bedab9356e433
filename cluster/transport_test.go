package cluster

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// inbox collects what a Transport delivers.
type inbox struct {
	// hold, when set, is called with each delivery before it is kept (and
	// before the sender hears it arrived): a test slows a receiver with it.
	hold func([]Envelope)
	mu   sync.Mutex
	envs []Envelope
}

func (in *inbox) deliver(envs []Envelope) {
	if in.hold != nil {
		in.hold(envs)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.envs = append(in.envs, envs...)
}

func (in *inbox) get() []Envelope {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.envs)
}

// unreachables collects what a Transport reports as unreachable.
type unreachables struct {
	mu    sync.Mutex
	parts map[uint64]map[int]int // peer -> partition -> times reported
}

func (u *unreachables) report(to uint64, parts []int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.parts == nil {
		u.parts = map[uint64]map[int]int{}
	}
	if u.parts[to] == nil {
		u.parts[to] = map[int]int{}
	}
	for _, p := range parts {
		u.parts[to][p]++
	}
}

func (u *unreachables) of(to uint64) map[int]int {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := map[int]int{}
	for p, n := range u.parts[to] {
		out[p] = n
	}
	return out
}

// addrBook maps Raft IDs to HTTP addresses for Transport.resolve.
type addrBook struct {
	mu    sync.Mutex
	addrs map[uint64]string
}

func (b *addrBook) set(id uint64, addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.addrs == nil {
		b.addrs = map[uint64]string{}
	}
	b.addrs[id] = addr
}

func (b *addrBook) resolve(id uint64) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.addrs[id]
	return a, ok
}

type testPeer struct {
	id     uint64
	tr     *Transport
	srv    *http.Server
	in     *inbox
	un     *unreachables
	closed sync.Once
}

// close closes the peer's Transport once (see TestTransportCloseTwice).
func (p *testPeer) close() { p.closed.Do(p.tr.Close) }

func newTestPeer(t *testing.T, id uint64, book *addrBook) *testPeer {
	t.Helper()
	p := &testPeer{id: id, in: &inbox{}, un: &unreachables{}}
	// The insecure peer link: the same HTTP/2 link without certificates.
	link := NewPeerLink(nil)
	p.tr = NewTransport(id, book.resolve, link, p.in.deliver, p.un.report, testLogger())
	mux := http.NewServeMux()
	mux.Handle(RaftPath, p.tr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.srv = link.Server(mux, testLogger())
	go link.Serve(p.srv, ln)
	book.set(id, ln.Addr().String())
	t.Cleanup(func() {
		p.close()
		p.srv.Close()
	})
	return p
}

// raftMsg returns a message with every kind of field set, distinct for i.
func raftMsg(from, to uint64, i int) *pb.Message {
	m := &pb.Message{
		Type:       pb.MessageType(i % 24).Enum(),
		From:       proto.Uint64(from),
		To:         proto.Uint64(to),
		Term:       proto.Uint64(uint64(i)),
		LogTerm:    proto.Uint64(uint64(i / 2)),
		Index:      proto.Uint64(uint64(i * 10)),
		Commit:     proto.Uint64(uint64(i * 5)),
		Reject:     proto.Bool(i%3 == 0),
		RejectHint: proto.Uint64(uint64(i % 7)),
		Context:    fmt.Appendf(nil, "ctx-%d", i),
	}
	for j := range i % 4 {
		m.Entries = append(m.Entries, &pb.Entry{
			Index: proto.Uint64(uint64(i*10 + j + 1)),
			Term:  proto.Uint64(uint64(i)),
			Type:  pb.EntryType_EntryNormal.Enum(),
			Data:  bytes.Repeat([]byte{byte(i), byte(j)}, i*7+j),
		})
	}
	return m
}

func checkSame(t *testing.T, what string, got, want []Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages arrived, want %d", what, len(got), len(want))
	}
	for i := range want {
		if got[i].Partition != want[i].Partition || !proto.Equal(got[i].Msg, want[i].Msg) {
			t.Fatalf("%s: message %d is partition %d %v, want partition %d %v", what, i, got[i].Partition, got[i].Msg, want[i].Partition, want[i].Msg)
		}
	}
}

func TestTransportDeliversInOrder(t *testing.T) {
	book := &addrBook{}
	a, b := newTestPeer(t, 1, book), newTestPeer(t, 2, book)

	// Both directions at once, in many Send calls of several partitions
	// each; one large message among them.
	var wantAtA, wantAtB []Envelope
	const rounds, perRound = 50, 7
	var wg sync.WaitGroup
	send := func(from, to *testPeer, want *[]Envelope) {
		defer wg.Done()
		for r := range rounds {
			var batch []Envelope
			for k := range perRound {
				i := r*perRound + k
				env := Envelope{Partition: (i * 13) % 300, Msg: raftMsg(from.id, to.id, i)}
				if i == 100 {
					env.Msg.Entries = append(env.Msg.Entries, &pb.Entry{Data: bytes.Repeat([]byte("x"), 1<<20)})
				}
				batch = append(batch, env)
			}
			*want = append(*want, batch...)
			from.tr.Send(batch)
		}
	}
	wg.Add(2)
	go send(a, b, &wantAtB)
	go send(b, a, &wantAtA)
	wg.Wait()

	for _, p := range []*testPeer{a, b} {
		waitFor(t, convergeTimeout, fmt.Sprintf("node %d to receive its messages", p.id), func() (bool, string) {
			n := len(p.in.get())
			return n >= rounds*perRound, fmt.Sprintf("%d of %d arrived", n, rounds*perRound)
		})
	}
	// In order per kind: snapshots travel apart from everything else.
	for _, snaps := range []bool{false, true} {
		checkSame(t, fmt.Sprintf("at node 2 (snapshots: %v)", snaps), ofKind(b.in.get(), snaps), ofKind(wantAtB, snaps))
		checkSame(t, fmt.Sprintf("at node 1 (snapshots: %v)", snaps), ofKind(a.in.get(), snaps), ofKind(wantAtA, snaps))
	}
	if u := a.un.of(2); len(u) != 0 {
		t.Errorf("node 1 reported node 2 unreachable for partitions %v", u)
	}
}

// ofKind keeps the snapshots of envs, or everything else.
func ofKind(envs []Envelope, snapshots bool) []Envelope {
	var out []Envelope
	for _, env := range envs {
		if (env.Msg.GetType() == pb.MessageType_MsgSnap) == snapshots {
			out = append(out, env)
		}
	}
	return out
}

// A snapshot on its way (megabytes, a slow receiver) holds back no other
// message to that peer: heartbeats sent after it arrive before it, and
// its sender hears it was delivered once it was.
func TestTransportSnapshotDoesNotHoldBackHeartbeats(t *testing.T) {
	book := &addrBook{}
	a, b := newTestPeer(t, 1, book), newTestPeer(t, 2, book)
	release := make(chan struct{})
	b.in.hold = func(envs []Envelope) {
		if len(snapshotPartitions(envs)) > 0 {
			<-release
		}
	}
	sent := make(chan []int, 1)
	a.tr.snapshotSent = func(to uint64, parts []int) { sent <- parts }
	snap := &pb.Message{Type: pb.MessageType_MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Snapshot: &pb.Snapshot{Data: bytes.Repeat([]byte("s"), 4<<20), Metadata: &pb.SnapshotMetadata{Index: proto.Uint64(700)}}}
	a.tr.Send([]Envelope{{Partition: 5, Msg: snap}})
	for i := range 3 {
		a.tr.Send([]Envelope{{Partition: 9, Msg: &pb.Message{Type: pb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Term: proto.Uint64(uint64(i + 1))}}})
	}
	waitFor(t, convergeTimeout, "the heartbeats to arrive while the snapshot is held", func() (bool, string) {
		n := len(b.in.get())
		return n == 3, fmt.Sprintf("%d of 3 arrived", n)
	})
	select {
	case parts := <-sent:
		t.Fatalf("snapshot of partitions %v reported delivered while the receiver still holds it", parts)
	default:
	}
	close(release)
	select {
	case parts := <-sent:
		if !slices.Equal(parts, []int{5}) {
			t.Fatalf("snapshot reported delivered for partitions %v, want [5]", parts)
		}
	case <-time.After(convergeTimeout):
		t.Fatal("the snapshot's delivery was never reported")
	}
	if got := ofKind(b.in.get(), true); len(got) != 1 || !proto.Equal(got[0].Msg, snap) {
		t.Fatalf("%d snapshots arrived, want the one sent", len(got))
	}
}

// closedAddr returns a loopback address nobody listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestTransportUnreachable(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	tests := []struct {
		name string
		addr string // "" means the peer has no address
	}{
		{"nobody listening", closedAddr(t)},
		{"no address", ""},
		{"peer answers an error", failing.Listener.Addr().String()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			book := &addrBook{}
			a := newTestPeer(t, 1, book)
			const down = 9
			if tt.addr != "" {
				book.set(down, tt.addr)
			}
			parts := []int{0, 5, 7, 300}
			var envs []Envelope
			for i, p := range parts {
				// Two messages of each partition, to check the report
				// names each partition once per failed request.
				envs = append(envs, Envelope{Partition: p, Msg: raftMsg(1, down, i)}, Envelope{Partition: p, Msg: raftMsg(1, down, i+10)})
			}
			a.tr.Send(envs)
			waitFor(t, convergeTimeout, "unreachable report", func() (bool, string) {
				got := a.un.of(down)
				return len(got) == len(parts), fmt.Sprintf("reported partitions %v", got)
			})
			got := a.un.of(down)
			for _, p := range parts {
				if got[p] != 1 {
					t.Errorf("partition %d reported %d times, want once: %v", p, got[p], got)
				}
			}
			if u := a.un.of(2); len(u) != 0 {
				t.Errorf("an unrelated peer was reported: %v", u)
			}
		})
	}
}

// A peer that goes down and comes back: messages fail while it is down
// and flow again afterwards, on the same Transport.
func TestTransportPeerRecovers(t *testing.T) {
	book := &addrBook{}
	a, b := newTestPeer(t, 1, book), newTestPeer(t, 2, book)
	good, _ := book.resolve(2)
	book.set(2, closedAddr(t))
	a.tr.Send([]Envelope{{Partition: 4, Msg: raftMsg(1, 2, 1)}})
	waitFor(t, convergeTimeout, "unreachable report", func() (bool, string) {
		got := a.un.of(2)
		return got[4] > 0, fmt.Sprintf("reported %v", got)
	})
	book.set(2, good)
	want := []Envelope{{Partition: 6, Msg: raftMsg(1, 2, 2)}}
	a.tr.Send(want)
	waitFor(t, convergeTimeout, "delivery after recovery", func() (bool, string) {
		return len(b.in.get()) > 0, "nothing arrived"
	})
	checkSame(t, "after recovery", b.in.get(), want)
}

func encodeEnvelopes(envs ...Envelope) []byte {
	var buf []byte
	for _, env := range envs {
		buf = appendEnvelope(buf, env)
	}
	return buf
}

func TestTransportServeHTTP(t *testing.T) {
	valid := encodeEnvelopes(Envelope{Partition: 3, Msg: raftMsg(1, 2, 5)}, Envelope{Partition: 70000, Msg: raftMsg(1, 2, 6)})
	tooLong := binary.AppendUvarint([]byte{1}, maxRaftBody+1)
	fromN1 := func(i int) *pb.Message { return raftMsg(RaftIDFor("n1"), 2, i) }
	notPeer := "(not the peer link)"
	tests := []struct {
		name      string
		method    string
		body      []byte
		status    int
		delivered int
		// peer is the proven name of the sender ("": insecure link).
		peer string
	}{
		{"valid", http.MethodPost, valid, http.StatusNoContent, 2, ""},
		{"not over the peer link", http.MethodPost, valid, http.StatusForbidden, 0, notPeer},
		{"from the node the certificate names", http.MethodPost, encodeEnvelopes(Envelope{Partition: 3, Msg: fromN1(5)}), http.StatusNoContent, 1, "n1"},
		{"one node speaking for another", http.MethodPost, encodeEnvelopes(Envelope{Partition: 3, Msg: fromN1(5)}), http.StatusForbidden, 0, "n2"},
		{"addressed to another node", http.MethodPost, encodeEnvelopes(Envelope{Partition: 3, Msg: raftMsg(1, 7, 5)}), http.StatusBadRequest, 0, ""},
		{"empty", http.MethodPost, nil, http.StatusNoContent, 0, ""},
		{"GET", http.MethodGet, valid, http.StatusMethodNotAllowed, 0, ""},
		{"truncated partition", http.MethodPost, []byte{0x80}, http.StatusBadRequest, 0, ""},
		{"missing length", http.MethodPost, []byte{0x01}, http.StatusBadRequest, 0, ""},
		{"truncated length", http.MethodPost, []byte{0x01, 0x80}, http.StatusBadRequest, 0, ""},
		{"length beyond body", http.MethodPost, []byte{0x01, 0x05, 0x08}, http.StatusBadRequest, 0, ""},
		{"length too large", http.MethodPost, tooLong, http.StatusBadRequest, 0, ""},
		{"not a protobuf", http.MethodPost, []byte{0x01, 0x02, 0xff, 0xff}, http.StatusBadRequest, 0, ""},
		{"text", http.MethodPost, []byte("hello, world"), http.StatusBadRequest, 0, ""},
		// All or nothing: a good message before garbage is not delivered.
		{"valid then garbage", http.MethodPost, append(slices.Clone(valid), 0x80), http.StatusBadRequest, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &inbox{}
			tr := NewTransport(2, (&addrBook{}).resolve, NewPeerLink(nil), in.deliver, (&unreachables{}).report, testLogger())
			defer tr.Close()
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(tt.method, RaftPath, bytes.NewReader(tt.body))
			if tt.peer != notPeer {
				req = req.WithContext(context.WithValue(req.Context(), peerNameKey{}, tt.peer))
			}
			tr.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Errorf("status %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tt.status)
			}
			got := in.get()
			if len(got) != tt.delivered {
				t.Fatalf("delivered %d messages, want %d", len(got), tt.delivered)
			}
			if tt.delivered > 0 && tt.peer == "" {
				checkSame(t, "delivered", got, []Envelope{{Partition: 3, Msg: raftMsg(1, 2, 5)}, {Partition: 70000, Msg: raftMsg(1, 2, 6)}})
			}
		})
	}
}

func TestTransportClose(t *testing.T) {
	book := &addrBook{}
	a, b := newTestPeer(t, 1, book), newTestPeer(t, 2, book)
	book.set(3, closedAddr(t))
	// Senders exist for a live peer and a dead one.
	a.tr.Send([]Envelope{{Partition: 1, Msg: raftMsg(1, 2, 1)}, {Partition: 1, Msg: raftMsg(1, 3, 1)}})
	waitFor(t, convergeTimeout, "first delivery", func() (bool, string) {
		return len(b.in.get()) == 1, fmt.Sprintf("%d delivered", len(b.in.get()))
	})

	closed := make(chan struct{})
	go func() {
		a.close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(convergeTimeout):
		t.Fatal("Close did not return")
	}

	// Send after Close must neither panic nor deliver.
	a.tr.Send([]Envelope{{Partition: 1, Msg: raftMsg(1, 2, 2)}, {Partition: 2, Msg: raftMsg(1, 4, 2)}})
	// The receiving side still works, and nothing more came from a: send
	// a marker from a third transport and check it is the only arrival.
	c := newTestPeer(t, 5, book)
	c.tr.Send([]Envelope{{Partition: 9, Msg: raftMsg(5, 2, 3)}})
	waitFor(t, convergeTimeout, "marker delivery", func() (bool, string) {
		return len(b.in.get()) >= 2, fmt.Sprintf("%d delivered", len(b.in.get()))
	})
	checkSame(t, "after Close", b.in.get(), []Envelope{{Partition: 1, Msg: raftMsg(1, 2, 1)}, {Partition: 9, Msg: raftMsg(5, 2, 3)}})
}

func TestTransportCloseTwice(t *testing.T) {
	book := &addrBook{}
	a := newTestPeer(t, 1, book)
	book.set(3, closedAddr(t))
	a.tr.Send([]Envelope{{Partition: 1, Msg: raftMsg(1, 3, 1)}})
	a.close()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("second Close panics: %v", r)
		}
	}()
	a.tr.Close()
}
