package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is a failure the server reported: the failure frame answering a
// request (error, join_failed, start_game_failed), the body of an HTTP
// error, a refused WebSocket upgrade, or a 4001 close. Switch on Code (the
// codes are protocol.Code…, plus CodeUnauthorized and CodeTokenExpired);
// Message is for humans and may change.
//
// An *Error that answers no request (rate_limited, a room the client could
// not rejoin) is also delivered as an event.
type Error struct {
	Code        string
	Message     string
	Detail      string // start_game_failed's specific reason
	RequestType string // the request type that failed, when known
	RoomID      string // the room it concerned, when known
	Status      int    // HTTP status (REST and refused upgrades); 0 for frames
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Detail != "" && e.Detail != e.Message {
		s += " (" + e.Detail + ")"
	}
	if e.Status != 0 {
		s = fmt.Sprintf("%s (HTTP %d)", s, e.Status)
	}
	return s
}

func (*Error) isEvent() {}

// IsCode reports whether err is, or wraps, an *Error with the given code.
func IsCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

var (
	// ErrClosed is returned by requests after Close, and by Err once Close
	// stopped the client.
	ErrClosed = errors.New("client closed")

	// ErrConnectionLost is returned by a request that is not safe to repeat
	// (start_game, game_action, end_game, ping) when its connection was lost
	// before the answer came: it may or may not have taken effect. The
	// client has reconnected or is reconnecting; the room state it reports
	// on rejoin tells what happened.
	ErrConnectionLost = errors.New("connection lost while the request was in flight")
)

// httpError turns an HTTP error response into an *Error. Bodies that are not
// PROTOCOL.md's {code, message} keep the status text.
func httpError(status int, body []byte) *Error {
	var b struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &b) != nil || b.Code == "" {
		b.Code, b.Message = "http_"+fmt.Sprint(status), http.StatusText(status)
	}
	return &Error{Code: b.Code, Message: b.Message, Status: status}
}

// terminalStatus reports whether a refused upgrade means retrying cannot
// help: the credentials are wrong. Everything else (503 while a partition
// moves, a node restarting) is worth another attempt.
func terminalStatus(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden
}
