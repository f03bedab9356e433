package node

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is everything `holocron serve` can be told (but the types' own
// flags, Types.Flags). Make one with ParseConfig, which sets the defaults
// and checks the combination; a zero Config is not valid.
type Config struct {
	PrintConfig bool
	// Effective is every flag's value in force, for -print-config.
	Effective map[string]string

	HTTPAddr        string
	DataDir         string
	LogLevel        slog.Level
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration
	AdminToken      string
	AuthSecret      string
	AllowedOrigins  string
	TLSCert         string
	TLSKey          string
	origins         originPolicy
	// adminToken and authSecret are their flags (-NAME, -NAME-file).
	adminToken, authSecret secret
	RateLimit              float64
	RateBurst              int
	MaxSocketsIP           int
	MaxSocketsUser         int
	GCHeadroomMiB          int
	// GOGCSet: the operator set GOGC, which then stands.
	GOGCSet bool

	// Cluster mode (any of Bind, Join or Bootstrap set).
	NodeName          string
	Bind              string
	Advertise         string
	AdvertiseHTTP     string
	PeerAddr          string
	AdvertisePeer     string
	CertsDir          string
	GossipKeyFile     string
	Insecure          bool
	Join              string
	Bootstrap         bool
	Partitions        int
	Replication       int
	DeadMemberTimeout time.Duration
	RaftTick          time.Duration
	RaftLogKeep       uint64
}

// clustered reports whether the node runs as a cluster member rather than
// the embedded single node.
func (c Config) clustered() bool { return c.Bind != "" || c.Join != "" || c.Bootstrap }

// joinList splits the -join flag.
func (c Config) joinList() []string {
	var out []string
	for _, a := range strings.Split(c.Join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

var errHelp = errors.New("help requested")

// serveFlags declares the serve flags on fs, each with an environment twin
// HOLOCRON_<NAME> (dashes become underscores) that sets its default.
func serveFlags(fs *flag.FlagSet, cfg *Config) {
	fs.String("config", "", "YAML file with any of these flags as keys (flag names without the dash); the environment and flags override it")
	fs.BoolVar(&cfg.PrintConfig, "print-config", false, "print the configuration in force (file, environment and flags merged) as YAML and exit")
	fs.StringVar(&cfg.HTTPAddr, "http", ":8080", "HTTP listen address (clients, API, metrics)")
	fs.StringVar(&cfg.DataDir, "data", "./data", "data directory (Pebble database)")
	fs.TextVar(&cfg.LogLevel, "log-level", slog.LevelInfo, "log level: debug, info, warn, error")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 30*time.Second, "evict an object instance after this long without events (its sockets stay open)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a graceful shutdown may take")
	cfg.adminToken = secret{name: "admin-token"}
	cfg.adminToken.declare(fs, "", "bearer token required by /admin/* and /debug/pprof (empty: those answer loopback only, for development)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) for HTTPS and WSS on the client port, with -tls-key; reloaded on change and SIGHUP (empty: plain HTTP)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&cfg.AllowedOrigins, "allowed-origins", "", `web origins (scheme://host[:port], comma-separated, or "*") whose pages may open WebSockets here besides this node's own; clients that are not browsers send no origin and always may`)
	cfg.authSecret = secret{name: "auth-secret"}
	cfg.authSecret.declare(fs, "", "HS256 secret of player tokens; set, every object request needs one (empty: open dev mode)")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 100, "frames per second one socket may send, sustained (negative: no limit)")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 200, "frames one socket may send at once")
	fs.IntVar(&cfg.MaxSocketsIP, "max-sockets-per-ip", 0, "sockets one client address may hold on this node; beyond, close 4008 (0: no limit)")
	fs.IntVar(&cfg.MaxSocketsUser, "max-sockets-per-player", 0, "sockets one authenticated player may hold on this node; beyond, close 4008 (0: no limit)")
	fs.IntVar(&cfg.GCHeadroomMiB, "gc-headroom", 64, "MiB the heap may grow beyond the live heap between collections while that is more than Go's default; a node quiet for 3s after a burst also returns its free memory to the OS (0: neither; ignored when GOGC is set)")
	fs.StringVar(&cfg.NodeName, "node-name", "", "cluster: this node's unique, stable name (default: host name)")
	fs.StringVar(&cfg.Bind, "bind", "", "cluster: gossip address host:port, UDP and TCP (default :7946 when clustered)")
	fs.StringVar(&cfg.Advertise, "advertise", "", "cluster: gossip address peers use (default: -bind)")
	fs.StringVar(&cfg.AdvertiseHTTP, "advertise-http", "", "cluster: client-port address shown to operators and clients (default: -http with the advertised host)")
	fs.StringVar(&cfg.PeerAddr, "peer", "", "cluster: peer listener address: Raft, forwarding and every other node-to-node request (default :7947 when clustered)")
	fs.StringVar(&cfg.AdvertisePeer, "advertise-peer", "", "cluster: peer listener address other nodes use (default: -peer with the advertised host)")
	fs.StringVar(&cfg.CertsDir, "certs-dir", "", "cluster: directory with ca.crt, node.crt and node.key (holocron cert); the peer link's mutual TLS")
	fs.StringVar(&cfg.GossipKeyFile, "gossip-key-file", "", "cluster: file of base64 gossip keys, one per line, the primary first (holocron cert create-gossip-key FILE); reloaded on change and SIGHUP")
	fs.BoolVar(&cfg.Insecure, "insecure", false, "cluster: run without -certs-dir and -gossip-key-file: anyone who reaches the peer or gossip port is trusted (tests and development only)")
	fs.StringVar(&cfg.Join, "join", "", "cluster: comma-separated gossip addresses of any peers; retried until one answers")
	fs.BoolVar(&cfg.Bootstrap, "bootstrap", false, "cluster: create a new cluster if no reachable peer has one (set on exactly one node)")
	fs.IntVar(&cfg.Partitions, "partitions", 64, "cluster: number of partitions (fixed for the cluster's life)")
	fs.IntVar(&cfg.Replication, "replication", 3, "cluster: replicas per partition (capped at the member count)")
	fs.DurationVar(&cfg.DeadMemberTimeout, "dead-member-timeout", time.Minute, "cluster: how long a crashed node keeps its replicas before they are re-placed")
	fs.DurationVar(&cfg.RaftTick, "raft-tick", 100*time.Millisecond, "cluster: Raft tick; leader elections take 10-20 ticks")
	fs.Uint64Var(&cfg.RaftLogKeep, "raft-log-keep", 10000, "cluster: applied Raft entries kept per partition; older ones are truncated and lagging replicas get a snapshot")
}

func envName(flagName string) string {
	return "HOLOCRON_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ParseConfig reads serve's flags from args, the environment (getenv) and
// the config file they name, in that precedence, with typeFlags (the
// types' own, Types.Flags; nil: none) declared beside them.
func ParseConfig(args []string, getenv func(string) string, typeFlags func(*flag.FlagSet)) (cfg Config, err error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	serveFlags(fs, &cfg)
	if typeFlags != nil {
		typeFlags(fs)
	}
	// Precedence, lowest first: defaults, the config file, the environment,
	// the command line.
	if path := configPath(args, getenv); path != "" {
		if err := loadConfigFile(fs, path); err != nil {
			return cfg, err
		}
	}
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
	cfg.GOGCSet = getenv("GOGC") != ""
	if cfg.AdminToken, err = cfg.adminToken.resolve(); err != nil {
		return cfg, err
	}
	if cfg.AuthSecret, err = cfg.authSecret.resolve(); err != nil {
		return cfg, err
	}
	if cfg.origins, err = parseOrigins(cfg.AllowedOrigins); err != nil {
		return cfg, err
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return cfg, errors.New("-tls-cert and -tls-key go together")
	}
	if cfg.GCHeadroomMiB < 0 {
		return cfg, errors.New("-gc-headroom must not be negative")
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
	case cfg.RateBurst < 1 || cfg.MaxSocketsIP < 0 || cfg.MaxSocketsUser < 0:
		return cfg, errors.New("-rate-burst must be at least 1, socket limits not negative")
	case cfg.MaxSocketsUser > 0 && cfg.AuthSecret == "":
		// Without tokens there is no player to count: the limit would do
		// nothing, silently.
		return cfg, errors.New("-max-sockets-per-player needs -auth-secret (players are known only from their tokens)")
	case cfg.Partitions < 1 || cfg.Partitions > 4096:
		return cfg, errors.New("-partitions must be between 1 and 4096")
	case cfg.Replication < 1:
		return cfg, errors.New("-replication must be at least 1")
	case cfg.DeadMemberTimeout <= 0 || cfg.RaftTick <= 0 || cfg.RaftLogKeep == 0:
		return cfg, errors.New("-dead-member-timeout, -raft-tick and -raft-log-keep must be positive")
	}
	if cfg.NodeName == "" && !cfg.clustered() {
		cfg.NodeName = "local"
	}
	defer func() {
		// -print-config shows the values in force, derived ones included.
		fs.Set("node-name", cfg.NodeName)
		fs.Set("bind", cfg.Bind)
		fs.Set("advertise-http", cfg.AdvertiseHTTP)
		fs.Set("peer", cfg.PeerAddr)
		fs.Set("advertise-peer", cfg.AdvertisePeer)
		cfg.Effective = effectiveConfig(fs)
	}()
	if cfg.clustered() {
		if cfg.Bind == "" {
			cfg.Bind = ":7946"
		}
		if cfg.NodeName == "" {
			host, err := os.Hostname()
			if err != nil {
				return cfg, fmt.Errorf("-node-name not set and no host name: %w", err)
			}
			cfg.NodeName = host
		}
		if cfg.AdvertiseHTTP == "" {
			cfg.AdvertiseHTTP = advertisedAddr(cfg, cfg.HTTPAddr)
		}
		if cfg.PeerAddr == "" {
			cfg.PeerAddr = ":7947"
		}
		if cfg.AdvertisePeer == "" {
			cfg.AdvertisePeer = advertisedAddr(cfg, cfg.PeerAddr)
		}
		secured := cfg.CertsDir != "" && cfg.GossipKeyFile != ""
		switch {
		case cfg.Insecure && (cfg.CertsDir != "" || cfg.GossipKeyFile != ""):
			return cfg, errors.New("-insecure with -certs-dir or -gossip-key-file: choose one")
		case !cfg.Insecure && !secured:
			return cfg, errors.New("a cluster needs -certs-dir and -gossip-key-file (see README, Securing a cluster), or -insecure to run without them")
		}
	} else if cfg.Insecure || cfg.CertsDir != "" || cfg.GossipKeyFile != "" || cfg.PeerAddr != "" {
		return cfg, errors.New("-peer, -certs-dir, -gossip-key-file and -insecure are for a cluster (with -bind, -join or -bootstrap)")
	}
	return cfg, nil
}

// advertisedAddr derives the address others should use for a listener at
// addr: addr's host if it names one, else the advertised or bound gossip
// host, else the host name.
func advertisedAddr(cfg Config, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	specific := func(h string) bool { return h != "" && h != "0.0.0.0" && h != "::" }
	if !specific(host) {
		for _, a := range []string{cfg.Advertise, cfg.Bind} {
			if h, _, err := net.SplitHostPort(a); err == nil && specific(h) {
				host = h
				break
			}
		}
	}
	if !specific(host) {
		host, _ = os.Hostname()
	}
	return net.JoinHostPort(host, port)
}

func serveUsage(typeFlags func(*flag.FlagSet)) string {
	var b strings.Builder
	b.WriteString("usage: holocron serve [flags]\n\nflags (each also read from the environment variable shown):\n")
	var cfg Config
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs, &cfg)
	if typeFlags != nil {
		typeFlags(fs)
	}
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(&b, "  -%s (env %s, default %q)\n      %s\n", f.Name, envName(f.Name), f.DefValue, f.Usage)
	})
	return b.String()
}

