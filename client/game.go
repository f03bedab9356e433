package client

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/holocron-run/holocron/protocol"
)

// gameBase is the RoomManager's REST and WebSocket prefix.
const gameBase = "/api/room-manager"

// GameClient talks to the RoomManager over one WebSocket that it keeps
// alive across node failures, and to its REST endpoints. Its methods are
// safe for concurrent use. Drain Events and call Close when done.
//
// Game membership is durable on the server: a dropped socket keeps its
// player in the room, and the client rejoins every room by itself after a
// reconnect, reporting the room's current state as *GameRejoined.
type GameClient struct {
	core *core

	mu    sync.Mutex
	rooms map[string]*gameRoom
	seq   uint64
}

// gameRoom is a room the application joined: whom to rejoin it as.
type gameRoom struct {
	id, playerID, name string
	spectator          bool
	seq                uint64
	joined             bool // the server confirmed a join
	leaving            bool // LeaveRoom is in flight
}

// DialGame connects to the RoomManager through one of addrs; see DialChat
// for the addresses, ctx and the client's lifetime.
func DialGame(ctx context.Context, addrs []string, opts Options) (*GameClient, error) {
	g := &GameClient{rooms: map[string]*gameRoom{}}
	core, err := newCore(ctx, addrs, opts, gameBase+"/websocket", g)
	if err != nil {
		return nil, fmt.Errorf("client: dial game: %w", err)
	}
	g.core = core
	core.run()
	return g, nil
}

// Events delivers the rooms' frames and the connection's changes:
// *PlayerJoined, *PlayerLeft, *RoomLeft, *GameStarted, *ScoreUpdated,
// *GameAction, *GameEnded, *GameRejoined, *Error, *Disconnected,
// *Reconnected. The client's own actions come back here too, like
// everyone's. Events are queued in memory until taken, so drain it. It is
// closed once the client stopped (see Err).
func (g *GameClient) Events() <-chan Event { return g.core.events.out }

// Err is nil while the client runs; afterwards it says why it stopped.
func (g *GameClient) Err() error { return g.core.stoppedErr() }

// Addr is the address of the node the client is (or was last) connected to.
func (g *GameClient) Addr() string { return g.core.currentAddr() }

