package chatlobby

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/holocron-run/holocron/runtime"
)

// Storage layout of one lobby object. Room ids match [A-Za-z0-9_-], so a
// room id followed by "/" never prefixes another room's keys.
//
//	lobby                          lobbyRecord: the room creation counter
//	room/{roomId}                  roomRecord
//	public/{createSeq:020}         roomId of a public room (GET /rooms, oldest first)
//	msg/{roomId}/{seq:020}         ChatMessage, seq = the room's commit order
//	cmid/{roomId}/{n}:{playerId}{clientMsgId}
//	                               message id of the kept message a player sent
//	                               with that clientMsgId (n = len(playerId))
//
// A sent message costs a fixed number of operations whatever the history's
// size: read the room, read the clientMsgId index, write the message, the
// index and the room, and delete the message it pushes out (read to find its
// index entry).
const (
	keyLobby      = "lobby"
	prefixRoom    = "room/"
	prefixPublic  = "public/"
	prefixMessage = "msg/"
	prefixCMID    = "cmid/"
)

// lobbyRecord is the object-wide state kept in storage.
type lobbyRecord struct {
	// RoomSeq counts the rooms ever created; it orders GET /rooms.
	RoomSeq uint64 `json:"roomSeq"`
}

// roomRecord is a room as stored. Presence is not stored: it is live, and
// derived from the open sockets.
type roomRecord struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	MaxParticipants int      `json:"maxParticipants"`
	IsPrivate       bool     `json:"isPrivate"`
	AllowedPlayers  []string `json:"allowedPlayers,omitempty"`
	CreatedAt       string   `json:"createdAt"`
	LastActivity    string   `json:"lastActivity"`
	// LastSeq is the sequence number of the room's newest message, 0 before
	// the first one.
	LastSeq uint64 `json:"lastSeq"`
	// TrimmedThrough is the newest sequence number already deleted by the
	// history limit; messages TrimmedThrough+1..LastSeq are kept.
	TrimmedThrough uint64 `json:"trimmedThrough"`
}

func (r *roomRecord) allows(playerID string) bool {
	if len(r.AllowedPlayers) == 0 {
		return true
	}
	for _, p := range r.AllowedPlayers {
		if p == playerID {
			return true
		}
	}
	return false
}

// view renders the room for clients with the given participants.
func (r *roomRecord) view(participants []string) ChatRoom {
	if participants == nil {
		participants = []string{}
	}
	return ChatRoom{
		ID:              r.ID,
		Name:            r.Name,
		Participants:    participants,
		MaxParticipants: r.MaxParticipants,
		IsPrivate:       r.IsPrivate,
		CreatedAt:       r.CreatedAt,
		LastActivity:    r.LastActivity,
	}
}

// messageIDWidth is the width of message ids: every uint64 fits.
const messageIDWidth = 20

func messageID(seq uint64) string { return fmt.Sprintf("%0*d", messageIDWidth, seq) }

func roomKey(id string) string           { return prefixRoom + id }
func publicKey(seq uint64) string        { return prefixPublic + messageID(seq) }
func messagePrefix(roomID string) string { return prefixMessage + roomID + "/" }
func messageKey(roomID string, seq uint64) string {
	return messagePrefix(roomID) + messageID(seq)
}
func clientMsgKey(roomID, playerID, clientMsgID string) string {
	return prefixCMID + roomID + "/" + strconv.Itoa(len(playerID)) + ":" + playerID + clientMsgID
}

// store is the lobby's typed view of its storage. Every method runs inside
// an event; writes join the event's atomic batch.
type store struct {
	kv           *runtime.Storage
	historyLimit int
	// rooms caches decoded room records, which every message reads and
	// writes. The instance is its storage's only writer, and the runtime
	// drops the instance when an event's writes are lost (a panic, a
	// failed commit), so the cache goes wrong only when a Transaction
	// rolls back: dropCache then.
	rooms map[string]roomRecord
	// indexes holds the clientMsgId index of the busiest rooms in memory
	// (see cmidIndex); sent counts each room's messages since the
	// instance started, to find them. Dropped with rooms.
	indexes map[string]*cmidIndex
	sent    map[string]int
}

// dropCache forgets the cached room records and indexes after a
// rolled-back Transaction that may have written some.
func (s store) dropCache() {
	clear(s.rooms)
	clear(s.indexes)
	clear(s.sent)
}

// cmidIndex is a room's whole clientMsgId index (every cmid/{roomId}/ key
// and the message it names), kept in memory for a busy room: a send then
// looks its clientMsgId up without a storage read, and the trim finds the
// entries of the messages it deletes without reading them. It is complete
// from the moment it is loaded because the instance is the only writer.
type cmidIndex struct {
	ids   map[string]uint64 // clientMsgKey → message seq
	bySeq map[uint64]string // message seq → its clientMsgKey
}

