package client

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/holocron-run/holocron/protocol"
)

// resumeLimit is the page size the client reads history with when it
// catches up by itself: the protocol's maximum.
const resumeLimit = 1000

// ChatClient talks to a ChatLobby over one WebSocket that it keeps alive
// across node failures, and to the lobby's REST endpoints. Its methods are
// safe for concurrent use. Drain Events and call Close when done.
type ChatClient struct {
	core *core
	base string // REST and WebSocket prefix: /api/lobby or /api/lobbies/{name}

	mu    sync.Mutex
	rooms map[string]*chatRoom
	seq   uint64 // join order, for rejoining in the same order
}

// chatRoom is a room the application joined: whom to rejoin it as, and its
// message stream.
type chatRoom struct {
	id, playerID, name string
	seq                uint64
	joined             bool    // the server confirmed a join
	leaving            bool    // LeaveRoom was called: never rejoin
	start              *string // the join's since, until a message is delivered
	stream             stream
}

// DialChat connects to the ChatLobby through one of addrs (node HTTP
// addresses such as "127.0.0.1:8081"; http:// and https:// URLs work too),
// trying each once, in random order unless opts.InOrder. ctx bounds this
// first connection only; after it, the client lives until Close or a
// terminal failure (a 4001 close, or a refused token), reconnecting by
// itself. To tie it to a context, use
// context.AfterFunc(ctx, func() { c.Close(context.Background()) }).
func DialChat(ctx context.Context, addrs []string, opts Options) (*ChatClient, error) {
	base := "/api/lobby"
	if opts.Lobby != "" {
		base = "/api/lobbies/" + url.PathEscape(opts.Lobby)
	}
	c := &ChatClient{base: base, rooms: map[string]*chatRoom{}}
	core, err := newCore(ctx, addrs, opts, base+"/websocket", c)
	if err != nil {
		return nil, fmt.Errorf("client: dial chat: %w", err)
	}
	c.core = core
	core.run()
	return c, nil
}

// Events delivers what happened without being asked for: *NewMessage,
// *UserJoined, *UserLeft, *ChatRejoined, *HistoryTruncated, *Error,
// *Disconnected, *Reconnected. Events are queued in memory until taken, so
// drain it. It is closed once the client stopped (see Err).
func (c *ChatClient) Events() <-chan Event { return c.core.events.out }

// Err is nil while the client runs; afterwards it says why it stopped:
// ErrClosed after Close, or the *Error that ended it (protocol.CodeUnauthorized).
func (c *ChatClient) Err() error { return c.core.stoppedErr() }

// Addr is the address of the node the client is (or was last) connected to.
func (c *ChatClient) Addr() string { return c.core.currentAddr() }

