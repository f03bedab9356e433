// Command holocron is one node of a Holocron cluster: a self-hosted Durable
// Objects runtime. `holocron serve` with no flags runs a single node with its
// data in ./data and HTTP on :8080.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: holocron <command> [flags]

commands:
  serve     run a node (see holocron serve -h)
  version   print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is main without the process: it returns the exit code, so tests can
// drive it in-process too.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := parseServeFlags(args[1:], getenv)
		if errors.Is(err, errHelp) {
			fmt.Fprint(stdout, serveUsage())
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "holocron serve: %v\n", err)
			return 2
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := serve(ctx, cfg, stderr); err != nil {
			fmt.Fprintf(stderr, "holocron serve: %v\n", err)
			var ue usageError
			if errors.As(err, &ue) {
				return 2
			}
			return 1
		}
		return 0
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "holocron %s\n", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "holocron: unknown command %q\n%s", args[0], usage)
		return 2
	}
}

// usageError marks an error caused by the operator's input (a bad flag, an
// unusable data directory): exit code 2 rather than 1.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }
