package runtime

import (
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/gorilla/websocket"
)

// State is what an object instance knows about itself and the runtime.
type State struct {
	entry   *entry
	storage *Storage
}

// ID is the object's ID.
func (s *State) ID() ID { return s.entry.id }

// Class is the object's class name.
func (s *State) Class() string { return s.entry.class }

// Name is the name the object was addressed by, or "" for a unique ID.
func (s *State) Name() string {
	s.entry.mu.Lock()
	defer s.entry.mu.Unlock()
	return s.entry.name
}

// Storage is the object's durable storage.
func (s *State) Storage() *Storage { return s.storage }

// Logger is the runtime's logger with the object's class, ID and name, for
// an object's own log lines (so an operator can find every line of one
// object, on whichever node it ran).
func (s *State) Logger() *slog.Logger {
	e := s.entry
	e.mu.Lock()
	name := e.name
	e.mu.Unlock()
	return e.rt.log.With("class", e.class, "object", e.id.String(), "name", name)
}

// Now is the runtime's clock; use it for times that alarms compare against.
func (s *State) Now() time.Time { return s.entry.rt.opts.Now() }

// AcceptWebSocket accepts the WebSocket upgrade request r for this object.
// The socket is listed by GetWebSockets at once and may be sent to; the
// upgrade itself happens when the event's output gate opens.
func (s *State) AcceptWebSocket(w http.ResponseWriter, r *http.Request, tags ...string) (*WebSocket, error) {
	resp, ok := w.(*gatedResponse)
	if !ok {
		return nil, fmt.Errorf("accept websocket: not the object's own ResponseWriter")
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return nil, fmt.Errorf("accept websocket: not a websocket upgrade request")
	}
	if resp.socket != nil {
		return nil, fmt.Errorf("accept websocket: already accepted")
	}
	resp.socket = s.entry.newSocket(r, tags, nil)
	return resp.socket, nil
}

// newSocket makes the record of a socket accepted (or, from an edge,
// re-attached) for upgrade request r, and lists it under tags.
func (e *entry) newSocket(r *http.Request, tags []string, attachment []byte) *WebSocket {
	ws := &WebSocket{
		entry:      e,
		seq:        e.rt.socketSeq.Add(1),
		remoteAddr: r.RemoteAddr,
		attachment: attachment,
	}
	if p, ok := PrincipalFrom(r.Context()); ok {
		ws.principal = &p
	}
	if fwd := r.Header.Get(ForwardedForHeader); fwd != "" {
		// Set by the cluster's forwarder: the client's own address.
		ws.remoteAddr = fwd
	}
	if a, ok := edgeAttachFrom(r.Context()); ok {
		// The client's connection is on another node, which counted it.
		ws.conn = &remoteConn{ws: ws, link: a.Link, sid: a.SID}
	} else {
		ip, key := socketKeys(ws.remoteAddr, ws.principal)
		c := e.rt.newSocketConn(ws, ip, key)
		if ws.principal != nil {
			c.expires = ws.principal.Expires
		}
		ws.conn = c
	}
	e.mu.Lock()
	e.sockets = append(e.sockets, ws)
	for _, t := range tags {
		if !slices.Contains(ws.tags, t) {
			ws.tags = append(ws.tags, t)
			e.byTag[t] = append(e.byTag[t], ws)
		}
	}
	e.mu.Unlock()
	e.rt.metrics.socketsOpen.Inc()
	return ws
}

// GetWebSockets returns the object's open sockets carrying tag (all of them
// for ""), in the order they were accepted or tagged.
func (s *State) GetWebSockets(tag string) []*WebSocket {
	e := s.entry
	e.mu.Lock()
	defer e.mu.Unlock()
	if tag == "" {
		return append([]*WebSocket(nil), e.sockets...)
	}
	return append([]*WebSocket(nil), e.byTag[tag]...)
}

// Broadcast sends data to every socket carrying tag. The sockets share data
// and each writer frames it as it writes: an uncompressed server frame is
// a header and a copy into the writer's buffer, with no allocation, while
// gorilla/websocket's PreparedMessage (one encoding shared by all sockets)
// allocates a 4 KiB writer per message to build it — a third of everything
// a cluster's leader allocated under load.
func (s *State) Broadcast(tag string, data []byte) { s.broadcast(tag, outFrame{data: data}) }

// BroadcastAt is Broadcast with a cursor: each socket is marked as sent
// everything up to cursor under key (see WebSocket.SendAt and Reattacher).
func (s *State) BroadcastAt(tag string, data []byte, key, cursor string) error {
	c, err := newCursor(key, cursor)
	if err != nil {
		return err
	}
	s.broadcast(tag, outFrame{data: data, cursor: c})
	return nil
}

func (s *State) broadcast(tag string, f outFrame) {
	socks := s.GetWebSockets(tag)
	if e := s.entry; e.outbox != nil {
		// One allocation for the whole broadcast, not one per doubling.
		*e.outbox = slices.Grow(*e.outbox, len(socks))
	}
	for _, ws := range socks {
		s.entry.emit(outItem{ws: ws, frame: f})
	}
}
