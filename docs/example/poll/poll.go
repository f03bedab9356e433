// Package poll is the example object of docs/authoring.md: a poll that
// clients vote in over HTTP or a WebSocket, that pushes the live tally to
// every watching socket, and that closes itself by alarm when its time is up.
//
// It uses only the public runtime API. The guide quotes it region by region
// (the "// region:" comments), and a test in package docs checks that every
// quote is identical to this file, so the guide cannot drift from the code.
package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/holocron-run/holocron/protocol"

	"github.com/holocron-run/holocron/runtime"
)

// region: class

// ClassName is the class a Poll registers under. An object's ID is a hash
// of its class and name, so renaming the class would orphan every stored
// poll: it must never change once polls exist.
const ClassName = "Poll"

// Storage layout. Each object has its own key namespace, so keys need not
// name the poll.
const (
	keyDefinition = "definition" // Definition, as JSON
	keyTally      = "tally"      // votes per option, as JSON
	prefixVote    = "vote/"      // vote/<voter> → the option voted for
)

// tagWatcher tags every socket watching the poll, for Broadcast.
const tagWatcher = "watch"

// endregion

// Limits on what clients may send; they keep every stored value far below
// the runtime's 128 KiB value limit.
const (
	maxOptions  = 20
	maxTextLen  = 200 // characters of a question or option
	maxVoterLen = 64  // bytes of a voter name
	maxDuration = 7 * 24 * time.Hour
	maxBodySize = 16 << 10
)

// Definition is what a poll was created with, and whether it has closed.
type Definition struct {
	Question string    `json:"question"`
	Options  []string  `json:"options"`
	ClosesAt time.Time `json:"closesAt"`
	Closed   bool      `json:"closed"`
}

// Snapshot is a poll as clients see it: its definition and the votes of
// every option (zero included).
type Snapshot struct {
	Definition
	Votes map[string]int `json:"votes"`
}

// Frame is a server WebSocket frame. "tally" and "closed" carry the poll;
// "voted" the option the socket voted for; "error" a code and message.
type Frame struct {
	Type    string    `json:"type"`
	Poll    *Snapshot `json:"poll,omitempty"`
	Option  string    `json:"option,omitempty"`
	Code    string    `json:"code,omitempty"`
	Message string    `json:"message,omitempty"`
}

// Error is a failure the client caused. It carries the HTTP status and the
// code clients switch on; any other error is the server's fault.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func fail(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

var (
	errNoPoll = fail(http.StatusNotFound, "not_found", "no such poll")
	errClosed = fail(http.StatusConflict, "poll_closed", "the poll is closed")
)

// region: type

// Poll is one poll object. It keeps a copy of its definition and tally in
// memory and changes that copy only after the event's writes succeeded, so
// the copy never runs ahead of storage: if an event panics or its commit
// fails, the runtime throws this instance away and builds a new one.
type Poll struct {
	state *runtime.State
	def   *Definition // nil until the poll is created
	tally map[string]int
}

// New is the Poll constructor (a runtime.Constructor). The runtime calls it
// inside the object's first event, and again whenever the object wakes up
// after eviction, so it rebuilds the in-memory copy from storage.
func New(state *runtime.State) (runtime.Object, error) {
	st := state.Storage()
	def, created, err := runtime.GetJSON[Definition](st, keyDefinition)
	if err != nil {
		return nil, fmt.Errorf("load poll definition: %w", err)
	}
	tally, _, err := runtime.GetJSON[map[string]int](st, keyTally)
	if err != nil {
		return nil, fmt.Errorf("load poll tally: %w", err)
	}
	p := &Poll{state: state, tally: tally}
	if created {
		p.def = &def
	}
	if p.tally == nil {
		p.tally = map[string]int{}
	}
	return p, nil
}

// endregion

// region: http

