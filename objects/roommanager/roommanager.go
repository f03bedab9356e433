// Package roommanager is the RoomManager object: multiplayer game rooms with
// durable membership, scores, turns and a game clock (PROTOCOL.md
// "RoomManager").
//
// One object (name "main") holds every room. Between events it keeps
// nothing in memory but the sockets' rate limiters: rooms live in storage,
// and what belongs to a socket — the player it speaks for and the rooms it
// joined — lives on the socket (its attachment and "room:<id>" tags), which
// survives hibernation. A fresh instance built by the constructor therefore
// carries on where the evicted one stopped, and a restarted node finds
// every room and game clock again.
//
// The path of one request through this package: OnMessage decodes the frame
// and picks the handler (handlers.go), which validates the fields, loads the
// room, checks who may act (authorize), writes the new room record and then
// emits frames: the actor's reply with ws.Send, the room's frame with
// State.Broadcast. The runtime commits the writes before any frame leaves.
package roommanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/objects/leaderboard"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// ClassName is the class RoomManager objects are registered under.
const ClassName = "RoomManager"

// Options configure RoomManager objects. Zero fields take the documented
// defaults.
type Options struct {
	// MaxRooms bounds the game rooms of one RoomManager (rooms are kept
	// once created): creating one more answers limit_exceeded (HTTP 429),
	// so a client cannot fill the object's storage. Default 10000.
	MaxRooms int
}

func (o *Options) setDefaults() {
	if o.MaxRooms <= 0 {
		o.MaxRooms = 10000
	}
}

// MaxRoomsPerSocket bounds the rooms one socket is joined to at once.
const MaxRoomsPerSocket = 100

// Manager is one RoomManager object instance.
type Manager struct {
	state *runtime.State
	rooms rooms
	opts  Options
}

// New returns the constructor of RoomManager objects, for
// runtime.Registry.Register(ClassName, New(opts)).
func New(opts Options) runtime.Constructor {
	opts.setDefaults()
	return func(s *runtime.State) (runtime.Object, error) {
		return &Manager{
			state: s,
			rooms: rooms{st: s.Storage()},
			opts:  opts,
		}, nil
	}
}

var (
	_ runtime.Object           = (*Manager)(nil)
	_ runtime.WebSocketHandler = (*Manager)(nil)
	_ runtime.AlarmHandler     = (*Manager)(nil)
)

// now is the object's clock, truncated to the millisecond that timestamps
// show, so that a rendered time is exactly the stored one.
func (m *Manager) now() time.Time { return m.state.Now().UTC().Truncate(time.Millisecond) }

// identity is what a socket's attachment holds: the player its first
// successful join_room fixed.
type identity struct {
	PlayerID   string `json:"playerId"`
	PlayerName string `json:"playerName"`
}

func identityOf(ws *runtime.WebSocket) identity {
	var id identity
	if _, err := ws.Attachment(&id); err != nil {
		id = identity{}
	}
	if p, ok := ws.Principal(); ok && id.PlayerID == "" {
		// An authenticated socket's player is its token's, from the start.
		id = identity{PlayerID: p.ID, PlayerName: p.Name}
	}
	return id
}

// roomTagPrefix starts the tags of the sockets joined to a room;
// Broadcast(roomTag(id)) is "to the room". A socket's tags are also its
// list of rooms: like attachments, they survive hibernation.
const roomTagPrefix = "room:"

func roomTag(roomID string) string { return roomTagPrefix + roomID }

// roomsOf counts the rooms ws is joined to.
func roomsOf(ws *runtime.WebSocket) int {
	n := 0
	for _, tag := range ws.Tags() {
		if strings.HasPrefix(tag, roomTagPrefix) {
			n++
		}
	}
	return n
}

