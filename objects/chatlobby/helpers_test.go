package chatlobby_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// routes are the gateway routes of PROTOCOL.md: the main lobby and the
// sharded lobbies.
var routes = []gateway.Route{
	{Prefix: "/api/lobby", Class: chatlobby.ClassName, Name: "main"},
	{Prefix: "/api/lobbies/", Class: chatlobby.ClassName},
}

// env is a running lobby server and the base path of the lobby under test.
type env struct {
	t    *testing.T
	s    *runtimetest.Server
	base string
}

func start(t *testing.T, opts chatlobby.Options) *env {
	return startWith(t, opts, runtime.Options{}, "")
}

func startWith(t *testing.T, opts chatlobby.Options, ro runtime.Options, dir string) *env {
	t.Helper()
	s := runtimetest.Start(t, runtimetest.Options{
		Dir:     dir,
		Runtime: ro,
		Routes:  routes,
		Register: func(r *runtime.Registry) {
			r.Register(chatlobby.ClassName, chatlobby.New(opts))
		},
	})
	return &env{t: t, s: s, base: "/api/lobby"}
}

func (e *env) dial() *runtimetest.Conn {
	e.t.Helper()
	return e.s.Dial(e.base + "/websocket")
}

// createRoom creates a room and fails the test unless it got 201.
func (e *env) createRoom(id string, extra map[string]any) runtimetest.Frame {
	e.t.Helper()
	body := map[string]any{"roomId": id, "name": "Room " + id}
	for k, v := range extra {
		body[k] = v
	}
	code, f := e.s.Do(http.MethodPost, e.base+"/rooms", body)
	if code != http.StatusCreated {
		e.t.Fatalf("create room %s: %d %v", id, code, f)
	}
	return f
}

// room returns GET /rooms/{id}.
func (e *env) room(id string) runtimetest.Frame {
	e.t.Helper()
	code, f := e.s.Do(http.MethodGet, e.base+"/rooms/"+id, nil)
	if code != http.StatusOK {
		e.t.Fatalf("get room %s: %d %v", id, code, f)
	}
	return f
}

// history returns GET /rooms/{id}/messages?query.
func (e *env) history(id, query string) runtimetest.Frame {
	e.t.Helper()
	code, f := e.s.Do(http.MethodGet, e.base+"/rooms/"+id+"/messages?"+query, nil)
	if code != http.StatusOK {
		e.t.Fatalf("get messages of %s: %d %v", id, code, f)
	}
	return f
}

// waitHibernated waits until the runtime has evicted every instance.
func (e *env) waitHibernated() {
	e.t.Helper()
	eventually(e.t, "eviction of the lobby instance", func() bool { return e.s.Runtime.LiveInstances() == 0 })
}

// eventually polls cond until it holds, failing the test after
// runtimetest.Timeout. Use it to wait for something to happen, never to
// show that something did not.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(runtimetest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func joinFrame(room, player string) map[string]any {
	return map[string]any{"type": "join_room", "roomId": room, "playerId": player, "playerName": nameOf(player)}
}

// nameOf is the display name the tests give a player.
func nameOf(player string) string { return "Name of " + player }

// join makes c join room as player, the player's first socket there: it
// expects room_joined and then the user_joined that every room socket gets.
func join(t *testing.T, c *runtimetest.Conn, room, player string) runtimetest.Frame {
	t.Helper()
	c.Send(joinFrame(room, player))
	f := c.Expect("room_joined")
	if u := c.Expect("user_joined"); u.Str("playerId") != player || u.Str("roomId") != room {
		t.Fatalf("user_joined %v, want %s in %s", u, player, room)
	}
	return f
}

// joinAgain makes c join room as a player already present there (another
// socket of theirs): only room_joined comes back.
func joinAgain(t *testing.T, c *runtimetest.Conn, room, player string) runtimetest.Frame {
	t.Helper()
	c.Send(joinFrame(room, player))
	f := c.Expect("room_joined")
	c.ExpectNothing()
	return f
}

func say(c *runtimetest.Conn, room, player, content string) {
	c.Send(map[string]any{"type": "send_message", "roomId": room, "playerId": player, "content": content})
}

// strs converts a JSON array of strings.
func strs(v []any) []string {
	out := make([]string, 0, len(v))
	for _, x := range v {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// ids returns the ids of a list of messages.
func ids(msgs []any) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, runtimetest.Frame(m.(map[string]any)).Str("id"))
	}
	return out
}

// contents returns the contents of a list of messages.
func contents(msgs []any) []string {
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, runtimetest.Frame(m.(map[string]any)).Str("content"))
	}
	return out
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %q, want %q", what, got, want)
	}
}

// wantFailure checks a failure frame field by field; an empty wantRoomID,
// requestType or requestID means the field must be absent.
func wantFailure(t *testing.T, f runtimetest.Frame, typ, code, requestType, roomID, requestID string) {
	t.Helper()
	if f.Type() != typ || f.Str("code") != code || f.Str("requestType") != requestType ||
		f.Str("roomId") != roomID || f.Str("requestId") != requestID || f.Str("message") == "" {
		t.Fatalf("got %v\nwant type=%s code=%s requestType=%q roomId=%q requestId=%q and a message",
			f, typ, code, requestType, roomID, requestID)
	}
}

// msgID renders a message sequence number as the lobby's message id.
func msgID(seq int) string { return fmt.Sprintf("%020d", seq) }

func mustJSON(v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return raw
}
