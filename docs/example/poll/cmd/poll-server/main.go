// Command poll-server serves the example Poll object of docs/authoring.md
// on one node: each poll lives under /polls/{name}/, every poll's data is
// in one Pebble database, and a kill -9 loses nothing any client was told.
//
//	poll-server -http 127.0.0.1:8080 -data ./poll-data
//
// It is the smallest complete server: open storage, register the class,
// start the runtime, route URLs to objects, shut down gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/holocron-run/holocron/docs/example/poll"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/runtime/gateway"
	"github.com/holocron-run/holocron/storage"
)

func main() {
	httpAddr := flag.String("http", "127.0.0.1:8080", "HTTP listen address")
	dataDir := flag.String("data", "./poll-data", "data directory (one Pebble database)")
	idle := flag.Duration("idle-timeout", 30*time.Second, "evict poll instances idle this long (their sockets stay open)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, nil)))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *httpAddr, *dataDir, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "poll-server:", err)
		os.Exit(1)
	}
}

// run serves until ctx is cancelled, then shuts down gracefully.
func run(ctx context.Context, httpAddr, dataDir string, idle time.Duration) error {
	// region: wiring

	store, err := storage.OpenPebble(dataDir, storage.PebbleOptions{})
	if err != nil {
		return fmt.Errorf("open data directory: %w", err)
	}
	defer store.Close() // after the runtime: it waits for submitted commits

	classes := runtime.NewRegistry()
	classes.Register(poll.ClassName, poll.New)
	rt, err := runtime.New(runtime.Options{Store: store, Registry: classes, IdleTimeout: idle})
	if err != nil {
		return fmt.Errorf("start runtime: %w", err)
	}

	// /polls/{name}/… reaches the Poll called {name}, which sees the path
	// after its name. The gateway also serves /objects/{class}/{name}/….
	routes := []gateway.Route{{Prefix: "/polls/", Class: poll.ClassName}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"status":"ok"}`)
	})
	mux.Handle("/", gateway.New(rt, routes))
	// endregion

	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", httpAddr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	slog.Info("poll-server serving", "http", ln.Addr().String(), "data", dataDir)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}

	// region: shutdown

	// Stop taking requests, then let the runtime close every socket with
	// 1001 (going away) and finish each object's queued events, so their
	// writes are durable before the store closes.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	httpErr := srv.Shutdown(sctx)
	if err := errors.Join(httpErr, rt.Close(sctx)); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// endregion
	slog.Info("poll-server stopped")
	return nil
}
