package roommanager

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"strings"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
)

// ServeHTTP routes the object's paths, relative to /api/room-manager (a
// trailing slash is ignored):
//
//	GET  /websocket    the game socket
//	POST /rooms        create a room
//	GET  /rooms        every room, oldest first
//	GET  /rooms/{id}   one room and its game state
func (m *Manager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	id, isRoom := strings.CutPrefix(p, "/rooms/")
	switch {
	case p == "/websocket":
		if allow(w, r, http.MethodGet) {
			m.acceptWebSocket(w, r)
		}
	case p == "/rooms":
		if !allow(w, r, http.MethodGet, http.MethodPost) {
			return
		}
		if r.Method == http.MethodPost {
			m.createRoom(w, r)
		} else {
			m.listRooms(w)
		}
	case isRoom && !strings.Contains(id, "/"):
		if allow(w, r, http.MethodGet) {
			m.getRoom(w, id)
		}
	default:
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "no route %s", r.URL.Path))
	}
}

// allow answers 405 unless r's method is one of methods.
func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	if slices.Contains(methods, r.Method) {
		return true
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	protocol.WriteHTTPError(w, http.StatusMethodNotAllowed, protocol.Errorf(protocol.CodeMethodNotAllowed, "%s is not allowed here", r.Method))
	return false
}

func (m *Manager) acceptWebSocket(w http.ResponseWriter, r *http.Request) {
	if _, err := m.state.AcceptWebSocket(w, r); err != nil {
		protocol.WriteHTTPError(w, http.StatusUpgradeRequired, protocol.Errorf(protocol.CodeInvalidField, "%v", err))
	}
}

// internalError answers 500 for a storage failure.
func (m *Manager) internalError(w http.ResponseWriter, err error) {
	m.state.Logger().Error("roommanager: request failed", "err", err)
	protocol.WriteHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "internal error"))
}

// createRoom is POST /rooms.
func (m *Manager) createRoom(w http.ResponseWriter, r *http.Request) {
	body, perr := frame.DecodeHTTPBody(r)
	if perr != nil {
		status := http.StatusBadRequest
		if perr.Code == protocol.CodeTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		protocol.WriteHTTPError(w, status, perr)
		return
	}
	rec, perr := parseRoom(body)
	if perr != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, perr)
		return
	}
	err := m.state.Storage().Transaction(func(*runtime.Storage) error {
		old, err := m.rooms.get(rec.ID)
		if err != nil {
			return err
		}
		if old != nil {
			return protocol.Errorf(protocol.CodeRoomExists, "room %s already exists", rec.ID)
		}
		if n, err := m.rooms.count(); err != nil {
			return err
		} else if n >= int64(m.opts.MaxRooms) {
			return protocol.Errorf(protocol.CodeLimitExceeded, "the room manager holds its maximum of %d rooms", m.opts.MaxRooms)
		}
		if rec.Seq, err = m.rooms.nextSeq(); err != nil {
			return err
		}
		now := m.now()
		rec.CreatedAt, rec.LastUpdate = now, now
		return m.rooms.put(rec)
	})
	var pe *protocol.Error
	switch {
	case errors.As(err, &pe) && pe.Code == protocol.CodeLimitExceeded:
		protocol.WriteHTTPError(w, http.StatusTooManyRequests, pe)
	case errors.As(err, &pe):
		protocol.WriteHTTPError(w, http.StatusConflict, pe)
	case err != nil:
		m.internalError(w, err)
	default:
		protocol.WriteJSON(w, http.StatusCreated, rec.room(nil))
	}
}

// parseRoom validates a create request into a new waiting room.
func parseRoom(body *frame.Frame) (*roomRecord, *protocol.Error) {
	id, perr := roomIDOf(body)
	if perr != nil {
		return nil, perr
	}
	name, perr := body.String("name")
	if perr != nil {
		return nil, perr
	}
	if n := frame.RuneCount(name); n < 1 || n > frame.MaxNameRunes {
		return nil, protocol.Errorf(protocol.CodeInvalidField, "name must be 1..%d characters", frame.MaxNameRunes)
	}
	gameType, perr := body.String("gameType")
	if perr != nil {
		return nil, perr
	}
	if !slices.Contains(GameTypes, gameType) {
		return nil, protocol.Errorf(protocol.CodeInvalidField, "gameType must be one of %s", strings.Join(GameTypes, ", "))
	}
	maxPlayers, present, perr := body.OptInt("maxPlayers", MinPlayers, MaxPlayersLimit)
	if perr != nil {
		return nil, perr
	}
	if !present {
		maxPlayers = DefaultMaxPlayers
	}
	settings := DefaultSettings()
	if raw, ok := body.Raw("settings"); ok {
		if perr := mergeSettings(&settings, raw); perr != nil {
			return nil, perr
		}
	}
	return &roomRecord{
		ID:         id,
		Name:       name,
		GameType:   gameType,
		MaxPlayers: maxPlayers,
		Settings:   settings,
		Status:     StatusWaiting,
		Players:    []playerRecord{},
	}, nil
}

