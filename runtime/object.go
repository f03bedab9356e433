package runtime

import (
	"context"
	"errors"
	"net/http"
)

// Object is the code of one object type. The runtime calls its methods one
// event at a time (never concurrently), so object code needs no locks.
//
// ServeHTTP handles a request addressed to the object, with the path made
// relative to the object (a request for /api/lobby/rooms reaches the lobby as
// /rooms). The ResponseWriter buffers: nothing reaches the client until the
// event's writes are durable (the output gate).
type Object interface {
	ServeHTTP(w http.ResponseWriter, r *http.Request)
}

// Message is one WebSocket message as received.
type Message struct {
	Data []byte
	// Binary is true for a binary frame, false for text.
	Binary bool
}

// WebSocketHandler is implemented by objects that accept WebSockets. Each
// call is one event. OnClose is called exactly once per accepted socket,
// however it ended; the socket is already gone from GetWebSockets then.
type WebSocketHandler interface {
	OnMessage(ctx context.Context, ws *WebSocket, msg Message)
	OnClose(ctx context.Context, ws *WebSocket, code int, reason string)
	// OnError reports a problem with one incoming message that the runtime
	// caught before OnMessage (ErrMessageTooLarge); the socket stays open.
	OnError(ctx context.Context, ws *WebSocket, err error)
}

// AlarmHandler is implemented by objects that set alarms. A returned error
// (or a panic) makes the runtime retry the alarm with backoff.
type AlarmHandler interface {
	OnAlarm(ctx context.Context) error
}

// Constructor builds an object instance. It runs inside the first event of
// the instance, so it may read storage to rebuild in-memory state; it is
// called again whenever an evicted (hibernated) object wakes up.
type Constructor func(state *State) (Object, error)

// ErrMessageTooLarge is passed to OnError for a message over the runtime's
// MaxMessageSize. The message itself is discarded.
var ErrMessageTooLarge = errors.New("websocket message too large")

// Registry maps class names to constructors. A node has one; the gateway
// routes requests to the classes registered in it.
type Registry struct {
	classes map[string]Constructor
	limits  map[string]int // see Limit
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{classes: map[string]Constructor{}} }

// Register adds a class. It panics on a duplicate or empty name, which is a
// programming error in the node's wiring.
func (r *Registry) Register(class string, ctor Constructor) {
	if class == "" || ctor == nil {
		panic("runtime: Register needs a class name and a constructor")
	}
	if _, dup := r.classes[class]; dup {
		panic("runtime: class " + class + " registered twice")
	}
	r.classes[class] = ctor
}

// Lookup returns the constructor of class.
func (r *Registry) Lookup(class string) (Constructor, bool) {
	c, ok := r.classes[class]
	return c, ok
}

// Classes returns the registered class names.
func (r *Registry) Classes() []string {
	out := make([]string, 0, len(r.classes))
	for c := range r.classes {
		out = append(out, c)
	}
	return out
}

// contextKey keys values the runtime puts in event contexts.
type contextKey int

const stateKey contextKey = iota

// StateFrom returns the State of the object whose event ctx belongs to.
func StateFrom(ctx context.Context) (*State, bool) {
	s, ok := ctx.Value(stateKey).(*State)
	return s, ok
}