// Close closes the connection and stops every goroutine of the client,
// waiting for them unless ctx ends first. Requests still waiting fail with
// ErrClosed; undelivered events are dropped.
func (c *ChatClient) Close(ctx context.Context) error {
	if err := c.core.close(ctx); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// JoinRoom joins roomID as playerID with the given display name. The first
// join fixes the connection's player: later joins, on any room, must use
// the same playerID (else the server answers forbidden).
//
// The room's stream of *NewMessage starts right after the newest message
// the room had just before the join, so it opens with the player's own
// join entry and misses nothing after it. (For a private room, whose
// history only members may read, it starts at the newest message right
// after the join.) After a reconnect the client rejoins by itself and
// resumes the stream where it stopped.
//
// If ctx ends before the answer, the join may still have happened.
func (c *ChatClient) JoinRoom(ctx context.Context, roomID, playerID, name string) (*ChatJoined, error) {
	c.mu.Lock()
	_, existed := c.rooms[roomID]
	c.mu.Unlock()
	if !existed {
		// The stream's starting point: the newest message before the join.
		// A room that refuses the read (private, or missing: the join says
		// so) starts from a read after the join instead.
		if page, err := c.GetHistory(ctx, roomID, HistoryOptions{Limit: 1}); err == nil {
			since := ""
			if len(page.Messages) > 0 {
				since = page.Messages[0].ID
			}
			return c.join(ctx, roomID, playerID, name, &since)
		}
	}
	return c.join(ctx, roomID, playerID, name, nil)
}

// JoinRoomSince is JoinRoom whose stream starts right after the message
// since: every kept message newer than it is delivered first, as
// *NewMessage with FromHistory set. since "" starts at the room's oldest
// kept message.
func (c *ChatClient) JoinRoomSince(ctx context.Context, roomID, playerID, name, since string) (*ChatJoined, error) {
	return c.join(ctx, roomID, playerID, name, &since)
}

func (c *ChatClient) join(ctx context.Context, roomID, playerID, name string, since *string) (*ChatJoined, error) {
	c.mu.Lock()
	r, existed := c.rooms[roomID]
	if !existed {
		c.seq++
		r = &chatRoom{id: roomID, playerID: playerID, name: name, seq: c.seq, start: since}
		if since != nil {
			r.stream.last = *since
		}
		c.rooms[roomID] = r
	}
	c.mu.Unlock()

	body, err := json.Marshal(chatJoinFrame{Type: typeJoinRoom, RoomID: roomID, PlayerID: playerID, PlayerName: name, Since: since})
	if err != nil {
		return nil, fmt.Errorf("join room %s: %w", roomID, err)
	}
	var joined ChatJoined
	final := typeRoomJoined
	if since != nil {
		final = typeMessageHistory
	}
	cl := &call{body: body, final: final, retry: true, onFrame: func(env *envelope, raw []byte) {
		switch env.Type {
		case typeRoomJoined:
			if err := json.Unmarshal(raw, &joined); err != nil {
				c.core.log.Warn("holocron client: bad room_joined", "err", err)
			}
			c.mu.Lock()
			first := !r.joined
			r.joined, r.leaving = true, false
			c.mu.Unlock()
			if first && since == nil && !existed {
				c.readBaseline(roomID)
			}
		case typeMessageHistory:
			c.onPage(roomID, raw, pageResume)
		}
	}}
	if _, err := c.core.do(ctx, cl); err != nil {
		c.mu.Lock()
		if !existed && !r.joined && c.rooms[roomID] == r {
			delete(c.rooms, roomID)
		}
		c.mu.Unlock()
		return nil, fmt.Errorf("join room %s: %w", roomID, err)
	}
	return &joined, nil
}

// LeaveRoom leaves roomID. The client stops rejoining it at once, whatever
// the answer. A connection lost meanwhile counts as success: the server
// takes a closed socket out of its rooms, and the client does not rejoin.
func (c *ChatClient) LeaveRoom(ctx context.Context, roomID string) error {
	c.mu.Lock()
	player := c.playerLocked(roomID)
	r := c.rooms[roomID]
	if r != nil {
		r.leaving = true
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if r := c.rooms[roomID]; r != nil && r.leaving {
			delete(c.rooms, roomID)
		}
		c.mu.Unlock()
	}()
	if player == "" {
		return notInRoom(typeLeaveRoom, roomID)
	}
	body, err := json.Marshal(chatLeaveFrame{Type: typeLeaveRoom, RoomID: roomID, PlayerID: player})
	if err != nil {
		return fmt.Errorf("leave room %s: %w", roomID, err)
	}
	_, err = c.core.do(ctx, &call{body: body, final: typeRoomLeft, lostOK: true})
	if r != nil && IsCode(err, protocol.CodeNotInRoom) {
		// A room this client had joined, on a connection since replaced
		// and not rejoined: the socket is not in it, as asked.
		err = nil
	}
	if err != nil {
		return fmt.Errorf("leave room %s: %w", roomID, err)
	}
	return nil
}

// SendMessage sends content to roomID with a fresh clientMsgId and returns
// the stored message once the server acknowledged it. If the connection
// drops first, the client re-sends it with the same clientMsgId after
// reconnecting; the server stores it once, so the message is stored and
// acknowledged exactly once. If ctx ends first the message may or may not
// be stored: to retry it safely, use SendMessageWithID with your own id.
func (c *ChatClient) SendMessage(ctx context.Context, roomID, content string) (*ChatMessage, error) {
	return c.SendMessageWithID(ctx, roomID, NewClientMsgID(), content)
}

// NewClientMsgID returns a random clientMsgId (26 characters).
func NewClientMsgID() string { return rand.Text() }

// SendMessageWithID is SendMessage with the caller's clientMsgId (1..64
// characters), for applications that keep unsent messages across restarts:
// sending the same id again never stores a second copy while the first is
// in the room's kept history.
func (c *ChatClient) SendMessageWithID(ctx context.Context, roomID, clientMsgID, content string) (*ChatMessage, error) {
	c.mu.Lock()
	player := c.playerLocked(roomID)
	c.mu.Unlock()
	if player == "" {
		return nil, notInRoom(typeSendMessage, roomID)
	}
	body, err := json.Marshal(sendMessageFrame{Type: typeSendMessage, RoomID: roomID, PlayerID: player, Content: content, ClientMsgID: clientMsgID})
	if err != nil {
		return nil, fmt.Errorf("send message to %s: %w", roomID, err)
	}
	res, err := c.core.do(ctx, &call{body: body, final: typeNewMessage, retry: true})
	if err != nil {
		return nil, fmt.Errorf("send message to %s: %w", roomID, err)
	}
	var f newMessageFrame
	if err := json.Unmarshal(res.raw, &f); err != nil {
		return nil, fmt.Errorf("send message to %s: decode new_message: %w", roomID, err)
	}
	return &f.Message, nil
}

// GetHistory reads one page of roomID's history over the WebSocket (private
// rooms need a join). The page is the caller's: it does not feed the
// stream of Events.
func (c *ChatClient) GetHistory(ctx context.Context, roomID string, opts HistoryOptions) (*MessagePage, error) {
	f := getHistoryFrame{Type: typeGetHistory, RoomID: roomID, Limit: opts.Limit}
	if opts.Before != "" {
		f.Before = &opts.Before
	}
	if opts.After != "" || opts.FromStart {
		f.After = &opts.After
	}
	body, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("get history of %s: %w", roomID, err)
	}
	res, err := c.core.do(ctx, &call{body: body, final: typeMessageHistory, retry: true})
	if err != nil {
		return nil, fmt.Errorf("get history of %s: %w", roomID, err)
	}
	var page MessagePage
	if err := json.Unmarshal(res.raw, &page); err != nil {
		return nil, fmt.Errorf("get history of %s: decode: %w", roomID, err)
	}
	return &page, nil
}