func (x *cmidIndex) put(key string, seq uint64) {
	if old, ok := x.ids[key]; ok {
		delete(x.bySeq, old) // the entry now names a newer message
	}
	x.ids[key] = seq
	x.bySeq[seq] = key
}

// Holding rooms' indexes in memory: a room's index is loaded once it has
// had indexAfter messages in this instance, for at most maxIndexedRooms
// rooms (about 100 KiB each at the default history limit); other rooms
// read storage as before.
const (
	indexAfter      = 32
	maxIndexedRooms = 16
)

// index returns r's in-memory clientMsgId index, loading it when the room
// has become busy; nil means storage is the index.
func (s store) index(roomID string) (*cmidIndex, error) {
	if x, ok := s.indexes[roomID]; ok {
		return x, nil
	}
	if s.sent[roomID] < indexAfter || len(s.indexes) >= maxIndexedRooms {
		return nil, nil
	}
	prefix := prefixCMID + roomID + "/"
	kvs, err := s.kv.List(runtime.ListOptions{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	x := &cmidIndex{ids: make(map[string]uint64, len(kvs)), bySeq: make(map[uint64]string, len(kvs))}
	for _, kv := range kvs {
		seq, err := strconv.ParseUint(string(kv.Value), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("clientMsgId index %s: %w", kv.Key, err)
		}
		x.put(kv.Key, seq)
	}
	s.indexes[roomID] = x
	return x, nil
}

func (s store) room(id string) (*roomRecord, bool, error) {
	if r, ok := s.rooms[id]; ok {
		return &r, true, nil
	}
	r, ok, err := runtime.GetJSON[roomRecord](s.kv, roomKey(id))
	if err != nil || !ok {
		return nil, false, err
	}
	s.rooms[id] = r
	return &r, true, nil
}

func (s store) putRoom(r *roomRecord) error {
	if err := runtime.PutJSON(s.kv, roomKey(r.ID), r); err != nil {
		return err
	}
	s.rooms[r.ID] = *r
	return nil
}

// roomCount is how many rooms the lobby holds (rooms are never deleted, so
// the creation sequence counts them).
func (s store) roomCount() (int, error) {
	lobby, _, err := runtime.GetJSON[lobbyRecord](s.kv, keyLobby)
	return int(lobby.RoomSeq), err
}

// createRoom stores a new room (the caller checked it does not exist) and
// lists it in GET /rooms if it is public.
func (s store) createRoom(r *roomRecord) error {
	lobby, _, err := runtime.GetJSON[lobbyRecord](s.kv, keyLobby)
	if err != nil {
		return err
	}
	lobby.RoomSeq++
	if err := runtime.PutJSON(s.kv, keyLobby, lobby); err != nil {
		return err
	}
	if !r.IsPrivate {
		if err := s.kv.Put(publicKey(lobby.RoomSeq), []byte(r.ID)); err != nil {
			return err
		}
	}
	return s.putRoom(r)
}

// publicRooms returns the public rooms, oldest first.
func (s store) publicRooms() ([]*roomRecord, error) {
	index, err := s.kv.List(runtime.ListOptions{Prefix: prefixPublic})
	if err != nil {
		return nil, err
	}
	out := make([]*roomRecord, 0, len(index))
	for _, kv := range index {
		r, ok, err := s.room(string(kv.Value))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, r)
		}
	}
	return out, nil
}

// appendMessage gives m the room's next id, stores it with its clientMsgId
// index entry, trims the history to the limit and saves the room. m.RoomID,
// sender, content, type and timestamp are the caller's.
func (s store) appendMessage(r *roomRecord, m *ChatMessage) (json.RawMessage, error) {
	r.LastSeq++
	m.ID = messageID(r.LastSeq)
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode message: %w", err)
	}
	if err := s.kv.Put(messageKey(r.ID, r.LastSeq), raw); err != nil {
		return nil, err
	}
	s.sent[r.ID]++
	x, err := s.index(r.ID)
	if err != nil {
		return nil, err
	}
	if m.ClientMsgID != "" {
		key := clientMsgKey(r.ID, m.SenderID, m.ClientMsgID)
		if err := s.kv.Put(key, []byte(m.ID)); err != nil {
			return nil, err
		}
		if x != nil {
			x.put(key, r.LastSeq)
		}
	}
	r.LastActivity = m.Timestamp
	if r.LastSeq-r.TrimmedThrough > uint64(s.historyLimit)+s.trimSlack() {
		floor := s.floor(r)
		if err := s.deleteMessages(r.ID, r.TrimmedThrough, floor); err != nil {
			return nil, err
		}
		r.TrimmedThrough = floor
	}
	return raw, s.putRoom(r)
}

