package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// envelope holds the fields the client reads from every server frame before
// decoding the frame's own type. Only type and requestId are common to all
// frames: other fields with the names of the failure fields may have other
// types (new_message's "message" is an object), so those are decoded only
// for failure frames.
type envelope struct {
	Type      string `json:"type"`
	RequestID string `json:"requestId"`
	RoomID    string `json:"-"` // set for failure frames and room_left
	fail      *Error // set for failure frames
}

// decodeEnvelope reads a frame's envelope.
func decodeEnvelope(raw []byte) (*envelope, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, err
	}
	if env.Type == "" {
		return nil, errors.New("frame without type")
	}
	if isFailure(env.Type) || env.Type == typeRoomLeft {
		var f struct {
			Code        string `json:"code"`
			Message     string `json:"message"`
			Detail      string `json:"detail"`
			RequestType string `json:"requestType"`
			RoomID      string `json:"roomId"`
		}
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, err
		}
		env.RoomID = f.RoomID
		if isFailure(env.Type) {
			env.fail = &Error{Code: f.Code, Message: f.Message, Detail: f.Detail, RequestType: f.RequestType, RoomID: f.RoomID}
		}
	}
	return &env, nil
}

// Failure frame types: a request with its own failure type reports every
// failure through it, all others through "error".
const (
	typeError           = "error"
	typeJoinFailed      = "join_failed"
	typeStartGameFailed = "start_game_failed"
	typePing            = "ping"
	typePong            = "pong"
)

func isFailure(typ string) bool {
	return typ == typeError || typ == typeJoinFailed || typ == typeStartGameFailed
}

// failure returns the *Error of a failure frame.
func (e *envelope) failure() *Error { return e.fail }

// call is one request: a frame, and whoever waits for its answer. The first
// frame echoing the call's requestId with the final type (or a failure
// type) completes it.
type call struct {
	body  []byte // the encoded frame, without requestId
	final string // the reply type that completes the call

	// What happens when the connection the call was written to is lost:
	retry     bool   // re-send it on the next connection (safe to repeat)
	lostOK    bool   // losing the connection accomplishes it (chat leave_room)
	okOnRetry string // once re-sent, this failure code means it had worked
	internal  bool   // the client's own bookkeeping: dropped, not retried

	// onFrame, if set, sees every frame echoing the call's requestId
	// (failures included) on the reader goroutine, before the call
	// completes.
	onFrame func(env *envelope, raw []byte)

	// Set by the core, guarded by core.mu.
	seq   uint64
	id    string
	data  []byte  // body with requestId
	conn  *wsConn // the connection it was last written to; nil if unsent
	sends int
	done  chan result
}

// result is how a call ended: its final frame, or an error.
type result struct {
	env *envelope
	raw []byte
	err error
}

// assign gives the call its sequence number and requestId. Re-sends keep
// both, so the server's answer to any copy completes the call.
func (c *call) assign(seq uint64) {
	c.seq = seq
	c.id = "c" + strconv.FormatUint(seq, 10)
	c.data = withRequestID(c.body, c.id)
	c.done = make(chan result, 1)
}

// withRequestID adds "requestId" to an encoded JSON object. The client's
// frames always have a type, so the object is never empty.
func withRequestID(body []byte, id string) []byte {
	var b bytes.Buffer
	b.Grow(len(body) + len(id) + 16)
	b.WriteString(`{"requestId":`)
	b.WriteString(strconv.Quote(id))
	b.WriteByte(',')
	b.Write(bytes.TrimPrefix(bytes.TrimSpace(body), []byte("{")))
	return b.Bytes()
}