// Ping sends a protocol ping to the lobby object and returns the round
// trip time.
func (c *ChatClient) Ping(ctx context.Context) (time.Duration, error) { return c.core.ping(ctx) }

// CreateRoom creates a room (POST /rooms).
func (c *ChatClient) CreateRoom(ctx context.Context, room NewChatRoom) (*ChatRoom, error) {
	var out ChatRoom
	if err := c.core.rest(ctx, http.MethodPost, c.base+"/rooms", room, &out); err != nil {
		return nil, fmt.Errorf("client: create room %s: %w", room.RoomID, err)
	}
	return &out, nil
}

// ListRooms lists the public rooms, oldest first (GET /rooms).
func (c *ChatClient) ListRooms(ctx context.Context) ([]ChatRoom, error) {
	var out struct {
		Rooms []ChatRoom `json:"rooms"`
	}
	if err := c.core.rest(ctx, http.MethodGet, c.base+"/rooms", nil, &out); err != nil {
		return nil, fmt.Errorf("client: list rooms: %w", err)
	}
	return out.Rooms, nil
}

// GetRoom returns one room (GET /rooms/{id}); private rooms too.
func (c *ChatClient) GetRoom(ctx context.Context, roomID string) (*ChatRoom, error) {
	var out ChatRoom
	if err := c.core.rest(ctx, http.MethodGet, c.base+"/rooms/"+url.PathEscape(roomID), nil, &out); err != nil {
		return nil, fmt.Errorf("client: get room %s: %w", roomID, err)
	}
	return &out, nil
}

// Messages reads one page of a public room's history over HTTP (GET
// /rooms/{id}/messages), with the same selection as GetHistory.
func (c *ChatClient) Messages(ctx context.Context, roomID string, opts HistoryOptions) (*MessagePage, error) {
	q := url.Values{}
	if opts.Limit != 0 {
		q.Set("limit", fmt.Sprint(opts.Limit))
	}
	if opts.Before != "" {
		q.Set("before", opts.Before)
	}
	if opts.After != "" || opts.FromStart {
		q.Set("after", opts.After)
	}
	path := c.base + "/rooms/" + url.PathEscape(roomID) + "/messages"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out MessagePage
	if err := c.core.rest(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, fmt.Errorf("client: messages of %s: %w", roomID, err)
	}
	return &out, nil
}

