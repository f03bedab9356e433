// Package chatlobby is the ChatLobby object: chat rooms with live presence,
// a bounded durable history per room, idempotent sends and resume after
// reconnect, spoken over WebSockets and HTTP as PROTOCOL.md ("ChatLobby")
// specifies.
//
// Durable state (rooms and their messages) lives in the object's storage;
// who is where lives with the sockets (their tags and attachments), so the
// lobby keeps working when the runtime evicts it and rebuilds it for the
// next event (hibernation). Nothing else is kept in memory except caches.
package chatlobby

import (
	"context"
	"errors"

	"github.com/holocron-run/holocron/objects/frame"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// ClassName is the class the lobby registers under.
const ClassName = "ChatLobby"

// Options configure a lobby. Zero fields take the documented defaults.
type Options struct {
	// HistoryLimit is how many messages each room keeps; the write that adds
	// a message also deletes the ones it pushes out. Default 1000.
	HistoryLimit int
	// ParticipantListLimit is the largest room whose user_joined and
	// user_left frames carry the whole participant list; beyond it they carry
	// only participantCount (sending the list on every join of a large room
	// is quadratic). Default 200.
	ParticipantListLimit int
	// MaxRooms bounds the rooms of one lobby; creating one more answers
	// limit_exceeded (HTTP 429). Default 10000.
	MaxRooms int
}

func (o *Options) setDefaults() {
	if o.HistoryLimit <= 0 {
		o.HistoryLimit = 1000
	}
	if o.ParticipantListLimit <= 0 {
		o.ParticipantListLimit = 200
	}
	if o.MaxRooms <= 0 {
		o.MaxRooms = 10000
	}
}

// New returns the constructor of lobbies with opts, for runtime.Register.
func New(opts Options) runtime.Constructor {
	opts.setDefaults()
	return func(state *runtime.State) (runtime.Object, error) {
		return &Lobby{
			state:   state,
			opts:    opts,
			store:   store{kv: state.Storage(), historyLimit: opts.HistoryLimit, rooms: map[string]roomRecord{}, indexes: map[string]*cmidIndex{}, sent: map[string]int{}},
			sockets: map[*runtime.WebSocket]*socketState{},
		}, nil
	}
}

// Lobby is one ChatLobby object instance.
type Lobby struct {
	state   *runtime.State
	opts    Options
	store   store
	sockets map[*runtime.WebSocket]*socketState
}

var (
	_ runtime.Object           = (*Lobby)(nil)
	_ runtime.WebSocketHandler = (*Lobby)(nil)
)

// request is one client frame being handled. Handlers validate, read and
// write storage, and queue their effects (socket changes and frames); the
// effects run only if the handler succeeds, so a failed request changes
// nothing and sends only its failure frame.
type request struct {
	ws      *runtime.WebSocket
	session *session // the socket's session before this request
	frame   *frame.Frame
	// roomID is the request's validated roomId, once known, for failure frames.
	roomID  string
	effects []func()
}

// then queues an effect of a successful request.
func (r *request) then(fn func()) { r.effects = append(r.effects, fn) }

// reply queues a frame to the actor.
func (r *request) reply(v any) {
	data := encode(v)
	r.then(func() { r.ws.Send(data) })
}

// OnMessage handles one client frame.
func (l *Lobby) OnMessage(ctx context.Context, ws *runtime.WebSocket, msg runtime.Message) {
	sock := l.socket(ws)
	f, perr := frame.DecodeFrame(msg.Data, msg.Binary)
	if perr != nil {
		typ := ""
		if f != nil && perr.Code != protocol.CodeUnknownType {
			typ = f.Type
		}
		l.fail(ws, typ, "", "", perr)
		return
	}
	var handle func(*request) error
	switch f.Type {
	case TypeJoinRoom:
		handle = l.joinRoom
	case TypeLeaveRoom:
		handle = l.leaveRoom
	case TypeSendMessage:
		handle = l.sendMessage
	case TypeGetHistory:
		handle = l.getHistory
	case protocol.TypePing:
		ws.Send(encode(PongFrame{Type: protocol.TypePong, RequestID: f.RequestID}))
		return
	default:
		l.fail(ws, f.Type, "", f.RequestID, &protocol.Error{Code: protocol.CodeUnknownType, Message: protocol.MessageUnknownType})
		return
	}
	req := &request{ws: ws, session: &sock.session, frame: f}
	err := l.state.Storage().Transaction(func(*runtime.Storage) error { return handle(req) })
	if err != nil {
		l.store.dropCache()
		var perr *protocol.Error
		if !errors.As(err, &perr) {
			l.state.Logger().Error("chatlobby: request failed", "type", f.Type, "err", err)
			perr = protocol.Errorf(protocol.CodeInternal, "internal error")
		}
		l.fail(ws, f.Type, req.roomID, f.RequestID, perr)
		return
	}
	for _, fn := range req.effects {
		fn()
	}
}

// fail sends the failure frame of a request to its socket.
func (l *Lobby) fail(ws *runtime.WebSocket, requestType, roomID, requestID string, err *protocol.Error) {
	ws.Send(encode(failureFrame(requestType, roomID, requestID, err)))
}

// OnError reports a message the runtime refused before OnMessage.
func (l *Lobby) OnError(ctx context.Context, ws *runtime.WebSocket, err error) {
	if errors.Is(err, runtime.ErrMessageTooLarge) {
		l.fail(ws, "", "", "", &protocol.Error{Code: protocol.CodeTooLarge, Message: protocol.MessageTooLarge})
		return
	}
	l.fail(ws, "", "", "", protocol.Errorf(protocol.CodeInternal, "internal error"))
}

// OnClose makes a closed socket leave all its rooms, as leave_room would.
func (l *Lobby) OnClose(ctx context.Context, ws *runtime.WebSocket, code int, reason string) {
	s := l.socket(ws).session
	delete(l.sockets, ws)
	if !s.identified() {
		return
	}
	var effects []func()
	err := l.state.Storage().Transaction(func(*runtime.Storage) error {
		for _, m := range s.Rooms {
			fn, err := l.departed(ws, &s, m.RoomID)
			if err != nil {
				return err
			}
			if fn != nil {
				effects = append(effects, fn)
			}
		}
		return nil
	})
	if err != nil {
		l.store.dropCache()
		// Presence is live, so it is right anyway; only the leave messages
		// of this socket are lost.
		l.state.Logger().Error("chatlobby: leaving rooms of closed socket", "err", err)
		return
	}
	for _, fn := range effects {
		fn()
	}
}
