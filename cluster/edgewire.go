package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/holocron-run/holocron/internal/wire"
	"github.com/holocron-run/holocron/runtime"
)

// The edge session's wire: each message is its length (uvarint) and then
// its kind and fields; integers are uvarints, strings and byte strings a
// length and the bytes.

// edgeKind is what an edge session message says.
type edgeKind byte

const (
	// From the edge to the owner.
	edgeAttach   edgeKind = iota + 1 // sid, text (request URI), header, [reattach: tags, attachment, cursors]: a client's upgrade request, or an open socket for its object's new owner
	edgeIn                           // sid, data: a text message from the client
	edgeInBinary                     // sid, data: a binary message from the client
	edgeTooLarge                     // sid: a message the edge refused for its size
	edgeEnded                        // sid, code, text: the client's connection ended

	// From the owner to the edge.
	edgeAccepted // sid: the object accepted the socket; upgrade the client
	edgeRefused  // sid, code (status), header, data (body): the object's answer instead
	edgeOut      // sids, data, [cursor]: a text frame for each of the sockets
	edgeClose    // sid, code, text: close the socket
	edgeRecord   // sid, tags, attachment: the socket's record, to keep for a new owner
)

// edgeMsg is one message of an edge session.
type edgeMsg struct {
	kind   edgeKind
	sid    uint64
	sids   []uint64 // edgeOut
	data   []byte
	code   int
	text   string
	header http.Header
	// cursor (edgeOut) is what the frame brings its sockets up to.
	cursor *runtime.Cursor
	// tags and attachment are a socket's record (edgeRecord, and an
	// edgeAttach with reattach); cursors its keys' last cursors.
	reattach   bool
	tags       []string
	attachment []byte
	cursors    map[string]string
}

// maxEdgeMessage bounds one edge session message: a frame as large as a
// socket may carry (the runtime's MaxFrameSize default) and its envelope.
const maxEdgeMessage = 16<<20 + 64<<10

// Bounds of an edge session message's parts.
const (
	maxEdgeHeaders = 64
	maxEdgeText    = 8 << 10
	maxEdgeSIDs    = 1 << 20
	maxEdgeTags    = 1024
)

// errEdgeMalformed is a message that does not decode: the session ends.
var errEdgeMalformed = errors.New("edge session: malformed message")

// appendEdgeMsg appends m's encoding, length first, to b.
func appendEdgeMsg(b []byte, m *edgeMsg) []byte {
	var body []byte
	body = append(body, byte(m.kind))
	switch m.kind {
	case edgeOut:
		body = binary.AppendUvarint(body, uint64(len(m.sids)))
		for _, sid := range m.sids {
			body = binary.AppendUvarint(body, sid)
		}
		body = wire.AppendBytes(body, m.data)
		if m.cursor == nil {
			body = append(body, 0)
		} else {
			body = append(body, 1)
			body = wire.AppendString(body, m.cursor.Key)
			body = wire.AppendString(body, m.cursor.Value)
		}
	default:
		body = binary.AppendUvarint(body, m.sid)
	}
	switch m.kind {
	case edgeAttach:
		body = wire.AppendString(body, m.text)
		body = appendHeader(body, m.header)
		if !m.reattach {
			body = append(body, 0)
			break
		}
		body = append(body, 1)
		body = appendRecord(body, m.tags, m.attachment)
		body = binary.AppendUvarint(body, uint64(len(m.cursors)))
		for k, v := range m.cursors {
			body = wire.AppendString(body, k)
			body = wire.AppendString(body, v)
		}
	case edgeRecord:
		body = appendRecord(body, m.tags, m.attachment)
	case edgeIn, edgeInBinary:
		body = wire.AppendBytes(body, m.data)
	case edgeEnded, edgeClose:
		body = binary.AppendUvarint(body, uint64(m.code))
		body = wire.AppendString(body, m.text)
	case edgeRefused:
		body = binary.AppendUvarint(body, uint64(m.code))
		body = appendHeader(body, m.header)
		body = wire.AppendBytes(body, m.data)
	}
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

func appendRecord(b []byte, tags []string, attachment []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(tags)))
	for _, t := range tags {
		b = wire.AppendString(b, t)
	}
	return wire.AppendBytes(b, attachment)
}

func decodeRecord(d *wire.Decoder) (tags []string, attachment []byte) {
	n := d.Uvarint()
	if n > maxEdgeTags {
		d.Fail()
		return nil, nil
	}
	for range n {
		tags = append(tags, string(d.Bytes(maxEdgeText)))
	}
	if a := d.Bytes(runtime.MaxAttachmentSize); len(a) > 0 {
		attachment = a
	}
	return tags, attachment
}

func appendHeader(b []byte, h http.Header) []byte {
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	b = binary.AppendUvarint(b, uint64(n))
	for k, vs := range h {
		for _, v := range vs {
			b = wire.AppendString(b, k)
			b = wire.AppendString(b, v)
		}
	}
	return b
}

// readEdgeMsg reads one message. Its data aliases a buffer of its own.
func readEdgeMsg(r *bufio.Reader) (*edgeMsg, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n == 0 || n > maxEdgeMessage {
		return nil, fmt.Errorf("%w: length %d", errEdgeMalformed, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return decodeEdgeMsg(buf)
}

// decodeHeader reads a header of at most maxEdgeHeaders values.
func decodeHeader(d *wire.Decoder) http.Header {
	n := d.Uvarint()
	if n > maxEdgeHeaders {
		d.Fail()
	}
	if d.Err() != nil {
		return nil
	}
	h := http.Header{}
	for range n {
		k, v := d.Bytes(maxEdgeText), d.Bytes(maxEdgeText)
		if d.Err() != nil {
			return nil
		}
		h.Add(string(k), string(v))
	}
	return h
}

func decodeEdgeMsg(b []byte) (*edgeMsg, error) {
	m := &edgeMsg{kind: edgeKind(b[0])}
	d := wire.NewDecoder(b[1:], errEdgeMalformed)
	if m.kind == edgeOut {
		n := d.Uvarint()
		if n == 0 || n > maxEdgeSIDs || n > uint64(d.Len()) {
			return nil, fmt.Errorf("%w: %d sockets", errEdgeMalformed, n)
		}
		m.sids = make([]uint64, n)
		for i := range m.sids {
			m.sids[i] = d.Uvarint()
		}
		m.data = d.Bytes(maxEdgeMessage)
		switch d.Byte() {
		case 0:
		case 1:
			m.cursor = &runtime.Cursor{Key: string(d.Bytes(runtime.MaxCursorKey)), Value: string(d.Bytes(runtime.MaxCursorValue))}
		default:
			d.Fail()
		}
	} else {
		m.sid = d.Uvarint()
	}
	switch m.kind {
	case edgeOut, edgeTooLarge, edgeAccepted:
	case edgeAttach:
		m.text = string(d.Bytes(maxEdgeText))
		m.header = decodeHeader(d)
		switch d.Byte() {
		case 0:
		case 1:
			m.reattach = true
			m.tags, m.attachment = decodeRecord(d)
			n := d.Uvarint()
			if n > runtime.MaxCursorKeys {
				d.Fail()
				break
			}
			m.cursors = make(map[string]string, n)
			for range n {
				k, v := d.Bytes(runtime.MaxCursorKey), d.Bytes(runtime.MaxCursorValue)
				m.cursors[string(k)] = string(v)
			}
		default:
			d.Fail()
		}
	case edgeRecord:
		m.tags, m.attachment = decodeRecord(d)
	case edgeIn, edgeInBinary:
		m.data = d.Bytes(maxEdgeMessage)
	case edgeEnded, edgeClose:
		m.code = int(d.Uvarint())
		m.text = string(d.Bytes(maxEdgeText))
		if m.code > 4999 {
			d.Fail()
		}
	case edgeRefused:
		m.code = int(d.Uvarint())
		m.header = decodeHeader(d)
		m.data = d.Bytes(maxEdgeMessage)
		if m.code < 100 || m.code > 599 {
			d.Fail()
		}
	default:
		return nil, fmt.Errorf("%w: kind %d", errEdgeMalformed, m.kind)
	}
	if d.Len() > 0 {
		d.Fail()
	}
	if err := d.Err(); err != nil {
		return nil, fmt.Errorf("%w (kind %d)", err, m.kind)
	}
	return m, nil
}

// edgeQueue is one direction of an edge session: messages wait here for
// the session's writer, which sends all that wait as one write, and sends
// consecutive frames of the same data (a broadcast) as one edgeOut.
type edgeQueue struct {
	mu     sync.Mutex
	cond   *sync.Cond // signalled when the queue drains or closes
	queue  []edgeMsg
	bytes  int
	limit  int
	wake   chan struct{}
	closed bool
	// sentOut, when set, is told of each edgeOut written and how many
	// sockets it was for.
	sentOut func(sockets int)
}

func newEdgeQueue(limit int) *edgeQueue {
	q := &edgeQueue{limit: limit, wake: make(chan struct{}, 1)}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// push queues m and reports whether it was: false when the session is
// closed, or (without wait) when the queue is over its limit, the other
// end not keeping up. With wait it waits for room instead.
func (q *edgeQueue) push(m edgeMsg, wait bool) bool {
	q.mu.Lock()
	for wait && !q.closed && q.bytes > q.limit {
		q.cond.Wait()
	}
	if q.closed || q.bytes > q.limit {
		q.mu.Unlock()
		return false
	}
	q.queue = append(q.queue, m)
	q.bytes += len(m.data) + len(m.text) + 16
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// close ends the queue: pushes fail, the writer stops.
func (q *edgeQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.cond.Broadcast()
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run writes what is queued to w, flushing after each burst, until the
// queue is closed or a write fails.
func (q *edgeQueue) run(w io.Writer, flush func() error) error {
	var batch []edgeMsg
	var buf []byte
	for {
		q.mu.Lock()
		for len(q.queue) == 0 && !q.closed {
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		if q.closed {
			q.mu.Unlock()
			return nil
		}
		batch, q.queue = q.queue, batch[:0]
		q.bytes = 0
		q.cond.Broadcast()
		q.mu.Unlock()
		buf = buf[:0]
		var out *edgeMsg // an edgeOut gathering sockets
		var outSIDs []uint64
		flushOut := func() {
			out.sids = outSIDs
			buf = appendEdgeMsg(buf, out)
			if q.sentOut != nil {
				q.sentOut(len(outSIDs))
			}
			out = nil
		}
		for i := range batch {
			m := &batch[i]
			if m.kind == edgeOut {
				if out != nil && sameBytes(out.data, m.data) && out.cursor == m.cursor {
					outSIDs = append(outSIDs, m.sids...)
					continue
				}
				if out != nil {
					flushOut()
				}
				out, outSIDs = m, append(outSIDs[:0], m.sids...)
				continue
			}
			if out != nil {
				flushOut()
			}
			buf = appendEdgeMsg(buf, m)
		}
		if out != nil {
			flushOut()
		}
		clear(batch)
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if err := flush(); err != nil {
			return err
		}
	}
}

// sameBytes reports whether a and b are the same bytes in memory (not
// merely equal): the frames of one broadcast share their data.
func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