// playerLocked is the player the client acts as in roomID: the one it
// joined it as, else the connection's player from any other room (the
// server then answers not_in_room), else "". Called with c.mu held.
func (c *ChatClient) playerLocked(roomID string) string {
	if r := c.rooms[roomID]; r != nil {
		return r.playerID
	}
	for _, r := range c.rooms {
		if r.joined {
			return r.playerID
		}
	}
	return ""
}

// notInRoom is the answer the server would give a socket that has no
// player yet; the client gives it without asking, as it has no playerId to
// put in the frame.
func notInRoom(requestType, roomID string) *Error {
	return &Error{Code: protocol.CodeNotInRoom, Message: "not joined to room " + roomID, RequestType: requestType, RoomID: roomID}
}

// frame implements hooks: live chat frames become events.
func (c *ChatClient) frame(env *envelope, raw []byte, _ *call) {
	switch env.Type {
	case typeNewMessage:
		var f newMessageFrame
		if err := json.Unmarshal(raw, &f); err != nil {
			c.core.log.Warn("holocron client: bad new_message", "err", err)
			return
		}
		c.onLive(&NewMessage{Message: f.Message})
	case typeUserJoined, typeUserLeft:
		var p Presence
		if err := json.Unmarshal(raw, &p); err != nil {
			c.core.log.Warn("holocron client: bad "+env.Type, "err", err)
			return
		}
		if env.Type == typeUserJoined {
			c.core.events.push(&UserJoined{p})
		} else {
			c.core.events.push(&UserLeft{p})
		}
		c.onPresence(p.RoomID)
	}
	// room_joined, room_left, message_history and pong are answers: their
	// calls took them. One whose caller gave up is dropped.
}

// onLive puts a live message into its room's stream.
func (c *ChatClient) onLive(m *NewMessage) {
	c.mu.Lock()
	r := c.rooms[m.Message.RoomID]
	if r == nil {
		c.mu.Unlock()
		return
	}
	out := r.stream.offer(m)
	fill := r.stream.gap() && !r.stream.filling
	c.mu.Unlock()
	c.deliver(out)
	if fill {
		c.fill(m.Message.RoomID)
	}
}

// onPresence reads the history entry a join or leave wrote: the server
// announces it only as presence, and it belongs in the stream.
func (c *ChatClient) onPresence(roomID string) {
	c.mu.Lock()
	r := c.rooms[roomID]
	if r != nil && r.stream.filling {
		r.stream.stale = true
		r = nil
	}
	c.mu.Unlock()
	if r != nil {
		c.fill(roomID)
	}
}

func (c *ChatClient) deliver(out []*NewMessage) {
	for _, m := range out {
		c.core.events.push(m)
	}
}

// Kinds of history page the client reads for its streams.
const (
	pageResume   = iota // the message_history answering a join with since
	pageFill            // get_history after the last delivered message
	pageBaseline        // the newest message, for a join without since
)

// fill reads the messages after the last one delivered, unless a read is
// in flight or the stream has no starting point yet.
func (c *ChatClient) fill(roomID string) {
	c.mu.Lock()
	r := c.rooms[roomID]
	if r == nil || r.stream.filling || r.stream.last == "" {
		c.mu.Unlock()
		return
	}
	r.stream.filling, r.stream.stale = true, false
	after := r.stream.last
	c.mu.Unlock()
	body, _ := json.Marshal(getHistoryFrame{Type: typeGetHistory, RoomID: roomID, Limit: resumeLimit, After: &after})
	if err := c.core.start(&call{body: body, final: typeMessageHistory, internal: true, onFrame: func(env *envelope, raw []byte) {
		if isFailure(env.Type) {
			c.mu.Lock()
			if r := c.rooms[roomID]; r != nil {
				r.stream.filling = false
			}
			c.mu.Unlock()
			c.core.log.Warn("holocron client: reading history failed", "room", roomID, "err", env.failure())
			return
		}
		c.onPage(roomID, raw, pageFill)
	}}); err != nil {
		c.mu.Lock()
		r.stream.filling = false
		c.mu.Unlock()
	}
}

// readBaseline reads the room's newest message, where the stream of a join
// without since starts.
func (c *ChatClient) readBaseline(roomID string) {
	body, _ := json.Marshal(getHistoryFrame{Type: typeGetHistory, RoomID: roomID, Limit: 1})
	_ = c.core.start(&call{body: body, final: typeMessageHistory, internal: true, onFrame: func(env *envelope, raw []byte) {
		if !isFailure(env.Type) {
			c.onPage(roomID, raw, pageBaseline)
		}
	}})
}

