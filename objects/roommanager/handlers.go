package roommanager

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// request is one client frame being handled.
type request struct {
	ws        *runtime.WebSocket
	who       identity // the socket's player; zero before its first join
	frame     *frame.Frame
	typ       string // frame type, when it has one
	requestID string
	roomID    string // once validated, for failure frames
}

// fail sends the failure frame of req's type: join_failed, start_game_failed
// or error.
func (m *Manager) fail(req *request, pe *protocol.Error) {
	f := Failure{ErrorFrame: protocol.ErrorFrame{
		Type:        protocol.TypeError,
		Code:        pe.Code,
		Message:     pe.Message,
		RequestType: req.typ,
		RoomID:      req.roomID,
		RequestID:   req.requestID,
	}}
	switch req.typ {
	case TypeJoinRoom:
		f.Type = TypeJoinFailed
		f.Message = protocol.MessageJoinFailed + ": " + pe.Message
	case TypeStartGame:
		f.Type = TypeStartGameFailed
		f.Message, f.Detail = protocol.MessageStartFailed, pe.Message
	}
	send(req.ws, f)
}

// fields validates the fields every room message has, roomId and playerId;
// they are checked before the message's own fields.
func (req *request) fields() (roomID, playerID string, err *protocol.Error) {
	if roomID, err = req.frame.RoomID(); err != nil {
		return "", "", err
	}
	req.roomID = roomID
	if playerID, err = req.frame.PlayerID(); err != nil {
		return "", "", err
	}
	return roomID, playerID, nil
}

// authorize loads the room and checks, in PROTOCOL.md's order, that the
// socket may act in it as playerID: the room exists (room_not_found),
// playerID is the socket's own (forbidden), the socket joined the room
// (not_in_room). It returns the room and playerID's index in its players,
// -1 for a spectator.
func (m *Manager) authorize(req *request, roomID, playerID string) (*roomRecord, int, error) {
	rec, err := m.rooms.get(roomID)
	if err != nil {
		return nil, 0, err
	}
	if rec == nil {
		return nil, 0, protocol.Errorf(protocol.CodeRoomNotFound, "room %s not found", roomID)
	}
	if req.who.PlayerID != "" && req.who.PlayerID != playerID {
		return nil, 0, protocol.Errorf(protocol.CodeForbidden, "this socket plays as %s", req.who.PlayerID)
	}
	if !req.ws.HasTag(roomTag(roomID)) {
		return nil, 0, protocol.Errorf(protocol.CodeNotInRoom, "join room %s first", roomID)
	}
	return rec, rec.player(playerID), nil
}

// authorizePlayer is authorize for what only players may do: a spectator
// gets forbidden, and the room must be playing.
func (m *Manager) authorizePlayer(req *request, roomID, playerID, what string) (*roomRecord, int, error) {
	rec, i, err := m.authorize(req, roomID, playerID)
	if err != nil {
		return nil, 0, err
	}
	if i < 0 {
		return nil, 0, protocol.Errorf(protocol.CodeForbidden, "spectators may not %s", what)
	}
	if rec.Status != StatusPlaying {
		return nil, 0, protocol.Errorf(protocol.CodeInvalidState, "room %s is %s, not playing", roomID, rec.Status)
	}
	return rec, i, nil
}

