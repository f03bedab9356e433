package cluster

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"net/http"
	"reflect"
	"testing"
)

func TestEdgeMessagesRoundTrip(t *testing.T) {
	tests := []edgeMsg{
		{kind: edgeAttach, sid: 7, text: "/objects/Room/r/ws?token=x", header: http.Header{"Authorization": {"Bearer t"}, "Origin": {"https://a"}}},
		{kind: edgeIn, sid: 1 << 40, data: []byte("hello")},
		{kind: edgeInBinary, sid: 2, data: []byte{0, 1, 2}},
		{kind: edgeTooLarge, sid: 3},
		{kind: edgeEnded, sid: 4, code: 1001, text: "going away"},
		{kind: edgeAccepted, sid: 5},
		{kind: edgeRefused, sid: 6, code: 403, header: http.Header{"Content-Type": {"application/json"}}, data: []byte(`{"error":{}}`)},
		{kind: edgeOut, sids: []uint64{1, 2, 3}, data: []byte("frame")},
		{kind: edgeClose, sid: 9, code: 1012, text: "moved"},
	}
	for _, m := range tests {
		b := appendEdgeMsg(nil, &m)
		got, err := readEdgeMsg(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			t.Fatalf("kind %d: %v", m.kind, err)
		}
		if m.header == nil && got.header != nil && len(got.header) == 0 {
			got.header = nil
		}
		if len(m.data) == 0 && len(got.data) == 0 {
			got.data = m.data
		}
		if !reflect.DeepEqual(*got, m) {
			t.Errorf("kind %d: decoded %+v, want %+v", m.kind, *got, m)
		}
	}
}

// A peer's bytes are bounded and checked: what does not decode, or claims
// more than its length holds, is an error, never a panic or a huge
// allocation.
func TestEdgeMessagesRefuseMalformed(t *testing.T) {
	frame := func(body ...byte) []byte { return append(binary.AppendUvarint(nil, uint64(len(body))), body...) }
	tests := []struct {
		name  string
		input []byte
	}{
		{"empty message", frame()},
		{"unknown kind", frame(99, 1)},
		{"length beyond the limit", binary.AppendUvarint(nil, maxEdgeMessage+1)},
		{"data longer than the message", frame(byte(edgeIn), 1, 50, 'x')},
		{"trailing bytes", frame(byte(edgeAccepted), 1, 0)},
		{"out for no socket", frame(byte(edgeOut), 0, 0)},
		{"out claiming more sockets than bytes", frame(byte(edgeOut), 0xff, 0xff, 0x03, 1)},
		{"refusal with no status", frame(byte(edgeRefused), 1, 0, 0, 0)},
		{"close code out of range", frame(byte(edgeClose), 1, 0x90, 0x4e, 0)},
		{"too many headers", frame(byte(edgeAttach), 1, 0, 200)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readEdgeMsg(bufio.NewReader(bytes.NewReader(tt.input)))
			if !errors.Is(err, errEdgeMalformed) {
				t.Fatalf("err %v, want errEdgeMalformed", err)
			}
		})
	}
}

func FuzzEdgeMessages(f *testing.F) {
	f.Add(appendEdgeMsg(nil, &edgeMsg{kind: edgeOut, sids: []uint64{1, 2}, data: []byte("x")}))
	f.Add(appendEdgeMsg(nil, &edgeMsg{kind: edgeAttach, sid: 1, text: "/ws", header: http.Header{"A": {"b"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := readEdgeMsg(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		// What decodes encodes to a message that decodes the same.
		again, err := readEdgeMsg(bufio.NewReader(bytes.NewReader(appendEdgeMsg(nil, m))))
		if err != nil {
			t.Fatalf("re-encoded %+v does not decode: %v", m, err)
		}
		if again.kind != m.kind || again.sid != m.sid || !bytes.Equal(again.data, m.data) || len(again.sids) != len(m.sids) {
			t.Fatalf("re-encoded %+v decodes as %+v", m, again)
		}
	})
}

// The owner's queue sends the frames of one broadcast (the same data, to
// consecutive sockets) as one message naming the sockets, and anything
// else in order, as it was queued.
func TestEdgeQueueSendsABroadcastOnce(t *testing.T) {
	q := newEdgeQueue(1 << 20)
	a, b := []byte("broadcast"), []byte("broadcast") // equal, not the same
	var counted []int
	q.sentOut = func(n int) { counted = append(counted, n) }
	for _, m := range []edgeMsg{
		{kind: edgeOut, sids: []uint64{1}, data: a},
		{kind: edgeOut, sids: []uint64{2, 3}, data: a},
		{kind: edgeOut, sids: []uint64{1}, data: b},
		{kind: edgeClose, sid: 2, code: 1000},
		{kind: edgeOut, sids: []uint64{3}, data: b},
	} {
		if !q.push(m, false) {
			t.Fatal("push refused")
		}
	}
	var out bytes.Buffer
	w := &closingWriter{w: &out, q: q}
	if err := q.run(w, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(&out)
	var got []edgeMsg
	for {
		m, err := readEdgeMsg(r)
		if err != nil {
			break
		}
		got = append(got, *m)
	}
	want := []edgeMsg{
		{kind: edgeOut, sids: []uint64{1, 2, 3}, data: a},
		{kind: edgeOut, sids: []uint64{1}, data: b},
		{kind: edgeClose, sid: 2, code: 1000},
		{kind: edgeOut, sids: []uint64{3}, data: b},
	}
	if len(got) != len(want) {
		t.Fatalf("sent %d messages %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].kind != want[i].kind || got[i].sid != want[i].sid || !reflect.DeepEqual(got[i].sids, want[i].sids) || !bytes.Equal(got[i].data, want[i].data) {
			t.Errorf("message %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if !reflect.DeepEqual(counted, []int{3, 1, 1}) {
		t.Errorf("counted %v, want the out messages' socket counts [3 1 1]", counted)
	}
}

// closingWriter closes the queue after its first write, so that run
// returns once it has written what was queued.
type closingWriter struct {
	w *bytes.Buffer
	q *edgeQueue
}

func (c *closingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.q.close()
	return n, err
}

// An owner's queue that its edge does not drain refuses more beyond its
// limit (the session is then cut); an edge's waits for room instead.
func TestEdgeQueueLimit(t *testing.T) {
	q := newEdgeQueue(100)
	if !q.push(edgeMsg{kind: edgeOut, sids: []uint64{1}, data: make([]byte, 200)}, false) {
		t.Fatal("the first message was refused")
	}
	if q.push(edgeMsg{kind: edgeOut, sids: []uint64{1}, data: []byte("x")}, false) {
		t.Fatal("a message beyond the limit was queued")
	}
	pushed := make(chan bool)
	go func() { pushed <- q.push(edgeMsg{kind: edgeIn, sid: 1, data: []byte("y")}, true) }()
	var out bytes.Buffer
	go q.run(&out, func() error { return nil })
	if !<-pushed {
		t.Fatal("a waiting push failed once the queue drained")
	}
	q.close()
	if q.push(edgeMsg{kind: edgeIn, sid: 1}, true) {
		t.Fatal("a push to a closed queue succeeded")
	}
}
