package client

import "time"

// Event is something the server or the connection did that no request is
// waiting for. It is one of the pointer types of this package: for chat
// *NewMessage, *UserJoined, *UserLeft, *ChatRejoined, *HistoryTruncated;
// for games *PlayerJoined, *PlayerLeft, *RoomLeft, *GameStarted,
// *ScoreUpdated, *GameAction, *GameEnded, *GameRejoined; for both *Error,
// *Disconnected and *Reconnected. Switch on the type.
type Event interface{ isEvent() }

// Disconnected says the connection to Addr ended. Code and Reason are the
// server's close code and text (0 and "" when the connection just broke).
// With Retrying the client is reconnecting; without it the client stopped
// for good, Err says why, and Events closes after this event.
type Disconnected struct {
	Addr     string
	Code     int
	Reason   string
	Err      error
	Retrying bool
}

// Reconnected says the client is connected again, to Addr, after Attempts
// dial attempts and Downtime without a connection. The rooms it had joined
// are being rejoined: their *ChatRejoined / *GameRejoined events follow.
type Reconnected struct {
	Addr     string
	Attempts int
	Downtime time.Duration
}

func (*Disconnected) isEvent() {}
func (*Reconnected) isEvent()  {}
