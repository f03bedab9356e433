// Command holocron is one node of a Holocron cluster: a self-hosted Durable
// Objects runtime. `holocron serve` with no flags runs a single node with its
// data in ./data and HTTP on :8080.
//
// It is package node (the node as a library, imported as holocron) with the shipped object
// types: ChatLobby, RoomManager and Leaderboard, and the web app.
package main

import (
	"errors"
	"flag"
	"io"
	"os"

	holocron "github.com/holocron-run/holocron/node"
	"github.com/holocron-run/holocron/objects/chatlobby"
	"github.com/holocron-run/holocron/objects/leaderboard"
	"github.com/holocron-run/holocron/objects/roommanager"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/web"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: it returns the exit code, so tests can
// drive it in-process too.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return holocron.Main(args, stdout, stderr, getenv, shipped())
}

// shipped are the shipped object types, their flags and public routes.
func shipped() holocron.Types {
	var historyLimit, maxRooms, maxLobbies, maxBoards, maxManagers int
	return holocron.Types{
		Flags: func(fs *flag.FlagSet) {
			fs.IntVar(&historyLimit, "history-limit", 1000, "chat messages kept per room")
			fs.IntVar(&maxRooms, "max-rooms", 10000, "chat rooms one lobby may hold, and game rooms the room manager may hold")
			fs.IntVar(&maxLobbies, "max-lobbies", 10000, "chat lobbies that may exist in the cluster (/api/lobbies/{name}/ creates one on its first write; beyond, 429 limit_exceeded)")
			fs.IntVar(&maxBoards, "max-leaderboards", 10000, "leaderboards that may exist in the cluster (/api/leaderboards/{name}/ creates one on its first write; beyond, 429 limit_exceeded)")
			fs.IntVar(&maxManagers, "max-room-managers", 100, "room managers that may exist in the cluster (besides main, the generic /objects/RoomManager/{name}/ route creates them)")
		},
		Register: func(r *runtime.Registry) error {
			switch {
			case historyLimit < 1:
				return errors.New("-history-limit must be at least 1")
			case maxRooms < 1 || maxLobbies < 1 || maxBoards < 1 || maxManagers < 1:
				return errors.New("-max-rooms, -max-lobbies, -max-leaderboards and -max-room-managers must be at least 1")
			}
			r.Register(chatlobby.ClassName, chatlobby.New(chatlobby.Options{HistoryLimit: historyLimit, MaxRooms: maxRooms}))
			r.Register(roommanager.ClassName, roommanager.New(roommanager.Options{MaxRooms: maxRooms}))
			r.Register(leaderboard.ClassName, leaderboard.New(leaderboard.Options{}))
			// Any client can name a new object on the public routes: the
			// classes' sizes are bounded cluster-wide.
			r.Limit(chatlobby.ClassName, maxLobbies)
			r.Limit(leaderboard.ClassName, maxBoards)
			r.Limit(roommanager.ClassName, maxManagers)
			return nil
		},
		Routes: []gateway.Route{
			{Prefix: "/api/lobby", Class: chatlobby.ClassName, Name: "main"},
			{Prefix: "/api/lobbies/", Class: chatlobby.ClassName},
			{Prefix: "/api/room-manager", Class: roommanager.ClassName, Name: "main"},
			{Prefix: "/api/leaderboards/", Class: leaderboard.ClassName},
		},
		Web:      web.Handler(),
		WebPaths: web.Paths,
	}
}
