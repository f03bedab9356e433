package chatlobby

import (
	"encoding/json"

	"github.com/holocron-run/holocron/protocol"
)

// Client frame types (PROTOCOL.md, ChatLobby table).
const (
	TypeJoinRoom    = "join_room"
	TypeLeaveRoom   = "leave_room"
	TypeSendMessage = "send_message"
	TypeGetHistory  = "get_history"
)

// Server frame types.
const (
	TypeRoomJoined     = "room_joined"
	TypeJoinFailed     = "join_failed"
	TypeRoomLeft       = "room_left"
	TypeUserJoined     = "user_joined"
	TypeUserLeft       = "user_left"
	TypeNewMessage     = "new_message"
	TypeMessageHistory = "message_history"
)

// ChatMessage.Type values.
const (
	MessageText   = "text"
	MessageSystem = "system"
	MessageJoin   = "join"
	MessageLeave  = "leave"
)

// ChatRoom is a room as clients see it. Participants is live presence: the
// players with an open socket joined to the room, in the order they arrived.
type ChatRoom struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	Participants    []string `json:"participants"`
	MaxParticipants int      `json:"maxParticipants"`
	IsPrivate       bool     `json:"isPrivate"`
	CreatedAt       string   `json:"createdAt"`
	LastActivity    string   `json:"lastActivity"`
}

// ChatMessage is one entry of a room's history. ID is the room's commit
// sequence number, zero-padded to a fixed width so string order is commit
// order.
type ChatMessage struct {
	ID          string `json:"id"`
	RoomID      string `json:"roomId"`
	SenderID    string `json:"senderId"`
	SenderName  string `json:"senderName"`
	Content     string `json:"content"`
	Timestamp   string `json:"timestamp"`
	Type        string `json:"type"`
	ClientMsgID string `json:"clientMsgId,omitempty"`
}

// RoomJoinedFrame answers a successful join_room. It always carries the full
// participant list, whatever the room's size.
type RoomJoinedFrame struct {
	Type         string   `json:"type"`
	Room         ChatRoom `json:"room"`
	Participants []string `json:"participants"`
	RequestID    string   `json:"requestId,omitempty"`
}

// RoomLeftFrame answers a successful leave_room.
type RoomLeftFrame struct {
	Type      string `json:"type"`
	RoomID    string `json:"roomId"`
	RequestID string `json:"requestId,omitempty"`
}

// PresenceFrame is user_joined or user_left. Participants is present only
// while ParticipantCount is at most Options.ParticipantListLimit.
type PresenceFrame struct {
	Type             string   `json:"type"`
	RoomID           string   `json:"roomId"`
	PlayerID         string   `json:"playerId"`
	PlayerName       string   `json:"playerName"`
	Participants     []string `json:"participants,omitzero"`
	ParticipantCount int      `json:"participantCount"`
}

// NewMessageFrame carries one message to a room; the sender's own copy
// echoes its requestId.
type NewMessageFrame struct {
	Type      string          `json:"type"`
	Message   json.RawMessage `json:"message"`
	RequestID string          `json:"requestId,omitempty"`
}

// HistoryFrame answers get_history: a page of messages, oldest first.
type HistoryFrame struct {
	Type      string            `json:"type"`
	RoomID    string            `json:"roomId"`
	Messages  []json.RawMessage `json:"messages"`
	HasMore   bool              `json:"hasMore"`
	RequestID string            `json:"requestId,omitempty"`
}

// ResumeFrame is the message_history that follows room_joined when the join
// gave `since`: the kept messages newer than Since, oldest first. Truncated
// says that some messages newer than Since were already trimmed away.
type ResumeFrame struct {
	Type      string            `json:"type"`
	RoomID    string            `json:"roomId"`
	Since     string            `json:"since"`
	Messages  []json.RawMessage `json:"messages"`
	HasMore   bool              `json:"hasMore"`
	Truncated bool              `json:"truncated"`
	RequestID string            `json:"requestId,omitempty"`
}

// PongFrame answers ping.
type PongFrame struct {
	Type      string `json:"type"`
	RequestID string `json:"requestId,omitempty"`
}

// RoomList is the body of GET /rooms.
type RoomList struct {
	Rooms []ChatRoom `json:"rooms"`
}

// MessagePage is the body of GET /rooms/{id}/messages.
type MessagePage struct {
	RoomID   string            `json:"roomId"`
	Messages []json.RawMessage `json:"messages"`
	HasMore  bool              `json:"hasMore"`
}

// failureFrame builds the reply to a failed request: join_failed for
// join_room, which reports every failure through its own type, and the
// generic error frame for everything else.
func failureFrame(requestType, roomID, requestID string, err *protocol.Error) protocol.ErrorFrame {
	f := protocol.ErrorFrame{
		Type:        protocol.TypeError,
		Code:        err.Code,
		Message:     err.Message,
		RequestType: requestType,
		RoomID:      roomID,
		RequestID:   requestID,
	}
	if requestType == TypeJoinRoom {
		f.Type = TypeJoinFailed
		f.Message = protocol.MessageJoinFailed + ": " + err.Message
	}
	return f
}

// newMessageFrame is encode(NewMessageFrame{...}) for the hottest frame:
// msg is already compact JSON (the package encoded it), so it is spliced
// in rather than validated and compacted again.
func newMessageFrame(msg json.RawMessage, requestID string) []byte {
	out := make([]byte, 0, len(msg)+len(requestID)+48)
	out = append(out, `{"type":"`+TypeNewMessage+`","message":`...)
	out = append(out, msg...)
	if requestID != "" {
		out = append(out, `,"requestId":`...)
		out = append(out, encode(requestID)...)
	}
	return append(out, '}')
}

// encode marshals a frame the package built itself; failure is a bug.
func encode(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic("chatlobby: encode frame: " + err.Error())
	}
	return raw
}
