package chatlobby

import (
	"strings"
	"unicode"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// Field limits of PROTOCOL.md, and the ones it leaves to the server.
const (
	maxContentRunes     = 4000
	maxClientMsgIDRunes = 64
	maxHistoryLimit     = 1000
	defaultHistoryLimit = 50
	// maxResumeMessages caps a since resume (the protocol's history cap).
	maxResumeMessages = 1000
)

// Every handler checks in PROTOCOL.md's order of precedence: malformed
// fields, then room_not_found, then forbidden, then not_in_room, then the
// room's state.

// joinRoom handles join_room: the socket joins a room, fixing its player on
// the first success.
func (l *Lobby) joinRoom(r *request) error {
	roomID, perr := r.frame.RoomID()
	if perr != nil {
		return perr
	}
	r.roomID = roomID
	playerID, perr := r.frame.PlayerID()
	if perr != nil {
		return perr
	}
	sess := *r.session
	if !sess.identified() {
		// The first join names the socket's player; later names are ignored.
		name, perr := r.frame.String("playerName")
		if perr != nil {
			return perr
		}
		if n := frame.RuneCount(name); n < 1 || n > frame.MaxNameRunes {
			return protocol.Errorf(protocol.CodeInvalidField, "playerName must be 1..%d characters", frame.MaxNameRunes)
		}
		sess.PlayerID, sess.PlayerName = playerID, name
	}
	since, resume, perr := r.frame.OptString("since")
	if perr != nil {
		return perr
	}

	room, err := l.mustRoom(roomID)
	if err != nil {
		return err
	}
	if perr := checkPlayer(r.session, playerID); perr != nil {
		return perr
	}
	if !room.allows(playerID) {
		return protocol.Errorf(protocol.CodeForbidden, "player %s may not join this private room", playerID)
	}
	rejoin := sess.joined(roomID)
	if !rejoin && len(sess.Rooms) >= maxRoomsPerSocket {
		return protocol.Errorf(protocol.CodeForbidden, "a socket may join at most %d rooms", maxRoomsPerSocket)
	}
	present := l.presence(roomID, nil)
	me, alreadyPresent := find(present, playerID)
	if !alreadyPresent && len(present) >= room.MaxParticipants {
		return protocol.Errorf(protocol.CodeRoomFull, "room is full (%d participants)", room.MaxParticipants)
	}

	if !alreadyPresent {
		// The player's first socket in the room: a join event.
		if _, err := l.store.appendMessage(room, &ChatMessage{
			RoomID:     roomID,
			SenderID:   playerID,
			SenderName: sess.PlayerName,
			Content:    sess.PlayerName + " joined the room",
			Timestamp:  frame.Timestamp(l.state.Now()),
			Type:       MessageJoin,
		}); err != nil {
			return err
		}
		me = participant{PlayerID: playerID, Since: room.LastSeq}
		present = append(present, me)
	}
	participants := ids(present)
	if !rejoin {
		next := sess.withRoom(membership{RoomID: roomID, Since: me.Since})
		r.then(func() {
			l.setSession(r.ws, next)
			r.ws.AddTag(roomTag(roomID))
		})
	}
	r.reply(RoomJoinedFrame{
		Type:         TypeRoomJoined,
		Room:         room.view(participants),
		Participants: participants,
		RequestID:    r.frame.RequestID,
	})
	if resume {
		msgs, hasMore, err := l.store.history(room, selection{Limit: maxResumeMessages, After: since, HasAfter: true})
		if err != nil {
			return err
		}
		r.reply(ResumeFrame{
			Type:      TypeMessageHistory,
			RoomID:    roomID,
			Since:     since,
			Messages:  msgs,
			HasMore:   hasMore,
			Truncated: l.store.floor(room) > 0 && messageID(l.store.floor(room)) > since,
			RequestID: r.frame.RequestID,
		})
	}
	if !alreadyPresent {
		l.broadcastPresence(r, TypeUserJoined, roomID, playerID, sess.PlayerName, participants)
	}
	return nil
}

// leaveRoom handles leave_room: this socket leaves the room; the player
// leaves it with their last socket.
func (l *Lobby) leaveRoom(r *request) error {
	roomID, perr := r.frame.RoomID()
	if perr != nil {
		return perr
	}
	r.roomID = roomID
	playerID, perr := r.frame.PlayerID()
	if perr != nil {
		return perr
	}
	if _, err := l.mustRoom(roomID); err != nil {
		return err
	}
	if perr := checkPlayer(r.session, playerID); perr != nil {
		return perr
	}
	if !r.session.joined(roomID) {
		return protocol.Errorf(protocol.CodeNotInRoom, "not in room %s", roomID)
	}
	announce, err := l.departed(r.ws, r.session, roomID)
	if err != nil {
		return err
	}
	next := r.session.withoutRoom(roomID)
	r.then(func() {
		l.setSession(r.ws, next)
		r.ws.RemoveTag(roomTag(roomID))
	})
	r.reply(RoomLeftFrame{Type: TypeRoomLeft, RoomID: roomID, RequestID: r.frame.RequestID})
	if announce != nil {
		r.then(announce)
	}
	return nil
}

// departed handles ws leaving roomID (by leave_room or by closing). If that
// was the player's last socket in the room it records the leave message and
// returns the effect announcing it to the room; otherwise it returns nil.
func (l *Lobby) departed(ws *runtime.WebSocket, s *session, roomID string) (func(), error) {
	rest := l.presence(roomID, ws)
	if _, still := find(rest, s.PlayerID); still {
		return nil, nil
	}
	room, ok, err := l.store.room(roomID)
	if err != nil || !ok {
		return nil, err
	}
	if _, err := l.store.appendMessage(room, &ChatMessage{
		RoomID:     roomID,
		SenderID:   s.PlayerID,
		SenderName: s.PlayerName,
		Content:    s.PlayerName + " left the room",
		Timestamp:  frame.Timestamp(l.state.Now()),
		Type:       MessageLeave,
	}); err != nil {
		return nil, err
	}
	frame := l.presenceFrame(TypeUserLeft, roomID, s.PlayerID, s.PlayerName, ids(rest))
	return func() { l.state.Broadcast(roomTag(roomID), frame) }, nil
}

// sendMessage handles send_message: store the message once and send it to
// the room.
func (l *Lobby) sendMessage(r *request) error {
	roomID, perr := r.frame.RoomID()
	if perr != nil {
		return perr
	}
	r.roomID = roomID
	playerID, perr := r.frame.PlayerID()
	if perr != nil {
		return perr
	}
	content, perr := r.frame.String("content")
	if perr != nil {
		return perr
	}
	if n := frame.RuneCount(content); n < 1 || n > maxContentRunes {
		return protocol.Errorf(protocol.CodeInvalidField, "content must be 1..%d characters", maxContentRunes)
	}
	if strings.TrimFunc(content, unicode.IsSpace) == "" {
		return protocol.Errorf(protocol.CodeInvalidField, "content must not be only white space")
	}
	clientMsgID, idempotent, perr := r.frame.OptString("clientMsgId")
	if perr != nil {
		return perr
	}
	if idempotent {
		if n := frame.RuneCount(clientMsgID); n < 1 || n > maxClientMsgIDRunes {
			return protocol.Errorf(protocol.CodeInvalidField, "clientMsgId must be 1..%d characters", maxClientMsgIDRunes)
		}
	}
	room, err := l.mustRoom(roomID)
	if err != nil {
		return err
	}
	if perr := checkPlayer(r.session, playerID); perr != nil {
		return perr
	}
	if !r.session.joined(roomID) {
		return protocol.Errorf(protocol.CodeNotInRoom, "not in room %s", roomID)
	}
	if idempotent {
		stored, ok, err := l.store.sentMessage(room, playerID, clientMsgID)
		if err != nil {
			return err
		}
		if ok {
			// A retry of a stored message: the room has it; only the sender
			// needs the confirmation.
			r.reply(NewMessageFrame{Type: TypeNewMessage, Message: stored, RequestID: r.frame.RequestID})
			return nil
		}
	}
	raw, err := l.store.appendMessage(room, &ChatMessage{
		RoomID:      roomID,
		SenderID:    playerID,
		SenderName:  r.session.PlayerName,
		Content:     content,
		Timestamp:   frame.Timestamp(l.state.Now()),
		Type:        MessageText,
		ClientMsgID: clientMsgID,
	})
	if err != nil {
		return err
	}
	data := newMessageFrame(raw, "")
	if r.frame.RequestID == "" {
		r.then(func() { l.state.Broadcast(roomTag(roomID), data) })
		return nil
	}
	// The sender's copy echoes its requestId; the others get the shared one.
	echo := newMessageFrame(raw, r.frame.RequestID)
	r.then(func() { r.ws.Send(echo) })
	r.then(func() {
		for _, ws := range l.state.GetWebSockets(roomTag(roomID)) {
			if ws != r.ws {
				ws.Send(data)
			}
		}
	})
	return nil
}

// getHistory handles get_history: a page of a room's history to the actor.
func (l *Lobby) getHistory(r *request) error {
	roomID, perr := r.frame.RoomID()
	if perr != nil {
		return perr
	}
	r.roomID = roomID
	sel, perr := selectionFromFrame(r.frame)
	if perr != nil {
		return perr
	}
	playerID, named, perr := optPlayerID(r.frame)
	if perr != nil {
		return perr
	}
	room, err := l.mustRoom(roomID)
	if err != nil {
		return err
	}
	if named {
		if perr := checkPlayer(r.session, playerID); perr != nil {
			return perr
		}
	}
	if room.IsPrivate && !r.session.joined(roomID) {
		return protocol.Errorf(protocol.CodeNotInRoom, "the history of a private room is for its participants")
	}
	msgs, hasMore, err := l.store.history(room, sel)
	if err != nil {
		return err
	}
	r.reply(HistoryFrame{Type: TypeMessageHistory, RoomID: roomID, Messages: msgs, HasMore: hasMore, RequestID: r.frame.RequestID})
	return nil
}

// selectionFromFrame reads get_history's limit, before and after.
func selectionFromFrame(f *frame.Frame) (selection, *protocol.Error) {
	sel := selection{Limit: defaultHistoryLimit}
	if n, ok, err := f.OptInt("limit", 1, maxHistoryLimit); err != nil {
		return sel, err
	} else if ok {
		sel.Limit = n
	}
	var err *protocol.Error
	if sel.Before, sel.HasBefore, err = f.OptString("before"); err != nil {
		return sel, err
	}
	if sel.After, sel.HasAfter, err = f.OptString("after"); err != nil {
		return sel, err
	}
	if sel.HasBefore && sel.HasAfter {
		return sel, protocol.Errorf(protocol.CodeInvalidField, "give before or after, not both")
	}
	return sel, nil
}

// optPlayerID reads a playerId that a frame may carry without needing it.
func optPlayerID(f *frame.Frame) (string, bool, *protocol.Error) {
	if !f.Has("playerId") {
		return "", false, nil
	}
	id, err := f.PlayerID()
	return id, true, err
}

// checkPlayer fails with forbidden when the frame names a player other than
// the socket's own.
func checkPlayer(s *session, playerID string) *protocol.Error {
	if s.identified() && s.PlayerID != playerID {
		return protocol.Errorf(protocol.CodeForbidden, "this socket belongs to another player")
	}
	return nil
}

// mustRoom loads a room or fails with room_not_found.
func (l *Lobby) mustRoom(roomID string) (*roomRecord, error) {
	room, ok, err := l.store.room(roomID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, protocol.Errorf(protocol.CodeRoomNotFound, "room %s not found", roomID)
	}
	return room, nil
}

// broadcastPresence queues a user_joined or user_left to the room.
func (l *Lobby) broadcastPresence(r *request, typ, roomID, playerID, playerName string, participants []string) {
	frame := l.presenceFrame(typ, roomID, playerID, playerName, participants)
	r.then(func() { l.state.Broadcast(roomTag(roomID), frame) })
}

func (l *Lobby) presenceFrame(typ, roomID, playerID, playerName string, participants []string) []byte {
	f := PresenceFrame{Type: typ, RoomID: roomID, PlayerID: playerID, PlayerName: playerName, ParticipantCount: len(participants)}
	if len(participants) <= l.opts.ParticipantListLimit {
		f.Participants = participants
		if f.Participants == nil {
			f.Participants = []string{}
		}
	}
	return encode(f)
}