// connected returns the players of rec with an open socket joined to it, in
// join order.
func (m *Manager) connected(rec *roomRecord) []string {
	online := map[string]bool{}
	for _, ws := range m.state.GetWebSockets(roomTag(rec.ID)) {
		online[identityOf(ws).PlayerID] = true
	}
	out := []string{}
	for _, p := range rec.Players {
		if online[p.ID] {
			out = append(out, p.ID)
		}
	}
	return out
}

// gameState renders a room's GameState, reading its kept actions and final
// scores.
func (m *Manager) gameState(rec *roomRecord) (GameState, error) {
	actions, err := m.rooms.actions(rec.ID)
	if err != nil {
		return GameState{}, err
	}
	final, err := m.rooms.final(rec.ID)
	if err != nil {
		return GameState{}, err
	}
	return GameState{
		RoomID:      rec.ID,
		CurrentTurn: rec.CurrentTurn,
		Players:     rec.players(),
		GameData:    GameData{Actions: actions, FinalScores: final},
		LastUpdate:  timestamp(rec.LastUpdate),
	}, nil
}

// send sends frame to one socket.
func send(ws *runtime.WebSocket, frame any) { ws.Send(encode(frame)) }

// toRoom sends frame to every socket joined to the room. With a requestID,
// the actor's own copy echoes it (PROTOCOL.md: where the only reply is a
// room frame).
func (m *Manager) toRoom(roomID string, frame roomFrame, actor *runtime.WebSocket, requestID string) {
	tag := roomTag(roomID)
	plain := encode(frame)
	if requestID == "" || actor == nil || !actor.HasTag(tag) {
		m.state.Broadcast(tag, plain)
		return
	}
	frame.setRequestID(requestID)
	echoed := encode(frame)
	frame.setRequestID("")
	for _, ws := range m.state.GetWebSockets(tag) {
		if ws == actor {
			ws.Send(echoed)
		} else {
			ws.Send(plain)
		}
	}
}

// encode marshals a frame. Frames are typed structs whose only free-form
// part (action data) was validated as JSON, so failure is a bug.
func encode(frame any) []byte {
	raw, err := json.Marshal(frame)
	if err != nil {
		panic(fmt.Errorf("roommanager: encode %T: %w", frame, err))
	}
	return raw
}

// OnMessage handles one client frame. A frame that fails changes nothing:
// the handler's writes run in a nested transaction that is dropped on
// failure, and handlers touch sockets and send frames only once every
// fallible step is behind them.
func (m *Manager) OnMessage(ctx context.Context, ws *runtime.WebSocket, msg runtime.Message) {
	frame, perr := frame.DecodeFrame(msg.Data, msg.Binary)
	req := &request{ws: ws, who: identityOf(ws)}
	if frame != nil {
		req.frame, req.typ, req.requestID = frame, frame.Type, frame.RequestID
	}
	if perr != nil {
		m.fail(req, perr)
		return
	}
	var handle func(*request) error
	switch frame.Type {
	case protocol.TypePing:
		send(ws, &Pong{Type: protocol.TypePong, echo: echo{req.requestID}})
		return
	case TypeJoinRoom:
		handle = m.joinRoom
	case TypeLeaveRoom:
		handle = m.leaveRoom
	case TypeStartGame:
		handle = m.startGame
	case TypeUpdateScore:
		handle = m.updateScore
	case TypeGameAction:
		handle = m.gameAction
	case TypeEndGame:
		handle = m.endGame
	default:
		m.fail(req, &protocol.Error{Code: protocol.CodeUnknownType, Message: protocol.MessageUnknownType})
		return
	}
	err := m.state.Storage().Transaction(func(*runtime.Storage) error { return handle(req) })
	if err != nil {
		var pe *protocol.Error
		if !errors.As(err, &pe) {
			m.state.Logger().Error("roommanager: request failed", "type", req.typ, "room", req.roomID, "err", err)
			pe = &protocol.Error{Code: protocol.CodeInternal, Message: "internal error"}
		}
		m.fail(req, pe)
	}
}