// trimSlack is how many messages beyond the history limit a room keeps
// before deleting the oldest together: one range scan then serves many
// messages, where deleting each as it falls out would read one message
// (from disk, once it is old) per message sent. The slack is invisible:
// history stops at floor.
func (s store) trimSlack() uint64 { return uint64(min(128, max(1, s.historyLimit/8))) }

// floor is the newest sequence number no longer in r's history: the
// history limit hides messages before they are deleted.
func (s store) floor(r *roomRecord) uint64 {
	if limit := uint64(s.historyLimit); r.LastSeq > limit {
		return max(r.TrimmedThrough, r.LastSeq-limit)
	}
	return r.TrimmedThrough
}

// deleteMessages removes messages after..through and their clientMsgId
// index entries.
func (s store) deleteMessages(roomID string, after, through uint64) error {
	if x := s.indexes[roomID]; x != nil {
		for seq := after + 1; seq <= through; seq++ {
			if key, ok := x.bySeq[seq]; ok {
				if err := s.kv.Delete(key); err != nil {
					return err
				}
				delete(x.bySeq, seq)
				delete(x.ids, key)
			}
			if err := s.kv.Delete(messageKey(roomID, seq)); err != nil {
				return err
			}
		}
		return nil
	}
	kvs, err := s.kv.List(runtime.ListOptions{Start: messageKey(roomID, after+1), End: messageKey(roomID, through+1)})
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		// Only the index entry's parts: no strings for the content.
		var old struct {
			SenderID    string `json:"senderId"`
			ClientMsgID string `json:"clientMsgId"`
		}
		if err := json.Unmarshal(kv.Value, &old); err != nil {
			return fmt.Errorf("trim %s: %w", kv.Key, err)
		}
		if old.ClientMsgID != "" {
			if err := s.kv.Delete(clientMsgKey(roomID, old.SenderID, old.ClientMsgID)); err != nil {
				return err
			}
		}
		if err := s.kv.Delete(kv.Key); err != nil {
			return err
		}
	}
	return nil
}

// sentMessage returns the kept message playerID sent with clientMsgID.
func (s store) sentMessage(r *roomRecord, playerID, clientMsgID string) (json.RawMessage, bool, error) {
	key := clientMsgKey(r.ID, playerID, clientMsgID)
	var id []byte
	if x := s.indexes[r.ID]; x != nil {
		seq, ok := x.ids[key]
		if !ok {
			return nil, false, nil
		}
		id = []byte(messageID(seq))
	} else {
		stored, ok, err := s.kv.Get(key)
		if err != nil || !ok {
			return nil, false, err
		}
		id = stored
	}
	if string(id) <= messageID(s.floor(r)) {
		// Out of the history but not yet deleted: delete it now, or the
		// bulk trim would later take the index entry that the message
		// about to be sent with this clientMsgId writes.
		return nil, false, s.kv.Delete(messagePrefix(r.ID) + string(id))
	}
	raw, ok, err := s.kv.Get(messagePrefix(r.ID) + string(id))
	if err != nil || !ok {
		return nil, false, err
	}
	return raw, true, nil
}

// selection picks a page of history (PROTOCOL.md "History selection"):
// with no bound the newest Limit messages, with Before the newest Limit
// older than it, with After the oldest Limit newer than it. Bounds compare
// as strings with message ids and need not exist.
type selection struct {
	Limit     int
	Before    string
	HasBefore bool
	After     string
	HasAfter  bool
}

// maxPageBytes bounds the encoded messages of one page, so that a page of
// long messages stays far below a socket's write queue limit. A page holds
// at least one message; a page cut short by it reports hasMore.
const maxPageBytes = 1 << 20

// history returns the selected messages, oldest first, and whether more
// exist beyond them in the selection's direction.
func (s store) history(r *roomRecord, sel selection) ([]json.RawMessage, bool, error) {
	prefix := messagePrefix(r.ID)
	// Messages up to the floor may still be stored, but are not history.
	opts := runtime.ListOptions{Prefix: prefix, Start: messageKey(r.ID, s.floor(r)+1), Limit: sel.Limit + 1, Reverse: true}
	switch {
	case sel.HasAfter:
		// The smallest key greater than prefix+After.
		opts.Start, opts.Reverse = max(opts.Start, prefix+sel.After+"\x00"), false
	case sel.HasBefore:
		opts.End = prefix + sel.Before
	}
	kvs, err := s.kv.List(opts)
	if err != nil {
		return nil, false, err
	}
	msgs := make([]json.RawMessage, 0, min(len(kvs), sel.Limit))
	size := 0
	hasMore := false
	for i, kv := range kvs {
		size += len(kv.Value)
		if i == sel.Limit || (i > 0 && size > maxPageBytes) {
			hasMore = true
			break
		}
		msgs = append(msgs, kv.Value)
	}
	if opts.Reverse {
		slices.Reverse(msgs)
	}
	return msgs, hasMore, nil
}