// onPage feeds a history page into the room's stream.
func (c *ChatClient) onPage(roomID string, raw []byte, kind int) {
	var f historyFrame
	if err := json.Unmarshal(raw, &f); err != nil {
		c.core.log.Warn("holocron client: bad message_history", "err", err)
		return
	}
	msgs := make([]*NewMessage, len(f.Messages))
	for i := range f.Messages {
		msgs[i] = &NewMessage{Message: f.Messages[i], FromHistory: true}
	}
	c.mu.Lock()
	r := c.rooms[roomID]
	if r == nil {
		c.mu.Unlock()
		return
	}
	prev := r.stream.last
	var out []*NewMessage
	var skipped, again bool
	switch kind {
	case pageBaseline:
		if r.stream.last == "" {
			out, _ = r.stream.page(msgs, false)
		} else {
			for _, m := range msgs {
				out = append(out, r.stream.offer(m)...)
			}
			again = r.stream.gap()
		}
	case pageFill:
		r.stream.filling = false
		out, skipped = r.stream.page(msgs, f.HasMore)
		again = f.HasMore || r.stream.stale
	case pageResume:
		out, skipped = r.stream.page(msgs, f.HasMore)
		again = f.HasMore
	}
	c.mu.Unlock()
	if f.Truncated || skipped {
		c.core.events.push(&HistoryTruncated{RoomID: roomID, After: prev})
	}
	c.deliver(out)
	if again {
		c.fill(roomID)
	}
}

// rejoin implements hooks: join every room again, in the order they were
// joined, resuming each stream after its last delivered message.
func (c *ChatClient) rejoin() []*call {
	c.mu.Lock()
	rooms := make([]*chatRoom, 0, len(c.rooms))
	for _, r := range c.rooms {
		if r.joined && !r.leaving {
			rooms = append(rooms, r)
		}
	}
	slices.SortFunc(rooms, func(a, b *chatRoom) int { return cmp.Compare(a.seq, b.seq) })
	calls := make([]*call, 0, len(rooms))
	for _, r := range rooms {
		f := chatJoinFrame{Type: typeJoinRoom, RoomID: r.id, PlayerID: r.playerID, PlayerName: r.name}
		final := typeRoomJoined
		switch {
		case r.stream.last != "":
			since := r.stream.last
			f.Since, final = &since, typeMessageHistory
		case r.start != nil:
			// Nothing delivered yet: start where the application asked.
			f.Since, final = r.start, typeMessageHistory
		}
		body, _ := json.Marshal(f)
		calls = append(calls, &call{body: body, final: final, internal: true, onFrame: c.onRejoin(r.id, f.Since == nil)})
	}
	c.mu.Unlock()
	return calls
}

// onRejoin handles the answers to an automatic rejoin.
func (c *ChatClient) onRejoin(roomID string, baseline bool) func(*envelope, []byte) {
	return func(env *envelope, raw []byte) {
		switch {
		case isFailure(env.Type):
			if retryable(env.failure().Code) {
				// The room's object is moving or busy: try again on a
				// new connection rather than give the room up.
				c.core.dropConnection()
				return
			}
			c.mu.Lock()
			r := c.rooms[roomID]
			leaving := r != nil && r.leaving
			delete(c.rooms, roomID)
			c.mu.Unlock()
			if !leaving {
				c.core.events.push(env.failure())
			}
		case env.Type == typeRoomJoined:
			var j ChatJoined
			if err := json.Unmarshal(raw, &j); err != nil {
				c.core.log.Warn("holocron client: bad room_joined", "err", err)
			}
			c.core.events.push(&ChatRejoined{j})
			if baseline {
				c.readBaseline(roomID)
			}
		case env.Type == typeMessageHistory:
			c.onPage(roomID, raw, pageResume)
		}
	}
}

// retryable reports whether a refused rejoin is worth another connection.
func retryable(code string) bool {
	return code == protocol.CodeUnavailable || code == protocol.CodeInternal || code == protocol.CodeRateLimited
}

// lost implements hooks: reads in flight died with the connection; the
// resume on rejoin covers them.
func (c *ChatClient) lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.rooms {
		r.stream.filling, r.stream.stale = false, false
	}
}
