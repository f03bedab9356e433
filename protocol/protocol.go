// Package protocol declares, once, what every part of Holocron and its
// clients say to each other on the wire (PROTOCOL.md): the error codes, the
// WebSocket close codes and what a client should do on each, and the error
// body ({"code","message"}, and the error frame). It imports nothing of
// Holocron: the runtime, the cluster, the objects, the Go client and the
// web app's server all import it. Frame decoding and the shipped objects'
// field rules are objects/frame's.
package protocol

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Error codes of PROTOCOL.md, and the texts of its fixed messages.
const (
	CodeInvalidJSON      = "invalid_json"
	CodeUnknownType      = "unknown_type"
	CodeMissingField     = "missing_field"
	CodeInvalidField     = "invalid_field"
	CodeTooLarge         = "too_large"
	CodeRateLimited      = "rate_limited"
	CodeRoomNotFound     = "room_not_found"
	CodeRoomExists       = "room_exists"
	CodeRoomFull         = "room_full"
	CodeNotInRoom        = "not_in_room"
	CodeGameInProgress   = "game_in_progress"
	CodeInvalidState     = "invalid_state"
	CodeNotEnoughPlayers = "not_enough_players"
	CodeForbidden        = "forbidden"
	CodeUnavailable      = "unavailable"
	// CodeLimitExceeded: a configured capacity (rooms per lobby) is used up.
	// Not in PROTOCOL.md's list; see PROTOCOL-NOTES.md.
	CodeLimitExceeded    = "limit_exceeded"
	CodeInternal         = "internal"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeNotFound         = "not_found"
	// CodeBadRequest: a request the server cannot read (a body broken
	// off, a malformed call); CodeRequestTimeout: a body not sent in time,
	// or a call past its deadline. Not in PROTOCOL.md's list.
	CodeBadRequest     = "bad_request"
	CodeRequestTimeout = "request_timeout"
	// CodeCallOutsideEvent: an object called another where it may not
	// (outside its event, inside Storage.Transaction).
	CodeCallOutsideEvent = "call_outside_event"
	// The auth layer's codes (HTTP 401). CodeUnauthorized: no token, a bad
	// token, or (for a 4001 close) a token the server stopped accepting.
	// CodeTokenExpired: the token is well formed but expired; get a new one.
	CodeUnauthorized     = "unauthorized"
	CodeTokenExpired     = "token_expired"
	MessageInvalidFormat = "Invalid message format"
	MessageUnknownType   = "Unknown message type"
	MessageJoinFailed    = "Failed to join room"
	MessageStartFailed   = "Failed to start game"
	MessageTooLarge      = "Message too large"
	TypeError            = "error"
	TypePing             = "ping"
	TypePong             = "pong"
)

// WebSocket close codes, grouped by what a client should do. The 1000s
// are RFC 6455's; the 4000s (4000-4999, the range RFC 6455 leaves to
// applications) are Holocron's. PROTOCOL.md "Close codes" is the contract.
const (
	// CloseNormal: the server ended the socket on purpose (the object was
	// deleted); do not reconnect to it.
	CloseNormal = 1000
	// CloseGoingAway: the node is shutting down; reconnect (to any node).
	CloseGoingAway = 1001
	// CloseAbnormal: the connection dropped without a close frame (never
	// sent; what a socket reports when that happened); reconnect.
	CloseAbnormal = 1006
	// CloseTooBig: a message over the largest frame; do not resend it.
	CloseTooBig = 1009
	// CloseInternalError: the object's storage failed; reconnect with
	// backoff and resync.
	CloseInternalError = 1011
	// CloseMoved: the object moved to another node (or the node failed);
	// reconnect at once, through any node.
	CloseMoved = 1012
	// CloseTryAgainLater: overloaded or unavailable; reconnect with backoff.
	CloseTryAgainLater = 1013
	// CloseAuthFailed: auth failed or the token expired; do not reuse the
	// token.
	CloseAuthFailed = 4001
	// ClosePolicy: too many sockets; reconnect later.
	ClosePolicy = 4008
)

// ReasonMoved is the reason of a 1012 close because the object left its
// node (a move, a hand-over, a lost partition), as against another 1012
// (an operator restored the object): the node holding the client's
// connection attaches such a socket to the object's next owner instead of
// closing it, when the object takes sockets back.
const ReasonMoved = "moved"

// Error is a protocol failure: a code and a human message.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf builds an Error.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorFrame is the generic failure frame {"type":"error",...}.
type ErrorFrame struct {
	Type        string `json:"type"`
	Code        string `json:"code"`
	Message     string `json:"message"`
	RequestType string `json:"requestType,omitempty"`
	RoomID      string `json:"roomId,omitempty"`
	RequestID   string `json:"requestId,omitempty"`
}

// ErrorFrameJSON encodes err as a generic failure frame, for a frame sent
// outside any object (the runtime's rate-limit reply).
func ErrorFrameJSON(err *Error) []byte {
	b, _ := json.Marshal(ErrorFrame{Type: "error", Code: err.Code, Message: err.Message})
	return b
}

// RateLimitedFrame is the frame a socket over its rate gets for each frame
// dropped (runtime.Options.RateLimitedReply): rate_limited, with no
// requestType, requestId or roomId (the frame is not even decoded).
func RateLimitedFrame() []byte {
	return ErrorFrameJSON(Errorf(CodeRateLimited, "too many frames; slow down"))
}

// WriteHTTPError answers an HTTP request with PROTOCOL.md's {code, message}.
func WriteHTTPError(w http.ResponseWriter, status int, err *Error) {
	WriteJSON(w, status, map[string]string{"code": err.Code, "message": err.Message})
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
