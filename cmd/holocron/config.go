package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// serveConfig is everything `holocron serve` can be told.
type serveConfig struct {
	HTTPAddr        string
	DataDir         string
	LogLevel        slog.Level
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
	HistoryLimit    int
}

var errHelp = errors.New("help requested")

// serveFlags declares the serve flags on fs, each with an environment twin
// HOLOCRON_<NAME> (dashes become underscores) that sets its default.
func serveFlags(fs *flag.FlagSet, cfg *serveConfig) {
	fs.StringVar(&cfg.HTTPAddr, "http", ":8080", "HTTP listen address (clients, API, metrics)")
	fs.StringVar(&cfg.DataDir, "data", "./data", "data directory (Pebble database)")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 30*time.Second, "evict an object instance after this long without events (its sockets stay open)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a graceful shutdown may take")
	fs.IntVar(&cfg.HistoryLimit, "history-limit", 1000, "chat messages kept per room")
}

func envName(flagName string) string {
	return "HOLOCRON_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseServeFlags(args []string, getenv func(string) string) (serveConfig, error) {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serveFlags(fs, &cfg)
	// Environment first, so flags given on the command line win.
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("invalid value %q for %s: %v", v, envName(f.Name), err)
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, errHelp
		}
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case cfg.HTTPAddr == "":
		return cfg, errors.New("-http must not be empty")
	case cfg.DataDir == "":
		return cfg, errors.New("-data must not be empty")
	case cfg.IdleTimeout <= 0:
		return cfg, errors.New("-idle-timeout must be positive")
	case cfg.ShutdownTimeout <= 0:
		return cfg, errors.New("-shutdown-timeout must be positive")
	case cfg.HistoryLimit < 1:
		return cfg, errors.New("-history-limit must be at least 1")
	}
	return cfg, nil
}

func serveUsage() string {
	var b strings.Builder
	b.WriteString("usage: holocron serve [flags]\n\nflags (each also read from the environment variable shown):\n")
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&b, "  -%s (env %s, default %q)\n      %s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
	})
	return b.String()
}