// ServeHTTP is the poll's HTTP API. Paths are relative to the object: the
// gateway turns /polls/lunch/votes into /votes on the poll named "lunch".
//
//	PUT  /           create the poll: {question, options, durationSeconds}
//	GET  /           the poll's Snapshot
//	POST /votes      {voter, option}: vote, or change one's vote
//	GET  /websocket  watch live; ?voter=NAME to vote over the socket too
//
// Nothing written to w reaches the client before the event's storage
// writes are durable.
func (p *Poll) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var (
		v   any
		err error
	)
	status := http.StatusOK
	switch {
	case r.URL.Path == "/" && r.Method == http.MethodPut:
		v, err = p.create(w, r)
		status = http.StatusCreated
	case r.URL.Path == "/" && r.Method == http.MethodGet:
		v, err = p.snapshot()
	case r.URL.Path == "/votes" && r.Method == http.MethodPost:
		v, err = p.voteHTTP(w, r)
	case r.URL.Path == "/websocket":
		if err = p.accept(w, r); err == nil {
			return // the runtime upgrades the connection
		}
	default:
		err = fail(http.StatusNotFound, "not_found", "no route %s %s", r.Method, r.URL.Path)
	}
	p.reply(w, status, v, err)
}

// endregion

// region: create

// create stores the poll and sets its closing alarm. Both happen in one
// Transaction: if any write fails, none of them is kept (without it, the
// writes made before the failure would commit with the event).
func (p *Poll) create(w http.ResponseWriter, r *http.Request) (*Snapshot, error) {
	if p.def != nil {
		return nil, fail(http.StatusConflict, "poll_exists", "the poll already exists")
	}
	var req struct {
		Question        string   `json:"question"`
		Options         []string `json:"options"`
		DurationSeconds int      `json:"durationSeconds"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if err := checkDefinition(req.Question, req.Options, req.DurationSeconds); err != nil {
		return nil, err
	}
	def := Definition{
		Question: req.Question,
		Options:  req.Options,
		// The runtime's clock, which alarms are compared against (and which
		// tests control): never time.Now.
		ClosesAt: p.state.Now().Add(time.Duration(req.DurationSeconds) * time.Second).UTC().Truncate(time.Millisecond),
	}
	tally := map[string]int{}
	err := p.state.Storage().Transaction(func(tx *runtime.Storage) error {
		if err := runtime.PutJSON(tx, keyDefinition, def); err != nil {
			return err
		}
		if err := runtime.PutJSON(tx, keyTally, tally); err != nil {
			return err
		}
		return tx.SetAlarm(def.ClosesAt)
	})
	if err != nil {
		return nil, fmt.Errorf("create poll: %w", err)
	}
	p.def, p.tally = &def, tally
	return p.snapshot()
}

// endregion

// region: vote

// vote records voter's choice, replacing any earlier vote of theirs. The
// vote and the tally change in one Transaction, so they never disagree.
// Voting twice for the same option changes nothing, which makes a client's
// retry after a lost answer harmless.
func (p *Poll) vote(voter, option string) error {
	if p.def == nil {
		return errNoPoll
	}
	if p.def.Closed {
		return errClosed
	}
	if !slices.Contains(p.def.Options, option) {
		return fail(http.StatusBadRequest, "invalid_option", "%q is not an option of this poll", option)
	}
	tally := maps.Clone(p.tally)
	err := p.state.Storage().Transaction(func(tx *runtime.Storage) error {
		prev, voted, err := tx.Get(prefixVote + voter)
		if err != nil {
			return err
		}
		if voted {
			tally[string(prev)]--
		}
		tally[option]++
		if err := tx.Put(prefixVote+voter, []byte(option)); err != nil {
			return err
		}
		return runtime.PutJSON(tx, keyTally, tally)
	})
	if err != nil {
		return fmt.Errorf("record vote: %w", err)
	}
	p.tally = tally
	return nil
}

// endregion

// voteHTTP handles POST /votes.
func (p *Poll) voteHTTP(w http.ResponseWriter, r *http.Request) (*Snapshot, error) {
	var req struct {
		Voter  string `json:"voter"`
		Option string `json:"option"`
	}
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	voter := voterOf(r, req.Voter)
	if voter == "" {
		return nil, fail(http.StatusBadRequest, "invalid_voter", "voter is required")
	}
	if err := checkVoter(voter); err != nil {
		return nil, err
	}
	if err := p.vote(voter, req.Option); err != nil {
		return nil, err
	}
	p.broadcast("tally")
	return p.snapshot()
}

// region: broadcast

// broadcast sends the poll to every watching socket as a frame of type typ.
// State.Broadcast encodes the frame once for all of them; like every
// output, it leaves only after this event's writes are durable.
func (p *Poll) broadcast(typ string) {
	s, err := p.snapshot()
	if err != nil {
		return // no poll, nobody to tell
	}
	p.state.Broadcast(tagWatcher, mustJSON(Frame{Type: typ, Poll: s}))
}

// endregion

// snapshot returns the poll as clients see it.
func (p *Poll) snapshot() (*Snapshot, error) {
	if p.def == nil {
		return nil, errNoPoll
	}
	s := &Snapshot{Definition: *p.def, Votes: make(map[string]int, len(p.def.Options))}
	for _, o := range p.def.Options {
		s.Votes[o] = p.tally[o]
	}
	return s, nil
}

// region: accept

// session is what a poll remembers about one socket. It is kept as the
// socket's attachment, which lives with the socket, not with the instance:
// it is still there when the object wakes up from eviction.
type session struct {
	Voter string `json:"voter,omitempty"`
}

// accept takes a WebSocket that watches the poll. A socket opened with
// ?voter=NAME (or by an authenticated player) may also vote, as that voter.
func (p *Poll) accept(w http.ResponseWriter, r *http.Request) error {
	if p.def == nil {
		return errNoPoll
	}
	voter := voterOf(r, r.URL.Query().Get("voter"))
	if voter != "" {
		if err := checkVoter(voter); err != nil {
			return err
		}
	}
	ws, err := p.state.AcceptWebSocket(w, r, tagWatcher)
	if err != nil {
		return fail(http.StatusUpgradeRequired, "websocket_required", "%v", err)
	}
	// From here on the answer is the upgrade: report problems on the socket.
	if err := ws.SetAttachment(session{Voter: voter}); err != nil {
		ws.Close(protocol.CloseInternalError, "attachment")
		return nil
	}
	s, _ := p.snapshot()
	ws.Send(mustJSON(Frame{Type: "tally", Poll: s}))
	return nil
}

// voterOf is who a request votes as: the authenticated player when the
// server authenticates clients (runtime.WithPrincipal), else what it says.
func voterOf(r *http.Request, claimed string) string {
	if pr, ok := runtime.PrincipalFrom(r.Context()); ok {
		return pr.ID
	}
	return claimed
}

// endregion

// region: messages

// OnMessage handles one frame from a socket:
//
//	{"type":"vote","option":O}  vote as the socket's voter: "voted" to the
//	                            socket, then "tally" to every watcher
//	{"type":"ping"}             {"type":"pong"}
//
// A bad frame gets an "error" frame and leaves the socket open.
func (p *Poll) OnMessage(ctx context.Context, ws *runtime.WebSocket, msg runtime.Message) {
	var in struct {
		Type   string `json:"type"`
		Option string `json:"option"`
	}
	if msg.Binary || json.Unmarshal(msg.Data, &in) != nil {
		sendError(ws, fail(http.StatusBadRequest, "invalid_json", "frames are JSON text"))
		return
	}
	switch in.Type {
	case "ping":
		ws.Send(mustJSON(Frame{Type: "pong"}))
	case "vote":
		var s session
		if _, err := ws.Attachment(&s); err != nil || s.Voter == "" {
			sendError(ws, fail(http.StatusForbidden, "not_a_voter", "this socket only watches; connect with ?voter=NAME to vote"))
			return
		}
		if err := p.vote(s.Voter, in.Option); err != nil {
			sendError(ws, err)
			return
		}
		ws.Send(mustJSON(Frame{Type: "voted", Option: in.Option}))
		p.broadcast("tally")
	default:
		sendError(ws, fail(http.StatusBadRequest, "unknown_type", "unknown frame type %q", in.Type))
	}
}

// OnClose has nothing to clean up: the socket is already gone from
// GetWebSockets (so broadcasts skip it), and votes live in storage.
func (p *Poll) OnClose(ctx context.Context, ws *runtime.WebSocket, code int, reason string) {}

// OnError is told about a message the runtime refused before OnMessage
// (runtime.ErrMessageTooLarge); the socket stays open.
func (p *Poll) OnError(ctx context.Context, ws *runtime.WebSocket, err error) {
	sendError(ws, fail(http.StatusRequestEntityTooLarge, "too_large", "%v", err))
}

// endregion

// region: alarm

// OnAlarm closes the poll. The runtime calls it once the alarm set by
// create is due, even if the server restarted or the object moved to another
// node in between. Its writes and the alarm's removal commit together; had
// it returned an error, the runtime would drop its writes and frames, keep
// the alarm and call it again later, possibly on this same instance: so the
// in-memory copy changes only after the last step that can fail.
func (p *Poll) OnAlarm(ctx context.Context) error {
	if p.def == nil || p.def.Closed {
		return nil
	}
	def := *p.def
	def.Closed = true
	if err := runtime.PutJSON(p.state.Storage(), keyDefinition, def); err != nil {
		return fmt.Errorf("close poll: %w", err)
	}
	p.def = &def
	p.broadcast("closed")
	return nil
}

// endregion

// reply answers an HTTP request with v, or with err as {code, message}.
func (p *Poll) reply(w http.ResponseWriter, status int, v any, err error) {
	var perr *Error
	switch {
	case errors.As(err, &perr):
		status, v = perr.Status, perr
	case err != nil:
		slog.Error("poll request failed", "poll", p.state.Name(), "err", err)
		status, v = http.StatusInternalServerError, fail(http.StatusInternalServerError, "internal", "internal error")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(mustJSON(v), '\n')) // the runtime's ResponseWriter buffers: no error
}

// sendError sends err to one socket as an "error" frame.
func sendError(ws *runtime.WebSocket, err error) {
	var perr *Error
	if !errors.As(err, &perr) {
		slog.Error("poll frame failed", "err", err)
		perr = fail(http.StatusInternalServerError, "internal", "internal error")
	}
	ws.Send(mustJSON(Frame{Type: "error", Code: perr.Code, Message: perr.Message}))
}

// mustJSON encodes a value of this package's own types, which cannot fail
// to encode; a failure is a bug, and panicking makes the runtime drop the
// event's writes and answer "internal".
func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("poll: encode %T: %v", v, err))
	}
	return raw
}

// decodeBody decodes a JSON request body of at most maxBodySize bytes.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodySize))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fail(http.StatusBadRequest, "invalid_json", "request body: %v", err)
	}
	return nil
}

func checkDefinition(question string, options []string, durationSeconds int) error {
	if n := utf8.RuneCountInString(question); n < 1 || n > maxTextLen {
		return fail(http.StatusBadRequest, "invalid_question", "question must be 1..%d characters", maxTextLen)
	}
	if len(options) < 2 || len(options) > maxOptions {
		return fail(http.StatusBadRequest, "invalid_options", "a poll has 2..%d options", maxOptions)
	}
	for i, o := range options {
		if n := utf8.RuneCountInString(o); n < 1 || n > maxTextLen {
			return fail(http.StatusBadRequest, "invalid_options", "options must be 1..%d characters", maxTextLen)
		}
		if slices.Contains(options[:i], o) {
			return fail(http.StatusBadRequest, "invalid_options", "option %q appears twice", o)
		}
	}
	if durationSeconds < 1 || durationSeconds > int(maxDuration/time.Second) {
		return fail(http.StatusBadRequest, "invalid_duration", "durationSeconds must be 1..%d", int(maxDuration/time.Second))
	}
	return nil
}

func checkVoter(voter string) error {
	if voter == "" || len(voter) > maxVoterLen || !utf8.ValidString(voter) {
		return fail(http.StatusBadRequest, "invalid_voter", "voter must be 1..%d bytes of UTF-8", maxVoterLen)
	}
	return nil
}