// configPath finds -config in args (either form) or HOLOCRON_CONFIG, before
// flags are parsed: the file's values must be in place first.
func configPath(args []string, getenv func(string) string) string {
	path := getenv(envName("config"))
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "config" {
			continue
		}
		if hasValue {
			path = value
		} else if i+1 < len(args) {
			path = args[i+1]
		}
	}
	return path
}

// loadConfigFile sets flags from a YAML mapping of flag names to values.
// Lists (such as join) may be YAML sequences. Unknown keys are errors, so a
// typo does not silently leave a default in force.
func loadConfigFile(fs *flag.FlagSet, path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	for _, key := range slices.Sorted(maps.Keys(doc)) {
		if key == "config" || key == "print-config" || fs.Lookup(key) == nil {
			return fmt.Errorf("config file %s: unknown setting %q", path, key)
		}
		var value string
		switch v := doc[key].(type) {
		case []any:
			parts := make([]string, len(v))
			for i, p := range v {
				parts[i] = fmt.Sprint(p)
			}
			value = strings.Join(parts, ",")
		case nil:
			continue
		default:
			value = fmt.Sprint(v)
		}
		if err := fs.Set(key, value); err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, key, err)
		}
	}
	return nil
}

// secretFlags are never printed.
var secretFlags = map[string]bool{"auth-secret": true, "admin-token": true}

func effectiveConfig(fs *flag.FlagSet) map[string]string {
	out := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "print-config" {
			return
		}
		v := f.Value.String()
		if secretFlags[f.Name] && v != "" {
			v = "<redacted>"
		}
		out[f.Name] = v
	})
	return out
}

// printConfig writes the effective configuration as YAML, in flag order.
func printConfig(w io.Writer, cfg Config) error {
	node := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range slices.Sorted(maps.Keys(cfg.Effective)) {
		node.Content = append(node.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Value: cfg.Effective[k], Style: yaml.DoubleQuotedStyle})
	}
	enc := yaml.NewEncoder(w)
	defer enc.Close()
	return enc.Encode(node)
}
