// Command edgenode is a Holocron node (package node) whose only type, Room,
// is defined here, for the edge-socket tests of package node: sockets of
// one object connected through every node of a cluster.
//
// Room, GET /ws (a WebSocket upgrade; ?refuse=1 answers 403 instead):
// accepts the socket. A text message "say:X" is broadcast to every socket
// as "N:X", N counting the room's broadcasts; any other message is echoed
// to its sender as "echo:X". A message over the runtime's size limit is
// answered {"error":"too_large"}. POST /broadcast?n=N broadcasts N frames
// "N:bI", one event each write. GET /state answers the open sockets and
// the closes the room saw, with their codes.
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

// broadcast sends "N:text" to every socket, N the room's next count.
func (o *room) broadcast(text string) {
	st := o.state.Storage()
	n, _, _ := runtime.GetJSON[int](st, "n")
	n++
	runtime.PutJSON(st, "n", n)
	o.state.Broadcast("", []byte(fmt.Sprintf("%d:%s", n, text)))
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
		closes, _, _ := runtime.GetJSON[[]int](o.state.Storage(), "closes")
		json.NewEncoder(w).Encode(map[string]any{"open": len(o.state.GetWebSockets("")), "closes": closes})
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
