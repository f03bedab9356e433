// Command poll-server serves the example Poll object of docs/authoring.md:
// each poll lives under /polls/{name}/. It is a whole Holocron node (package
// node) with one type, so it takes holocron's command line as it is: one
// node with
//
//	poll-server serve -http 127.0.0.1:8080 -data ./poll-data
//
// or a cluster with the README's cluster commands (cert, then serve with
// -node-name, -join, -certs-dir, …), where a kill -9 of any one node loses
// nothing any client was told.
package main

import (
	"os"

	"github.com/holocron-run/holocron/docs/example/poll"
	"github.com/holocron-run/holocron/node"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
)

// region: main
func main() {
	os.Exit(node.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv, node.Types{
		Register: func(r *runtime.Registry) error {
			r.Register(poll.ClassName, poll.New)
			return nil
		},
		// /polls/{name}/… reaches the Poll called {name}, which sees the
		// path after its name.
		Routes: []gateway.Route{{Prefix: "/polls/", Class: poll.ClassName}},
	}))
}

// endregion
