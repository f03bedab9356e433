// Command holocron is one node of a Holocron cluster: a self-hosted Durable
// Objects runtime. `holocron serve` with no flags runs a single node with its
// data in ./data and HTTP on :8080.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage: holocron <command> [flags]

commands:
  serve     run a node (see holocron serve -h)
  token     print a signed player token (see holocron token -h)
  cert      create the cluster's CA, node and client certificates (see holocron cert -h)
  backup    save a consistent snapshot of a running node (-from URL -out FILE)
  restore   load a backup into an empty data directory (-in FILE -data DIR)
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
		if cfg.PrintConfig {
			if err := printConfig(stdout, cfg); err != nil {
				fmt.Fprintf(stderr, "holocron serve: %v\n", err)
				return 1
			}
			return 0
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
	case "token":
		return tokenCommand(args[1:], stdout, stderr, getenv)
	case "cert":
		return certCommand(args[1:], stdout, stderr)
	case "backup":
		return backupCommand(args[1:], stdout, stderr, getenv)
	case "restore":
		return restoreCommand(args[1:], stdout, stderr, getenv)
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
	tok, err := issueToken([]byte(key), *player, *name, *ttl, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "holocron token: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
