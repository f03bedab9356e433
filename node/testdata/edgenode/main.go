// Command edgenode is a Holocron node (package node) whose only type, Room,
// is defined here, for the edge-socket tests of package node: sockets of
// one object connected through every node of a cluster.
//
// Room, GET /ws (a WebSocket upgrade; ?refuse=1 answers 403 instead):
// accepts the socket. A text message "say:X" is broadcast to every socket
// as "N:X", N counting the room's broadcasts (each stored, and sent with
// cursor N under key "room"); any other message is echoed to its sender
// as "echo:X". A message over the runtime's size limit is answered
// {"error":"too_large"}. POST /broadcast?n=N broadcasts N frames "N:bI".
// GET /state answers the open sockets, the closes the room saw, with their
// codes, the count N and the sockets taken back after a move. Room is a
// runtime.Reattacher: a socket attached to it after its owner changed is
// sent every broadcast after its cursor.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/holocron-run/holocron/node"
	"github.com/holocron-run/holocron/runtime"
)

func main() {
	os.Exit(node.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv, node.Types{
		Register: func(r *runtime.Registry) error {
			r.Register("Room", func(st *runtime.State) (runtime.Object, error) { return &room{st}, nil })
			return nil
		},
	}))
}

type room struct{ state *runtime.State }

// broadcast sends "N:text" to every socket, N the room's next count, and
// keeps it for sockets that come back after a move.
func (o *room) broadcast(text string) {
	st := o.state.Storage()
	n, _, _ := runtime.GetJSON[int](st, "n")
	n++
	runtime.PutJSON(st, "n", n)
	frame := fmt.Sprintf("%d:%s", n, text)
	runtime.PutJSON(st, fmt.Sprint("m/", n), frame)
	if err := o.state.BroadcastAt("", []byte(frame), "room", strconv.Itoa(n)); err != nil {
		panic(err)
	}
}

// OnReattach sends the socket every broadcast after its cursor.
func (o *room) OnReattach(ctx context.Context, ws *runtime.WebSocket, cursors map[string]string) {
	st := o.state.Storage()
	from, _ := strconv.Atoi(cursors["room"])
	n, _, _ := runtime.GetJSON[int](st, "n")
	for i := from + 1; i <= n; i++ {
		frame, _, _ := runtime.GetJSON[string](st, fmt.Sprint("m/", i))
		if err := ws.SendAt([]byte(frame), "room", strconv.Itoa(i)); err != nil {
			panic(err)
		}
	}
	back, _, _ := runtime.GetJSON[int](st, "reattached")
	runtime.PutJSON(st, "reattached", back+1)
}

func (o *room) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/ws":
		if r.URL.Query().Get("refuse") != "" {
			http.Error(w, "refused by the room", http.StatusForbidden)
			return
		}
		if _, err := o.state.AcceptWebSocket(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	case "/broadcast":
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		for i := range n {
			o.broadcast(fmt.Sprint("b", i))
		}
		fmt.Fprintf(w, `{"sent":%d}`, n)
	case "/state":
		st := o.state.Storage()
		closes, _, _ := runtime.GetJSON[[]int](st, "closes")
		n, _, _ := runtime.GetJSON[int](st, "n")
		back, _, _ := runtime.GetJSON[int](st, "reattached")
		json.NewEncoder(w).Encode(map[string]any{"open": len(o.state.GetWebSockets("")), "closes": closes, "n": n, "reattached": back})
	default:
		http.NotFound(w, r)
	}
}

func (o *room) OnMessage(ctx context.Context, ws *runtime.WebSocket, msg runtime.Message) {
	text := string(msg.Data)
	if said, ok := strings.CutPrefix(text, "say:"); ok {
		o.broadcast(said)
		return
	}
	ws.Send([]byte("echo:" + text))
}

func (o *room) OnClose(ctx context.Context, ws *runtime.WebSocket, code int, reason string) {
	st := o.state.Storage()
	closes, _, _ := runtime.GetJSON[[]int](st, "closes")
	runtime.PutJSON(st, "closes", append(closes, code))
}

func (o *room) OnError(ctx context.Context, ws *runtime.WebSocket, err error) {
	ws.Send([]byte(`{"error":"too_large"}`))
}
