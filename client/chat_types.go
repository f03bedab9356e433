package client

import "time"

// ChatRoom is a chat room as the server shows it. Participants is live
// presence: the players with an open socket in the room, in arrival order.
type ChatRoom struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Participants    []string  `json:"participants"`
	MaxParticipants int       `json:"maxParticipants"`
	IsPrivate       bool      `json:"isPrivate"`
	CreatedAt       time.Time `json:"createdAt"`
	LastActivity    time.Time `json:"lastActivity"`
}

// ChatMessage is one entry of a room's history. ID is unique within the
// room, and its fixed-width string order is the room's commit order.
type ChatMessage struct {
	ID          string    `json:"id"`
	RoomID      string    `json:"roomId"`
	SenderID    string    `json:"senderId"`
	SenderName  string    `json:"senderName"`
	Content     string    `json:"content"`
	Timestamp   time.Time `json:"timestamp"`
	Type        string    `json:"type"` // MessageText, MessageSystem, MessageJoin or MessageLeave
	ClientMsgID string    `json:"clientMsgId,omitempty"`
}

// ChatMessage.Type values. Join and leave entries are written by the server
// when a player's first socket joins a room or their last one leaves.
const (
	MessageText   = "text"
	MessageSystem = "system"
	MessageJoin   = "join"
	MessageLeave  = "leave"
)

// NewChatRoom is the body of CreateRoom. Zero fields take the server's
// defaults (50 participants, public).
type NewChatRoom struct {
	RoomID          string `json:"roomId"`
	Name            string `json:"name"`
	MaxParticipants int    `json:"maxParticipants,omitempty"`
	IsPrivate       bool   `json:"isPrivate,omitempty"`
	// AllowedPlayers limits a private room to these playerIds.
	AllowedPlayers []string `json:"allowedPlayers,omitempty"`
}

// ChatJoined answers JoinRoom. Participants is the room's full presence
// list, whatever its size.
type ChatJoined struct {
	Room         ChatRoom `json:"room"`
	Participants []string `json:"participants"`
}

// MessagePage is one page of a room's history, oldest first. HasMore says
// whether more messages exist beyond it in the direction asked for; page on
// HasMore, not on the count (pages are also capped by size).
type MessagePage struct {
	RoomID   string        `json:"roomId"`
	Messages []ChatMessage `json:"messages"`
	HasMore  bool          `json:"hasMore"`
}

// HistoryOptions select a page of history. With neither bound, the newest
// Limit messages; with Before, the newest Limit older than it; with After
// (or FromStart), the oldest Limit newer than it.
type HistoryOptions struct {
	Limit  int    // 1..1000; 0 means the server's default, 50
	Before string // a message id
	After  string // a message id
	// FromStart asks for the oldest page (after: ""), to read a room from
	// its beginning; it cannot be combined with Before or After.
	FromStart bool
}

// NewMessage is one message of a joined room's stream. Each message of the
// room's history after the point the client joined arrives exactly once, in
// commit order, including join and leave entries and the client's own
// messages. FromHistory says it came from a history read (resume after a
// reconnect, or a gap filled) rather than being pushed live.
type NewMessage struct {
	Message     ChatMessage
	FromHistory bool
}

// Presence is the payload of user_joined and user_left. Participants is
// nil once the room is larger than the server's list limit (200);
// ParticipantCount is always set.
type Presence struct {
	RoomID           string   `json:"roomId"`
	PlayerID         string   `json:"playerId"`
	PlayerName       string   `json:"playerName"`
	Participants     []string `json:"participants"`
	ParticipantCount int      `json:"participantCount"`
}

// UserJoined says a player's first socket joined the room.
type UserJoined struct{ Presence }

// UserLeft says a player's last socket left the room (or closed).
type UserLeft struct{ Presence }

// ChatRejoined says the client joined a room again on a new connection,
// by itself; the messages it missed follow as *NewMessage.
type ChatRejoined struct{ ChatJoined }

// HistoryTruncated says that messages of the room after the message After
// were trimmed from its history before the client could read them: the
// stream skips them. The application may want to tell its user.
type HistoryTruncated struct {
	RoomID string
	After  string
}

func (*NewMessage) isEvent()       {}
func (*UserJoined) isEvent()       {}
func (*UserLeft) isEvent()         {}
func (*ChatRejoined) isEvent()     {}
func (*HistoryTruncated) isEvent() {}

// Frames the chat client writes.
type (
	chatJoinFrame struct {
		Type       string  `json:"type"`
		RoomID     string  `json:"roomId"`
		PlayerID   string  `json:"playerId"`
		PlayerName string  `json:"playerName"`
		Since      *string `json:"since,omitempty"`
	}
	chatLeaveFrame struct {
		Type     string `json:"type"`
		RoomID   string `json:"roomId"`
		PlayerID string `json:"playerId"`
	}
	sendMessageFrame struct {
		Type        string `json:"type"`
		RoomID      string `json:"roomId"`
		PlayerID    string `json:"playerId"`
		Content     string `json:"content"`
		ClientMsgID string `json:"clientMsgId"`
	}
	getHistoryFrame struct {
		Type   string  `json:"type"`
		RoomID string  `json:"roomId"`
		Limit  int     `json:"limit,omitempty"`
		Before *string `json:"before,omitempty"`
		After  *string `json:"after,omitempty"`
	}
	newMessageFrame struct {
		Message ChatMessage `json:"message"`
	}
	historyFrame struct {
		RoomID    string        `json:"roomId"`
		Since     string        `json:"since"` // on the resume after a join with since
		Messages  []ChatMessage `json:"messages"`
		HasMore   bool          `json:"hasMore"`
		Truncated bool          `json:"truncated"`
	}
)

// Chat frame types.
const (
	typeJoinRoom       = "join_room"
	typeLeaveRoom      = "leave_room"
	typeSendMessage    = "send_message"
	typeGetHistory     = "get_history"
	typeRoomJoined     = "room_joined"
	typeRoomLeft       = "room_left"
	typeUserJoined     = "user_joined"
	typeUserLeft       = "user_left"
	typeNewMessage     = "new_message"
	typeMessageHistory = "message_history"
)