// roomIDOf returns the new room's id: roomId, or its alias id; given both,
// they must agree.
func roomIDOf(body *frame.Frame) (string, *protocol.Error) {
	var id string
	var given bool
	for _, field := range []string{"roomId", "id"} {
		v, present, perr := body.OptString(field)
		switch {
		case perr != nil:
			return "", perr
		case !present:
			continue
		case !frame.ValidRoomID(v):
			return "", protocol.Errorf(protocol.CodeInvalidField, "%s must match [A-Za-z0-9_-]{1,64}", field)
		case given && v != id:
			return "", protocol.Errorf(protocol.CodeInvalidField, "roomId and id differ")
		}
		id, given = v, true
	}
	if !given {
		return "", protocol.Errorf(protocol.CodeMissingField, "roomId is required")
	}
	return id, nil
}

// mergeSettings applies a partial settings object over s. Unknown keys and
// null values are ignored.
func mergeSettings(s *GameSettings, raw json.RawMessage) *protocol.Error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return protocol.Errorf(protocol.CodeInvalidField, "settings must be an object")
	}
	given := func(name string) (json.RawMessage, bool) {
		v, ok := fields[name]
		return v, ok && string(v) != "null"
	}
	if v, ok := given("difficulty"); ok {
		var d string
		if json.Unmarshal(v, &d) != nil || !slices.Contains(Difficulties, d) {
			return protocol.Errorf(protocol.CodeInvalidField, "settings.difficulty must be one of %s", strings.Join(Difficulties, ", "))
		}
		s.Difficulty = d
	}
	ints := []struct {
		name    string
		hi      int
		setting *int
	}{
		{"duration", MaxDuration, &s.Duration},
		{"maxRounds", MaxRoundsLimit, &s.MaxRounds},
	}
	for _, f := range ints {
		v, ok := given(f.name)
		if !ok {
			continue
		}
		var n float64
		if json.Unmarshal(v, &n) != nil || n != math.Trunc(n) || n < 1 || n > float64(f.hi) {
			return protocol.Errorf(protocol.CodeInvalidField, "settings.%s must be an integer in 1..%d", f.name, f.hi)
		}
		*f.setting = int(n)
	}
	if v, ok := given("allowSpectators"); ok {
		if json.Unmarshal(v, &s.AllowSpectators) != nil {
			return protocol.Errorf(protocol.CodeInvalidField, "settings.allowSpectators must be a boolean")
		}
	}
	if v, ok := given("leaderboard"); ok {
		if json.Unmarshal(v, &s.Leaderboard) != nil || !gateway.ValidName(s.Leaderboard) {
			return protocol.Errorf(protocol.CodeInvalidField, "settings.leaderboard must name a leaderboard: 1..%d bytes of printable UTF-8", gateway.MaxNameBytes)
		}
	}
	return nil
}

// listRooms is GET /rooms: every room, oldest first.
func (m *Manager) listRooms(w http.ResponseWriter) {
	all, err := m.rooms.all()
	if err != nil {
		m.internalError(w, err)
		return
	}
	out := RoomList{Rooms: make([]GameRoom, 0, len(all))}
	for _, rec := range all {
		out.Rooms = append(out.Rooms, rec.room(m.connected(rec)))
	}
	protocol.WriteJSON(w, http.StatusOK, out)
}

// getRoom is GET /rooms/{id}.
func (m *Manager) getRoom(w http.ResponseWriter, id string) {
	if !frame.ValidRoomID(id) {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "room id must match [A-Za-z0-9_-]{1,64}"))
		return
	}
	rec, err := m.rooms.get(id)
	if err != nil {
		m.internalError(w, err)
		return
	}
	if rec == nil {
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeRoomNotFound, "room %s not found", id))
		return
	}
	gs, err := m.gameState(rec)
	if err != nil {
		m.internalError(w, err)
		return
	}
	protocol.WriteJSON(w, http.StatusOK, RoomResponse{Room: rec.room(m.connected(rec)), GameState: gs})
}