// joinRoom handles join_room. A player already in the room's players
// (returning, or another socket of theirs) joins in any status without a
// player_joined. Anyone else joins as a new player (waiting room, below
// maxPlayers) or, with spectator: true, watches.
func (m *Manager) joinRoom(req *request) error {
	roomID, playerID, perr := req.fields()
	if perr != nil {
		return perr
	}
	// The name of the socket's first join is its name for good; later
	// playerName fields are ignored, not even validated.
	name := req.who.PlayerName
	if req.who.PlayerID == "" {
		if name, perr = req.frame.String("playerName"); perr != nil {
			return perr
		}
		if n := frame.RuneCount(name); n < 1 || n > frame.MaxNameRunes {
			return protocol.Errorf(protocol.CodeInvalidField, "playerName must be 1..%d characters", frame.MaxNameRunes)
		}
	}
	spectator, perr := req.frame.OptBool("spectator")
	if perr != nil {
		return perr
	}

	rec, err := m.rooms.get(roomID)
	if err != nil {
		return err
	}
	if rec == nil {
		return protocol.Errorf(protocol.CodeRoomNotFound, "room %s not found", roomID)
	}
	if req.who.PlayerID != "" && req.who.PlayerID != playerID {
		return protocol.Errorf(protocol.CodeForbidden, "this socket plays as %s", req.who.PlayerID)
	}
	if !req.ws.HasTag(roomTag(roomID)) && roomsOf(req.ws) >= MaxRoomsPerSocket {
		return protocol.Errorf(protocol.CodeForbidden, "a socket may be in at most %d rooms", MaxRoomsPerSocket)
	}
	i := rec.player(playerID)
	isNew := i < 0 && !spectator
	switch {
	case i >= 0:
		spectator = false // a player of the room joins as that player
	case spectator && req.ws.HasTag(roomTag(roomID)):
		// Already watching: joining again just resends room_joined.
	case spectator:
		if !rec.Settings.AllowSpectators {
			return protocol.Errorf(protocol.CodeForbidden, "room %s does not allow spectators", roomID)
		}
		if rec.Status == StatusFinished {
			return protocol.Errorf(protocol.CodeInvalidState, "room %s is finished", roomID)
		}
	default:
		if len(rec.Players) >= rec.MaxPlayers {
			return protocol.Errorf(protocol.CodeRoomFull, "room %s is full", roomID)
		}
		if rec.Status != StatusWaiting {
			return protocol.Errorf(protocol.CodeGameInProgress, "room %s is %s; new players may only join waiting rooms", roomID, rec.Status)
		}
	}

	if isNew {
		now := m.now()
		rec.Players = append(rec.Players, playerRecord{ID: playerID, Name: name, Status: PlayerReady, LastActivity: now})
		rec.LastUpdate = now
		if err := m.rooms.put(rec); err != nil {
			return err
		}
	}
	gs, err := m.gameState(rec)
	if err != nil {
		return err
	}
	if req.who.PlayerID == "" {
		if err := req.ws.SetAttachment(identity{PlayerID: playerID, PlayerName: name}); err != nil {
			return err
		}
	}

	req.ws.AddTag(roomTag(roomID))
	send(req.ws, &RoomJoined{
		Type:      TypeRoomJoined,
		Room:      rec.room(m.connected(rec)),
		GameState: gs,
		Spectator: spectator,
		echo:      echo{req.requestID},
	})
	if isNew {
		m.toRoom(roomID, &PlayerJoined{
			Type:       TypePlayerJoined,
			RoomID:     roomID,
			PlayerID:   playerID,
			PlayerName: name,
			Players:    rec.players(),
		}, nil, "")
	}
	return nil
}

// leaveRoom handles leave_room. A spectator's socket just leaves. A player
// leaves the room for good: every socket of theirs in the room gets
// room_left, the rest of the room player_left, and if they were the last
// player of a playing game it ends as abandoned.
func (m *Manager) leaveRoom(req *request) error {
	roomID, playerID, perr := req.fields()
	if perr != nil {
		return perr
	}
	rec, i, err := m.authorize(req, roomID, playerID)
	if err != nil {
		return err
	}
	tag := roomTag(roomID)
	if i < 0 {
		req.ws.RemoveTag(tag)
		send(req.ws, &RoomLeft{Type: TypeRoomLeft, RoomID: roomID, echo: echo{req.requestID}})
		return nil
	}

	now := m.now()
	leaver := rec.Players[i]
	var ended *GameEnded
	if rec.Status == StatusPlaying && len(rec.Players) == 1 {
		// The last player is kept in the final scores of the game they
		// abandoned.
		if ended, err = m.finish(rec, ReasonAbandoned, now, rec.finalScores()); err != nil {
			return err
		}
	}
	rec.Players = append(rec.Players[:i], rec.Players[i+1:]...)
	rec.LastUpdate = now
	if err := m.rooms.put(rec); err != nil {
		return err
	}

	for _, ws := range m.state.GetWebSockets(tag) {
		if ws != req.ws && identityOf(ws).PlayerID == playerID {
			ws.RemoveTag(tag)
			send(ws, &RoomLeft{Type: TypeRoomLeft, RoomID: roomID})
		}
	}
	req.ws.RemoveTag(tag)
	send(req.ws, &RoomLeft{Type: TypeRoomLeft, RoomID: roomID, echo: echo{req.requestID}})
	m.toRoom(roomID, &PlayerLeft{
		Type:       TypePlayerLeft,
		RoomID:     roomID,
		PlayerID:   playerID,
		PlayerName: leaver.Name,
		Players:    rec.players(),
	}, nil, "")
	if ended != nil {
		m.toRoom(roomID, ended, nil, "")
	}
	return nil
}