// Close closes the connection and stops every goroutine of the client,
// waiting for them unless ctx ends first.
func (g *GameClient) Close(ctx context.Context) error {
	if err := g.core.close(ctx); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

// JoinRoom joins roomID as player playerID named name: a new player of a
// waiting room, or a returning player of a room in any status. The first
// join fixes the connection's player.
func (g *GameClient) JoinRoom(ctx context.Context, roomID, playerID, name string) (*GameJoined, error) {
	return g.join(ctx, roomID, playerID, name, false)
}

// Spectate joins roomID to watch it: every room frame, no say in the game.
// A player of the room joins as that player anyway (GameJoined.Spectator
// tells).
func (g *GameClient) Spectate(ctx context.Context, roomID, playerID, name string) (*GameJoined, error) {
	return g.join(ctx, roomID, playerID, name, true)
}

func (g *GameClient) join(ctx context.Context, roomID, playerID, name string, spectator bool) (*GameJoined, error) {
	body, err := json.Marshal(gameJoinFrame{Type: typeJoinRoom, RoomID: roomID, PlayerID: playerID, PlayerName: name, Spectator: spectator})
	if err != nil {
		return nil, fmt.Errorf("join room %s: %w", roomID, err)
	}
	res, err := g.core.do(ctx, &call{body: body, final: typeRoomJoined, retry: true, onFrame: func(env *envelope, raw []byte) {
		if env.Type != typeRoomJoined {
			return
		}
		// Record the membership as soon as the server confirms it, so a
		// reconnect right after rejoins it even if the caller gave up.
		var j GameJoined
		_ = json.Unmarshal(raw, &j)
		g.mu.Lock()
		r := g.rooms[roomID]
		if r == nil {
			g.seq++
			r = &gameRoom{id: roomID, seq: g.seq}
			g.rooms[roomID] = r
		}
		r.playerID, r.name, r.spectator, r.joined = playerID, name, j.Spectator, true
		g.mu.Unlock()
	}})
	if err != nil {
		return nil, fmt.Errorf("join room %s: %w", roomID, err)
	}
	var j GameJoined
	if err := json.Unmarshal(res.raw, &j); err != nil {
		return nil, fmt.Errorf("join room %s: decode room_joined: %w", roomID, err)
	}
	return &j, nil
}

// LeaveRoom leaves roomID for good (a player's place is durable until
// then). If the connection drops first, the client rejoins the room on the
// next one and sends the leave again, until the server confirms it.
func (g *GameClient) LeaveRoom(ctx context.Context, roomID string) error {
	g.mu.Lock()
	if r := g.rooms[roomID]; r != nil {
		r.leaving = true
	}
	g.mu.Unlock()
	err := g.request(ctx, typeLeaveRoom, roomID,
		&call{final: typeRoomLeft, retry: true, okOnRetry: protocol.CodeNotInRoom},
		func(player string) any { return gameRoomFrame{Type: typeLeaveRoom, RoomID: roomID, PlayerID: player} },
		nil)
	g.mu.Lock()
	if r := g.rooms[roomID]; r != nil {
		if err == nil {
			delete(g.rooms, roomID)
		} else {
			r.leaving = false
		}
	}
	g.mu.Unlock()
	return err
}

// StartGame starts the game of a waiting room with at least two players.
// It returns once the server confirmed; *GameStarted follows on Events.
// Not repeated after a lost connection (ErrConnectionLost).
func (g *GameClient) StartGame(ctx context.Context, roomID string) error {
	return g.request(ctx, typeStartGame, roomID, &call{final: typeGameStartedSuccess},
		func(player string) any { return gameRoomFrame{Type: typeStartGame, RoomID: roomID, PlayerID: player} },
		nil)
}

// UpdateScore sets the player's score (absolute, so repeating it is
// harmless: it is re-sent after a reconnect) and returns the room's
// score_updated.
func (g *GameClient) UpdateScore(ctx context.Context, roomID string, score float64) (*ScoreUpdated, error) {
	var out ScoreUpdated
	err := g.request(ctx, typeUpdateScore, roomID, &call{final: typeScoreUpdated, retry: true},
		func(player string) any {
			return updateScoreFrame{Type: typeUpdateScore, RoomID: roomID, PlayerID: player, Score: score}
		}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// GameAction records an action (1..64 characters) with optional data
// (anything json.Marshal takes, or json.RawMessage; at most 16 KiB) and
// returns it as the room saw it. An ActionEndTurn may end the game on
// rounds: *GameEnded follows on Events. Not repeated after a lost
// connection.
func (g *GameClient) GameAction(ctx context.Context, roomID, action string, data any) (*GameAction, error) {
	var raw json.RawMessage
	if data != nil {
		var err error
		if raw, err = json.Marshal(data); err != nil {
			return nil, fmt.Errorf("game_action in %s: encode data: %w", roomID, err)
		}
	}
	var out GameAction
	err := g.request(ctx, typeGameAction, roomID, &call{final: typeGameAction},
		func(player string) any {
			return gameActionFrame{Type: typeGameAction, RoomID: roomID, PlayerID: player, Action: action, Data: raw}
		}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// EndGame ends a playing game (reason "ended") and returns its
// game_ended. Not repeated after a lost connection.
func (g *GameClient) EndGame(ctx context.Context, roomID string) (*GameEnded, error) {
	var out GameEnded
	err := g.request(ctx, typeEndGame, roomID, &call{final: typeGameEnded},
		func(player string) any { return gameRoomFrame{Type: typeEndGame, RoomID: roomID, PlayerID: player} },
		&out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Ping sends a protocol ping to the RoomManager and returns the round trip
// time.
func (g *GameClient) Ping(ctx context.Context) (time.Duration, error) { return g.core.ping(ctx) }

// CreateRoom creates a game room (POST /rooms).
func (g *GameClient) CreateRoom(ctx context.Context, room NewGameRoom) (*GameRoom, error) {
	var out GameRoom
	if err := g.core.rest(ctx, http.MethodPost, gameBase+"/rooms", room, &out); err != nil {
		return nil, fmt.Errorf("client: create room %s: %w", room.RoomID, err)
	}
	return &out, nil
}

// ListRooms lists every game room, finished ones too, oldest first.
func (g *GameClient) ListRooms(ctx context.Context) ([]GameRoom, error) {
	var out struct {
		Rooms []GameRoom `json:"rooms"`
	}
	if err := g.core.rest(ctx, http.MethodGet, gameBase+"/rooms", nil, &out); err != nil {
		return nil, fmt.Errorf("client: list rooms: %w", err)
	}
	return out.Rooms, nil
}

// GetRoom returns a room and its play state.
func (g *GameClient) GetRoom(ctx context.Context, roomID string) (*GameRoomState, error) {
	var out GameRoomState
	if err := g.core.rest(ctx, http.MethodGet, gameBase+"/rooms/"+url.PathEscape(roomID), nil, &out); err != nil {
		return nil, fmt.Errorf("client: get room %s: %w", roomID, err)
	}
	return &out, nil
}

// request sends c, a typ request about roomID whose frame frame builds for
// the room's player, and decodes its final frame into out (if not nil).
func (g *GameClient) request(ctx context.Context, typ, roomID string, c *call, frame func(player string) any, out any) error {
	g.mu.Lock()
	player := g.playerLocked(roomID)
	g.mu.Unlock()
	if player == "" {
		return notInRoom(typ, roomID)
	}
	body, err := json.Marshal(frame(player))
	if err != nil {
		return fmt.Errorf("%s in %s: %w", typ, roomID, err)
	}
	c.body = body
	res, err := g.core.do(ctx, c)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", typ, roomID, err)
	}
	if out != nil && res.raw != nil {
		if err := json.Unmarshal(res.raw, out); err != nil {
			return fmt.Errorf("%s in %s: decode %s: %w", typ, roomID, c.final, err)
		}
	}
	return nil
}

// playerLocked is the player the client acts as in roomID (see the chat
// client's). Called with g.mu held.
func (g *GameClient) playerLocked(roomID string) string {
	if r := g.rooms[roomID]; r != nil {
		return r.playerID
	}
	for _, r := range g.rooms {
		return r.playerID
	}
	return ""
}

// frame implements hooks: room frames become events.
func (g *GameClient) frame(env *envelope, raw []byte, c *call) {
	var ev Event
	switch env.Type {
	case typePlayerJoined:
		ev = new(PlayerJoined)
	case typePlayerLeft:
		ev = new(PlayerLeft)
	case typeGameStarted:
		ev = new(GameStarted)
	case typeScoreUpdated:
		ev = new(ScoreUpdated)
	case typeGameAction:
		ev = new(GameAction)
	case typeGameEnded:
		ev = new(GameEnded)
	case typeRoomLeft:
		if c != nil {
			return // the answer to our own LeaveRoom
		}
		// Another socket of this player left the room for all of them.
		g.mu.Lock()
		delete(g.rooms, env.RoomID)
		g.mu.Unlock()
		ev = new(RoomLeft)
	default:
		return // answers (room_joined, game_started_success, pong) went to their calls
	}
	if err := json.Unmarshal(raw, ev); err != nil {
		g.core.log.Warn("holocron client: bad "+env.Type, "err", err)
		return
	}
	g.core.events.push(ev)
}

// rejoin implements hooks: join every room again as the same player (or
// spectator), in the order they were joined.
func (g *GameClient) rejoin() []*call {
	g.mu.Lock()
	rooms := make([]*gameRoom, 0, len(g.rooms))
	for _, r := range g.rooms {
		if r.joined {
			rooms = append(rooms, r)
		}
	}
	slices.SortFunc(rooms, func(a, b *gameRoom) int { return cmp.Compare(a.seq, b.seq) })
	calls := make([]*call, 0, len(rooms))
	for _, r := range rooms {
		body, _ := json.Marshal(gameJoinFrame{Type: typeJoinRoom, RoomID: r.id, PlayerID: r.playerID, PlayerName: r.name, Spectator: r.spectator})
		calls = append(calls, &call{body: body, final: typeRoomJoined, internal: true, onFrame: g.onRejoin(r.id)})
	}
	g.mu.Unlock()
	return calls
}

// onRejoin handles the answer to an automatic rejoin.
func (g *GameClient) onRejoin(roomID string) func(*envelope, []byte) {
	return func(env *envelope, raw []byte) {
		if isFailure(env.Type) {
			if retryable(env.failure().Code) {
				g.core.dropConnection()
				return
			}
			g.mu.Lock()
			r := g.rooms[roomID]
			leaving := r != nil && r.leaving
			delete(g.rooms, roomID)
			g.mu.Unlock()
			if !leaving {
				g.core.events.push(env.failure())
			}
			return
		}
		if env.Type != typeRoomJoined {
			return
		}
		var j GameRejoined
		if err := json.Unmarshal(raw, &j.GameJoined); err != nil {
			g.core.log.Warn("holocron client: bad room_joined", "err", err)
			return
		}
		g.core.events.push(&j)
	}
}

// lost implements hooks; the game client keeps no reads in flight.
func (g *GameClient) lost() {}