// OnClose only forgets the socket's rate limiter: membership is durable,
// and presence (connected) is read from the open sockets, which no longer
// include ws.
func (m *Manager) OnClose(ctx context.Context, ws *runtime.WebSocket, code int, reason string) {}

// OnError answers a message the runtime refused before OnMessage.
func (m *Manager) OnError(ctx context.Context, ws *runtime.WebSocket, err error) {
	pe := &protocol.Error{Code: protocol.CodeInternal, Message: "internal error"}
	if errors.Is(err, runtime.ErrMessageTooLarge) {
		pe = &protocol.Error{Code: protocol.CodeTooLarge, Message: protocol.MessageTooLarge}
	}
	m.fail(&request{ws: ws}, pe)
}

// OnAlarm ends every game whose clock ran out (endsAt ≤ now, never
// earlier) and re-arms the alarm for the earliest remaining deadline.
//
// The alarm is one per object; it always points at or before the earliest
// deadline in the clock index, so a due game is never missed. It may be
// earlier than needed (a game ended before its clock): then this finds
// nothing due and just re-arms. It must be re-armed here even when it
// would not move: the runtime deletes an alarm that the handler leaves
// untouched.
func (m *Manager) OnAlarm(ctx context.Context) error {
	var ended []*GameEnded
	err := m.state.Storage().Transaction(func(*runtime.Storage) error {
		now := m.now()
		due, err := m.rooms.dueClocks(now)
		if err != nil {
			return err
		}
		for _, key := range due {
			endsAt, roomID, err := parseClockKey(key)
			if err != nil {
				return err
			}
			rec, err := m.rooms.get(roomID)
			if err != nil {
				return err
			}
			if rec == nil || rec.Status != StatusPlaying || !rec.EndsAt.Equal(endsAt) || rec.EndsAt.After(now) {
				// A stale index entry; the game it timed is gone.
				if err := m.state.Storage().Delete(key); err != nil {
					return err
				}
				continue
			}
			frame, err := m.finish(rec, ReasonClock, now, rec.finalScores())
			if err != nil {
				return err
			}
			if err := m.rooms.put(rec); err != nil {
				return err
			}
			ended = append(ended, frame)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("roommanager: game clock: %w", err)
	}
	for _, f := range ended {
		m.toRoom(f.RoomID, f, nil, "")
	}
	retry, err := m.postResults(ctx)
	if err != nil {
		return fmt.Errorf("roommanager: post results: %w", err)
	}
	next, ok, err := m.rooms.nextClock()
	if err != nil {
		return fmt.Errorf("roommanager: game clock: %w", err)
	}
	if !retry.IsZero() && (!ok || retry.Before(next)) {
		next, ok = retry, true
	}
	if !ok {
		return nil
	}
	return m.state.Storage().SetAlarm(next)
}

// Posting final scores: how long one post may take (the manager handles
// nothing else meanwhile), how many one alarm sends, and the longest wait
// between a failed post's retries.
const (
	postTimeout  = 5 * time.Second
	postsPerRun  = 16
	postMaxDelay = time.Minute
)

// postResults posts the pending final scores that are due to their
// leaderboards, each as a call, and returns when the next of those left
// is due (zero: none left). A post whose answer is lost (the board's owner
// died, the call timed out) is sent again later: the board records each
// game once (leaderboard.GameResults), so the scores count exactly once.
// A post the board refuses as malformed is dropped, and logged.
func (m *Manager) postResults(ctx context.Context) (time.Time, error) {
	st := m.state.Storage()
	posts, keys, err := m.rooms.posts()
	if err != nil {
		return time.Time{}, err
	}
	now, sent := m.now(), 0
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, key := range keys {
		p := posts[key]
		if p.NextTry.After(now) {
			later(p.NextTry)
			continue
		}
		if sent == postsPerRun {
			later(now) // the rest in the next run, soon
			continue
		}
		sent++
		done, err := m.post(ctx, p)
		if done {
			if err != nil {
				m.state.Logger().Warn("final scores refused by their leaderboard; dropped", "board", p.Board, "game", p.Game, "err", err)
			}
			if err := st.Delete(key); err != nil {
				return time.Time{}, err
			}
			if err == nil {
				if err := m.posted(p); err != nil {
					return time.Time{}, err
				}
			}
			continue
		}
		p.Attempts++
		p.LastErr = err.Error()
		p.NextTry = m.now().Add(min(time.Second<<min(p.Attempts-1, 10), postMaxDelay))
		m.state.Logger().Info("final scores not posted yet; will retry", "board", p.Board, "game", p.Game, "attempts", p.Attempts, "retry_at", p.NextTry, "err", err)
		if err := putJSON(st, key, p); err != nil {
			return time.Time{}, err
		}
		later(p.NextTry)
	}
	return next, nil
}

// posted records on p's room, if it is still the room of p's game, that
// its final scores are on their leaderboard.
func (m *Manager) posted(p pendingPost) error {
	rec, err := m.rooms.get(p.RoomID)
	if err != nil || rec == nil || rec.Seq != p.RoomSeq {
		return err
	}
	rec.LeaderboardPosted = true
	return m.rooms.put(rec)
}

// post sends p to its leaderboard. done: the board answered (err is its
// refusal, if any); otherwise err says why the post must be tried again.
func (m *Manager) post(ctx context.Context, p pendingPost) (done bool, err error) {
	in := leaderboard.GameResults{Game: p.Game, Scores: make([]leaderboard.GameResult, len(p.Scores))}
	for i, s := range p.Scores {
		in.Scores[i] = leaderboard.GameResult{PlayerID: s.PlayerID, PlayerName: s.PlayerName, Score: s.FinalScore}
	}
	body, err := json.Marshal(in)
	if err != nil {
		return true, err
	}
	req, err := http.NewRequest(http.MethodPost, leaderboard.GameResultsPath, bytes.NewReader(body))
	if err != nil {
		return true, err
	}
	req.Header.Set("Content-Type", "application/json")
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	resp, err := m.state.Namespace(leaderboard.ClassName).GetByName(p.Board).Fetch(ctx, req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusOK:
		return true, nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		return true, fmt.Errorf("leaderboard answered %d: %s", resp.StatusCode, msg)
	default:
		return false, fmt.Errorf("leaderboard answered %d: %s", resp.StatusCode, msg)
	}
}

// finish ends rec's game: every player finished, the clock stopped, the
// final scores stored. The caller stores rec and sends the returned frame.
func (m *Manager) finish(rec *roomRecord, reason string, now time.Time, scores []FinalScore) (*GameEnded, error) {
	if err := m.rooms.stopClock(rec); err != nil {
		return nil, err
	}
	if err := m.rooms.putFinal(rec.ID, scores); err != nil {
		return nil, err
	}
	if board := rec.Settings.Leaderboard; board != "" {
		p := pendingPost{RoomID: rec.ID, RoomSeq: rec.Seq, Board: board, Game: fmt.Sprintf("%s/%s/%d", m.state.ID(), rec.ID, rec.Seq), Scores: scores, NextTry: now}
		if err := putJSON(m.state.Storage(), postKey(rec), p); err != nil {
			return nil, err
		}
		if err := m.rooms.alarmNoLaterThan(now); err != nil {
			return nil, err
		}
	}
	rec.Status = StatusFinished
	rec.EndedAt = now
	rec.EndReason = reason
	rec.LastUpdate = now
	rec.setPlayerStatus(PlayerFinished)
	return &GameEnded{
		Type:        TypeGameEnded,
		RoomID:      rec.ID,
		EndedAt:     timestamp(now),
		Reason:      reason,
		FinalScores: scores,
	}, nil
}
