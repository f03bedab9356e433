package chatlobby

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// Room creation limits.
const (
	minMaxParticipants     = 1
	maxMaxParticipants     = 10000
	defaultMaxParticipants = 50
)

// ServeHTTP serves the lobby's routes, relative to the lobby:
//
//	GET  /websocket                 the chat socket
//	POST /rooms                     create a room
//	GET  /rooms                     public rooms, oldest first
//	GET  /rooms/{id}                one room
//	GET  /rooms/{id}/messages       a page of its history
func (l *Lobby) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	if len(path) > 1 {
		path = strings.TrimSuffix(path, "/")
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	switch {
	case path == "/websocket":
		if allow(w, r, http.MethodGet) {
			l.acceptWebSocket(w, r)
		}
	case path == "/rooms":
		switch r.Method {
		case http.MethodGet:
			l.serve(w, l.listRooms)
		case http.MethodPost:
			l.serve(w, func() (int, any, error) { return l.createRoom(r) })
		default:
			methodNotAllowed(w, http.MethodGet, http.MethodPost)
		}
	case len(parts) == 2 && parts[0] == "rooms":
		if allow(w, r, http.MethodGet) {
			l.serve(w, func() (int, any, error) { return l.getRoom(parts[1]) })
		}
	case len(parts) == 3 && parts[0] == "rooms" && parts[2] == "messages":
		if allow(w, r, http.MethodGet) {
			l.serve(w, func() (int, any, error) { return l.roomMessages(parts[1], r) })
		}
	default:
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "no route %s", r.URL.Path))
	}
}

func (l *Lobby) acceptWebSocket(w http.ResponseWriter, r *http.Request) {
	if _, err := l.state.AcceptWebSocket(w, r); err != nil {
		protocol.WriteHTTPError(w, http.StatusUpgradeRequired, protocol.Errorf(protocol.CodeInvalidField, "%v", err))
	}
}

// serve runs an HTTP handler as one transaction: a failing handler leaves
// no writes behind and answers with its error.
func (l *Lobby) serve(w http.ResponseWriter, handle func() (int, any, error)) {
	var (
		status int
		body   any
	)
	err := l.state.Storage().Transaction(func(*runtime.Storage) error {
		var err error
		status, body, err = handle()
		return err
	})
	if err != nil {
		l.store.dropCache()
		var perr *protocol.Error
		if !errors.As(err, &perr) {
			l.state.Logger().Error("chatlobby: HTTP request failed", "err", err)
			perr = protocol.Errorf(protocol.CodeInternal, "internal error")
		}
		protocol.WriteHTTPError(w, httpStatus(perr.Code), perr)
		return
	}
	protocol.WriteJSON(w, status, body)
}