// startGame handles start_game: any player of a waiting room with at least
// two players starts it, and the game clock starts running.
func (m *Manager) startGame(req *request) error {
	roomID, playerID, perr := req.fields()
	if perr != nil {
		return perr
	}
	rec, i, err := m.authorize(req, roomID, playerID)
	if err != nil {
		return err
	}
	switch {
	case i < 0:
		return protocol.Errorf(protocol.CodeForbidden, "spectators may not start the game")
	case rec.Status == StatusPlaying:
		return protocol.Errorf(protocol.CodeGameInProgress, "the game is already playing")
	case rec.Status == StatusFinished:
		return protocol.Errorf(protocol.CodeInvalidState, "the game is finished; a room plays once")
	case len(rec.Players) < MinPlayers:
		return protocol.Errorf(protocol.CodeNotEnoughPlayers, "a game needs at least %d players", MinPlayers)
	}

	now := m.now()
	rec.Status = StatusPlaying
	rec.StartedAt = now
	rec.EndsAt = now.Add(time.Duration(rec.Settings.Duration) * time.Second)
	rec.LastUpdate = now
	rec.setPlayerStatus(PlayerPlaying)
	if err := m.rooms.startClock(rec); err != nil {
		return err
	}
	if err := m.rooms.put(rec); err != nil {
		return err
	}

	send(req.ws, &GameStartedSuccess{Type: TypeGameStartedSuccess, RoomID: roomID, echo: echo{req.requestID}})
	m.toRoom(roomID, &GameStarted{
		Type:      TypeGameStarted,
		RoomID:    roomID,
		StartedAt: timestamp(rec.StartedAt),
		EndsAt:    timestamp(rec.EndsAt),
	}, nil, "")
	return nil
}

// updateScore handles update_score: the player's score becomes score.
func (m *Manager) updateScore(req *request) error {
	roomID, playerID, perr := req.fields()
	if perr != nil {
		return perr
	}
	score, perr := req.frame.Number("score")
	if perr != nil {
		return perr
	}
	rec, i, err := m.authorizePlayer(req, roomID, playerID, "score")
	if err != nil {
		return err
	}

	now := m.now()
	rec.Players[i].Score = score
	rec.Players[i].LastActivity = now
	rec.LastUpdate = now
	if err := m.rooms.put(rec); err != nil {
		return err
	}

	m.toRoom(roomID, &ScoreUpdated{
		Type:     TypeScoreUpdated,
		RoomID:   roomID,
		PlayerID: playerID,
		Score:    score,
		Players:  rec.players(),
	}, req.ws, req.requestID)
	return nil
}

// gameAction handles game_action: the action is numbered, kept and
// announced; an end_turn advances the turn and may end the game.
func (m *Manager) gameAction(req *request) error {
	roomID, playerID, perr := req.fields()
	if perr != nil {
		return perr
	}
	action, perr := req.frame.String("action")
	if perr != nil {
		return perr
	}
	if n := frame.RuneCount(action); n < 1 || n > MaxActionRunes {
		return protocol.Errorf(protocol.CodeInvalidField, "action must be 1..%d characters", MaxActionRunes)
	}
	data := json.RawMessage("null")
	if raw, ok := req.frame.Raw("data"); ok {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil || buf.Len() > MaxActionDataBytes {
			return protocol.Errorf(protocol.CodeInvalidField, "data must be JSON of at most %d bytes", MaxActionDataBytes)
		}
		data = buf.Bytes()
	}
	rec, i, err := m.authorizePlayer(req, roomID, playerID, "act")
	if err != nil {
		return err
	}

	now := m.now()
	rec.ActionSeq++
	if action == ActionEndTurn {
		rec.CurrentTurn++
	}
	rec.Players[i].LastActivity = now
	rec.LastUpdate = now
	a := GameAction{Seq: rec.ActionSeq, PlayerID: playerID, Action: action, Data: data, CurrentTurn: rec.CurrentTurn, Timestamp: timestamp(now)}
	if err := m.rooms.addAction(roomID, a); err != nil {
		return err
	}
	var ended *GameEnded
	if rec.CurrentTurn >= rec.Settings.MaxRounds {
		if ended, err = m.finish(rec, ReasonRounds, now, rec.finalScores()); err != nil {
			return err
		}
	}
	if err := m.rooms.put(rec); err != nil {
		return err
	}

	m.toRoom(roomID, &GameActionFrame{
		Type:        TypeGameAction,
		RoomID:      roomID,
		PlayerID:    playerID,
		Action:      action,
		Data:        data,
		Seq:         a.Seq,
		CurrentTurn: a.CurrentTurn,
	}, req.ws, req.requestID)
	if ended != nil {
		m.toRoom(roomID, ended, req.ws, req.requestID)
	}
	return nil
}

// endGame handles end_game: any player ends the playing game.
func (m *Manager) endGame(req *request) error {
	roomID, playerID, perr := req.fields()
	if perr != nil {
		return perr
	}
	rec, _, err := m.authorizePlayer(req, roomID, playerID, "end the game")
	if err != nil {
		return err
	}
	ended, err := m.finish(rec, ReasonEnded, m.now(), rec.finalScores())
	if err != nil {
		return err
	}
	if err := m.rooms.put(rec); err != nil {
		return err
	}
	m.toRoom(roomID, ended, req.ws, req.requestID)
	return nil
}
