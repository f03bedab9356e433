// Package node is a whole Holocron node as a library: the client and peer
// listeners, TLS, player auth, the admin API, /metrics, the runtime, the
// cluster and a graceful shutdown in the right order, for any set of object
// types. cmd/holocron is this package with the shipped types; an author's
// own main is a dozen lines (docs/authoring.md):
//
//	func main() {
//		os.Exit(node.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv, node.Types{
//			Register: func(r *runtime.Registry) error {
//				r.Register("Poll", poll.New)
//				return nil
//			},
//			Routes: []gateway.Route{{Prefix: "/polls/", Class: "Poll"}},
//		}))
//	}
//
// Main gives that binary holocron's whole command line (serve with its
// flags, config file and environment, cert, token, backup, restore), so
// the README's cluster commands run it on three machines as they are.
package node

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
)

// Version is the binary's version, shown by `version` and on /admin: set
// it at build time with -ldflags "-X github.com/holocron-run/holocron/node.Version=…".
var Version = "dev"

// Types are what a node runs: its object classes and their public routes.
type Types struct {
	// Flags, when set, declares the types' own serve flags on fs; like
	// every serve flag each gets an environment twin (HOLOCRON_NAME) and a
	// config-file key.
	Flags func(fs *flag.FlagSet)
	// Register registers the classes, once the flags are parsed; an error
	// (a flag's bad value) stops the node with a usage error.
	Register func(r *runtime.Registry) error
	// Routes are the public URL prefixes of the classes, besides the
	// generic /objects/{class}/{name}/.
	Routes []gateway.Route
	// Web, when set, serves the GET requests for WebPaths (a web app).
	Web      http.Handler
	WebPaths []string
}

const usage = `usage: holocron <command> [flags]

commands:
  serve     run a node (see holocron serve -h)
  token     print a signed player token (see holocron token -h)
  cert      create the cluster's CA, node and client certificates (see holocron cert -h)
  backup    save a consistent snapshot of a running node (-from URL -out FILE)
  restore   load a backup into an empty data directory (-in FILE -data DIR)
  version   print the version
`

// Main is the holocron command line over types: args are the arguments
// after the program's name; it returns the exit code (2 for a usage
// error). `serve` runs until SIGTERM or SIGINT, then shuts down gracefully.
func Main(args []string, stdout, stderr io.Writer, getenv func(string) string, types Types) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		cfg, err := ParseConfig(args[1:], getenv, types.Flags)
		if errors.Is(err, errHelp) {
			fmt.Fprint(stdout, serveUsage(types.Flags))
			return 0
		}
		if err != nil {
			fmt.Fprintf(stderr, "holocron serve: %v\n", err)
			return 2
		}
		if cfg.PrintConfig {
			if err := printConfig(stdout, cfg); err != nil {
				fmt.Fprintf(stderr, "holocron serve: %v\n", err)
				return 1
			}
			return 0
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		defer stop()
		if err := Run(ctx, cfg, types, stderr); err != nil {
			fmt.Fprintf(stderr, "holocron serve: %v\n", err)
			var ue usageError
			if errors.As(err, &ue) {
				return 2
			}
			return 1
		}
		return 0
	case "token":
		return tokenCommand(args[1:], stdout, stderr, getenv)
	case "cert":
		return certCommand(args[1:], stdout, stderr)
	case "backup":
		return backupCommand(args[1:], stdout, stderr, getenv)
	case "restore":
		return restoreCommand(args[1:], stdout, stderr, getenv)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "holocron %s\n", Version)
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

// IsUsageError reports whether Run failed because of the operator's input
// (a flag, an unusable data directory) rather than while running.
func IsUsageError(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// tokenCommand prints a player token signed with the server's auth secret,
// for tests, bots and operators handing out access.
func tokenCommand(args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	authSecret := secret{name: "auth-secret"}
	authSecret.declare(fs, getenv(envName("auth-secret")), "the servers' -auth-secret (env "+envName("auth-secret")+")")
	player := fs.String("player", "", "playerId the token fixes (required)")
	name := fs.String("name", "", "player name (default: the playerId)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	key, err := authSecret.resolve()
	switch {
	case err != nil:
		fmt.Fprintln(stderr, "holocron token:", err)
		return 2
	case key == "":
		fmt.Fprintln(stderr, "holocron token: -auth-secret, -auth-secret-file (or "+envName("auth-secret")+") is required")
		return 2
	case *player == "":
		fmt.Fprintln(stderr, "holocron token: -player is required")
		return 2
	case *ttl <= 0:
		fmt.Fprintln(stderr, "holocron token: -ttl must be positive")
		return 2
	}
	if *name == "" {
		*name = *player
	}
	tok, err := IssueToken([]byte(key), *player, *name, *ttl, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "holocron token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
