package client

import (
	"slices"
	"strconv"
	"strings"
)

// stream puts one room's messages in order, exactly once. Messages arrive
// live (new_message), from the resume page of a join with `since`, and from
// get_history pages the client asks for itself; across reconnects the same
// message may come twice, and join and leave entries come only from
// history. The stream delivers a message once every message before it has
// been delivered or is known to be gone.
//
// Gaps are found from the ids: Holocron numbers a room's history 1, 2, 3…
// as fixed-width decimal strings (PROTOCOL-NOTES.md), so a message whose id
// is not the successor of the last one delivered waits while the client
// reads the missing ones. Ids of another shape are delivered in arrival
// order, still without repeats.
type stream struct {
	last    string        // id of the newest message delivered; "" before the first
	held    []*NewMessage // received, not yet deliverable: ascending, all after last
	filling bool          // a get_history after last is in flight
	stale   bool          // the room changed while filling: read again after
}

// hold keeps m unless it is delivered already or held.
func (s *stream) hold(m *NewMessage) {
	id := m.Message.ID
	if s.last != "" && id <= s.last {
		return
	}
	i, found := slices.BinarySearchFunc(s.held, id, func(h *NewMessage, id string) int {
		return strings.Compare(h.Message.ID, id)
	})
	if !found {
		s.held = slices.Insert(s.held, i, m)
	}
}

// drain returns the held messages that may be delivered now: those that
// continue the sequence, or with force every held one.
func (s *stream) drain(force bool) []*NewMessage {
	n := 0
	for n < len(s.held) && (force || s.last == "" || follows(s.last, s.held[n].Message.ID)) {
		s.last = s.held[n].Message.ID
		n++
	}
	out := slices.Clone(s.held[:n])
	s.held = slices.Delete(s.held, 0, n)
	return out
}

// offer takes a live message and returns what may be delivered now.
func (s *stream) offer(m *NewMessage) []*NewMessage {
	s.hold(m)
	return s.drain(false)
}

// gap reports whether messages are held back by a missing one.
func (s *stream) gap() bool { return len(s.held) > 0 }

// page takes a history page of the messages after last. When more is false
// the page reached the room's newest message as of the moment the server
// read it, and every held message arrived before the page did, so whatever
// is still missing between them is gone for good (trimmed): the held
// messages are delivered anyway and skipped reports it.
func (s *stream) page(msgs []*NewMessage, more bool) (out []*NewMessage, skipped bool) {
	for _, m := range msgs {
		s.hold(m)
	}
	out = s.drain(false)
	if !more && len(s.held) > 0 {
		skipped = true
		out = append(out, s.drain(true)...)
	}
	return out, skipped
}

// follows reports whether next is the id right after prev. It answers true
// when the ids are not fixed-width decimals, so such ids never wait.
func follows(prev, next string) bool {
	if len(prev) != len(next) || !decimal(prev) || !decimal(next) {
		return true
	}
	p, err1 := strconv.ParseUint(prev, 10, 64)
	n, err2 := strconv.ParseUint(next, 10, 64)
	if err1 != nil || err2 != nil {
		return true
	}
	return n == p+1
}

func decimal(s string) bool {
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