// httpStatus maps a protocol code to its HTTP status.
func httpStatus(code string) int {
	switch code {
	case protocol.CodeInvalidJSON, protocol.CodeMissingField, protocol.CodeInvalidField:
		return http.StatusBadRequest
	case protocol.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case protocol.CodeRoomNotFound, protocol.CodeNotFound:
		return http.StatusNotFound
	case protocol.CodeRoomExists:
		return http.StatusConflict
	case protocol.CodeLimitExceeded:
		return http.StatusTooManyRequests
	case protocol.CodeForbidden:
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

func (l *Lobby) listRooms() (int, any, error) {
	rooms, err := l.store.publicRooms()
	if err != nil {
		return 0, nil, err
	}
	out := RoomList{Rooms: make([]ChatRoom, 0, len(rooms))}
	for _, room := range rooms {
		out.Rooms = append(out.Rooms, room.view(ids(l.presence(room.ID, nil))))
	}
	return http.StatusOK, out, nil
}

// createRoom handles POST /rooms {roomId (or id), name, maxParticipants?,
// isPrivate?, allowedPlayers?}.
func (l *Lobby) createRoom(r *http.Request) (int, any, error) {
	f, perr := frame.DecodeHTTPBody(r)
	if perr != nil {
		return 0, nil, perr
	}
	idField := "roomId"
	if !f.Has("roomId") && f.Has("id") {
		idField = "id"
	}
	roomID, perr := f.String(idField)
	if perr != nil {
		return 0, nil, perr
	}
	if !frame.ValidRoomID(roomID) {
		return 0, nil, protocol.Errorf(protocol.CodeInvalidField, "%s must match [A-Za-z0-9_-]{1,64}", idField)
	}
	if f.Has("roomId") && f.Has("id") {
		if id, _ := f.String("id"); id != roomID {
			return 0, nil, protocol.Errorf(protocol.CodeInvalidField, "roomId and id differ")
		}
	}
	name, perr := f.String("name")
	if perr != nil {
		return 0, nil, perr
	}
	if n := frame.RuneCount(name); n < 1 || n > frame.MaxNameRunes {
		return 0, nil, protocol.Errorf(protocol.CodeInvalidField, "name must be 1..%d characters", frame.MaxNameRunes)
	}
	maxParticipants, given, perr := f.OptInt("maxParticipants", minMaxParticipants, maxMaxParticipants)
	if perr != nil {
		return 0, nil, perr
	}
	if !given {
		maxParticipants = defaultMaxParticipants
	}
	private, perr := f.OptBool("isPrivate")
	if perr != nil {
		return 0, nil, perr
	}
	allowed, perr := allowedPlayers(f, private)
	if perr != nil {
		return 0, nil, perr
	}
	if _, exists, err := l.store.room(roomID); err != nil {
		return 0, nil, err
	} else if exists {
		return 0, nil, protocol.Errorf(protocol.CodeRoomExists, "room %s already exists", roomID)
	}
	if n, err := l.store.roomCount(); err != nil {
		return 0, nil, err
	} else if n >= l.opts.MaxRooms {
		return 0, nil, protocol.Errorf(protocol.CodeLimitExceeded, "the lobby holds its maximum of %d rooms", l.opts.MaxRooms)
	}
	now := frame.Timestamp(l.state.Now())
	room := &roomRecord{
		ID:              roomID,
		Name:            name,
		MaxParticipants: maxParticipants,
		IsPrivate:       private,
		AllowedPlayers:  allowed,
		CreatedAt:       now,
		LastActivity:    now,
	}
	if err := l.store.createRoom(room); err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, room.view(nil), nil
}

// allowedPlayers reads the optional allowedPlayers list: distinct player
// ids, at least one, on private rooms only.
func allowedPlayers(f *frame.Frame, private bool) ([]string, *protocol.Error) {
	raw, ok := f.Raw("allowedPlayers")
	if !ok {
		return nil, nil
	}
	if !private {
		return nil, protocol.Errorf(protocol.CodeInvalidField, "allowedPlayers is only for private rooms")
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil || len(list) == 0 {
		return nil, protocol.Errorf(protocol.CodeInvalidField, "allowedPlayers must be a non-empty array of player ids")
	}
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, p := range list {
		if p == "" || frame.RuneCount(p) > 64 {
			return nil, protocol.Errorf(protocol.CodeInvalidField, "allowedPlayers must hold player ids of 1..64 characters")
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, nil
}

func (l *Lobby) getRoom(roomID string) (int, any, error) {
	room, err := l.httpRoom(roomID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, room.view(ids(l.presence(roomID, nil))), nil
}

// roomMessages handles GET /rooms/{id}/messages?limit=&before=&after=.
func (l *Lobby) roomMessages(roomID string, r *http.Request) (int, any, error) {
	q := r.URL.Query()
	sel := selection{Limit: defaultHistoryLimit}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > maxHistoryLimit {
			return 0, nil, protocol.Errorf(protocol.CodeInvalidField, "limit must be an integer in 1..%d", maxHistoryLimit)
		}
		sel.Limit = n
	}
	sel.Before, sel.HasBefore = q.Get("before"), q.Has("before")
	sel.After, sel.HasAfter = q.Get("after"), q.Has("after")
	if sel.HasBefore && sel.HasAfter {
		return 0, nil, protocol.Errorf(protocol.CodeInvalidField, "give before or after, not both")
	}
	room, err := l.httpRoom(roomID)
	if err != nil {
		return 0, nil, err
	}
	if room.IsPrivate {
		return 0, nil, protocol.Errorf(protocol.CodeForbidden, "the history of a private room is not served over HTTP")
	}
	msgs, hasMore, err := l.store.history(room, sel)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, MessagePage{RoomID: roomID, Messages: msgs, HasMore: hasMore}, nil
}

// httpRoom validates a room id from a path and loads the room.
func (l *Lobby) httpRoom(roomID string) (*roomRecord, error) {
	if !frame.ValidRoomID(roomID) {
		return nil, protocol.Errorf(protocol.CodeInvalidField, "room id must match [A-Za-z0-9_-]{1,64}")
	}
	return l.mustRoom(roomID)
}

// allow answers 405 unless r uses method.
func allow(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	methodNotAllowed(w, method)
	return false
}

func methodNotAllowed(w http.ResponseWriter, methods ...string) {
	w.Header().Set("Allow", strings.Join(methods, ", "))
	protocol.WriteHTTPError(w, http.StatusMethodNotAllowed, protocol.Errorf(protocol.CodeMethodNotAllowed, "use %s", strings.Join(methods, " or ")))
}
