package chatlobby

import (
	"cmp"
	"slices"

	"github.com/holocron-run/holocron/runtime"
)

// session is what the lobby knows about one socket: its player (fixed by
// the first successful join_room) and the rooms it joined. It is kept as the
// socket's attachment, which outlives the object instance, so a lobby woken
// from hibernation knows its sockets again.
type session struct {
	PlayerID   string       `json:"p,omitempty"`
	PlayerName string       `json:"n,omitempty"`
	Rooms      []membership `json:"r,omitempty"`
}

// membership is one room a socket joined.
type membership struct {
	RoomID string `json:"i"`
	// Since orders a room's participants by arrival: the sequence number of
	// the join message that made the player present. A player's later
	// sockets inherit it, so a player keeps their place while any of their
	// sockets stays.
	Since uint64 `json:"s"`
}

// maxRoomsPerSocket keeps a socket's attachment well inside
// runtime.MaxAttachmentSize (a membership encodes to under 100 bytes).
const maxRoomsPerSocket = 100

func (s *session) identified() bool { return s.PlayerID != "" }

func (s *session) membership(roomID string) (membership, bool) {
	for _, m := range s.Rooms {
		if m.RoomID == roomID {
			return m, true
		}
	}
	return membership{}, false
}

func (s *session) joined(roomID string) bool {
	_, ok := s.membership(roomID)
	return ok
}

// withRoom returns a copy of s that is also in m.RoomID.
func (s session) withRoom(m membership) session {
	s.Rooms = append(slices.Clip(s.Rooms), m)
	return s
}

// withoutRoom returns a copy of s that is no longer in roomID.
func (s session) withoutRoom(roomID string) session {
	s.Rooms = slices.DeleteFunc(slices.Clone(s.Rooms), func(m membership) bool { return m.RoomID == roomID })
	return s
}

// socketState is the in-memory side of a socket: its session, decoded once
// per instance. (Its rate limit is the runtime's, Options.SocketRate.)
type socketState struct {
	session session
}

// roomTag tags the sockets joined to a room, so GetWebSockets and Broadcast
// reach them.
func roomTag(roomID string) string { return "room:" + roomID }

// socket returns the state of ws, loading its session from the attachment
// the first time this instance sees it.
func (l *Lobby) socket(ws *runtime.WebSocket) *socketState {
	if st, ok := l.sockets[ws]; ok {
		return st
	}
	st := &socketState{}
	if _, err := ws.Attachment(&st.session); err != nil {
		// Only this package writes attachments; an unreadable one is a bug,
		// but the socket is better treated as new than wedged.
		st.session = session{}
	}
	if p, ok := ws.Principal(); ok && !st.session.identified() {
		// An authenticated socket's player is its token's, from the start.
		st.session.PlayerID, st.session.PlayerName = p.ID, p.Name
	}
	l.sockets[ws] = st
	return st
}

// setSession records a socket's new session in memory and in its attachment.
func (l *Lobby) setSession(ws *runtime.WebSocket, s session) {
	if err := ws.SetAttachment(s); err != nil {
		// Bounded by maxRoomsPerSocket and the field limits: a bug.
		panic("chatlobby: " + err.Error())
	}
	l.socket(ws).session = s
}

// participant is one present player of a room.
type participant struct {
	PlayerID string
	Since    uint64
}

// presence returns the players present in roomID, in arrival order: the
// distinct players of the open sockets joined to it, except the socket
// skip (nil for none).
func (l *Lobby) presence(roomID string, skip *runtime.WebSocket) []participant {
	socks := l.state.GetWebSockets(roomTag(roomID))
	byPlayer := make(map[string]int, len(socks))
	var out []participant
	for _, ws := range socks {
		if ws == skip {
			continue
		}
		s := &l.socket(ws).session
		m, ok := s.membership(roomID)
		if !ok || !s.identified() {
			continue
		}
		if i, seen := byPlayer[s.PlayerID]; seen {
			out[i].Since = min(out[i].Since, m.Since)
			continue
		}
		byPlayer[s.PlayerID] = len(out)
		out = append(out, participant{PlayerID: s.PlayerID, Since: m.Since})
	}
	slices.SortFunc(out, func(a, b participant) int {
		return cmp.Or(cmp.Compare(a.Since, b.Since), cmp.Compare(a.PlayerID, b.PlayerID))
	})
	return out
}

func find(ps []participant, playerID string) (participant, bool) {
	for _, p := range ps {
		if p.PlayerID == playerID {
			return p, true
		}
	}
	return participant{}, false
}

func ids(ps []participant) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.PlayerID
	}
	return out
}
