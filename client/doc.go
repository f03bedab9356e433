// Package client is the Go client of Holocron's ChatLobby and RoomManager
// objects (PROTOCOL.md). It hides what makes a durable-object cluster hard
// to talk to: nodes die, objects move, sockets close with codes that mean
// "come back now", "come back later" or "never with this token".
//
// DialChat and DialGame connect to one of several node addresses. From then
// on the client keeps itself connected: it pings, and when the connection
// is lost or the server closes it with 1001, 1012 (moved), 1013 or 4008 it
// reconnects to any listed node with jittered exponential backoff, joins
// every room again under the same player, and re-sends the requests that
// were in flight and are safe to repeat. A 4001 close (auth failed or token
// expired) stops the client instead.
//
// Chat messages reach the application as one ordered stream per room:
// every message of the room's history after the point the application
// joined, exactly once, in commit order, across reconnects and failovers.
// The client resumes with `since` = the last message it delivered, removes
// duplicates by message id and fills gaps (join and leave entries, which the
// server announces only as presence) with get_history. A SendMessage whose
// connection dropped is re-sent with the same clientMsgId, which the server
// stores once.
//
// Requests are methods that wait for their reply and return *Error when the
// server refused them. Everything else the server says arrives on Events as
// typed values (*NewMessage, *ScoreUpdated, *Disconnected, …). Close stops
// the client and every goroutine it started.
package client
