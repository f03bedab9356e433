// Command kvnode is a Holocron node (package node) whose one type is a
// test-only register, for the robustness suite's recorded histories:
// Register {name}: GET / answers {"v":N}, the value last written (0 before
// any); PUT /?v=N writes N and answers {"v":N}.
//
// -kv-stale-reads plants a bug for the checker to find: each node keeps
// the values it saw written in its own memory and answers reads from
// there, so a node that owned a register before, and owns it again after
// a move, answers with the value of its earlier term.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/holocron-run/holocron/node"
	"github.com/holocron-run/holocron/runtime"
)

func main() {
	var staleReads bool
	seen := &memory{values: map[string]int64{}}
	os.Exit(node.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv, node.Types{
		Flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&staleReads, "kv-stale-reads", false, "test only: answer reads from this node's memory of writes (a planted bug)")
		},
		Register: func(r *runtime.Registry) error {
			r.Register("Register", func(st *runtime.State) (runtime.Object, error) {
				return &register{state: st, stale: staleReads, seen: seen}, nil
			})
			return nil
		},
	}))
}

// memory is a node's memory of the values written (the planted bug's).
type memory struct {
	mu     sync.Mutex
	values map[string]int64
}

type register struct {
	state *runtime.State
	stale bool
	seen  *memory
}

func (g *register) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	st := g.state.Storage()
	switch r.Method {
	case http.MethodPut:
		v, err := strconv.ParseInt(r.URL.Query().Get("v"), 10, 64)
		if err != nil {
			http.Error(w, "v must be an integer", http.StatusBadRequest)
			return
		}
		if err := runtime.PutJSON(st, "v", v); err != nil {
			panic(err)
		}
		g.seen.mu.Lock()
		g.seen.values[g.state.Name()] = v
		g.seen.mu.Unlock()
		fmt.Fprintf(w, `{"v":%d}`, v)
	case http.MethodGet:
		if g.stale {
			g.seen.mu.Lock()
			v, ok := g.seen.values[g.state.Name()]
			g.seen.mu.Unlock()
			if ok {
				fmt.Fprintf(w, `{"v":%d}`, v)
				return
			}
		}
		v, _, err := runtime.GetJSON[int64](st, "v")
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(w, `{"v":%d}`, v)
	default:
		http.Error(w, "GET or PUT", http.StatusMethodNotAllowed)
	}
}
