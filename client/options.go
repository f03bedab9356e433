package client

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Options configure a client. The zero value is usable: every field has a
// documented default.
type Options struct {
	// Token, when set, is sent as "Authorization: Bearer <Token>" on every
	// WebSocket upgrade and HTTP request, for servers that run with an auth
	// secret. The socket's player is then the token's.
	Token string

	// Logger receives connection events at debug and warn level. Nil
	// discards them.
	Logger *slog.Logger

	// MinBackoff and MaxBackoff bound the jittered exponential delay between
	// reconnection attempts. Defaults: 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration

	// PingInterval is how often the client sends a protocol ping on an
	// otherwise idle connection. A connection that receives nothing for two
	// intervals is taken as dead and replaced. Default 15s; negative
	// disables pings and the dead-connection check.
	PingInterval time.Duration

	// WriteTimeout bounds one frame write. Default 10s.
	WriteTimeout time.Duration

	// MaxFramesPerSecond paces the frames the client writes, so that it
	// stays under the server's per-socket rate limit (100 frames/s with
	// bursts of 200 by default): a frame the server drops as rate_limited
	// carries no requestId, so the request it belonged to would get no
	// answer. Bursts may reach twice the rate. Default 50; negative
	// disables pacing.
	MaxFramesPerSecond int

	// TLSConfig is the TLS of wss:// and https:// addresses when Dialer or
	// HTTPClient are left to the package: set RootCAs to trust a cluster
	// whose -tls-cert comes from a private CA. Nil: the system's roots.
	TLSConfig *tls.Config

	// Dialer dials the WebSockets. Nil means a dialer with a 10s handshake
	// timeout (and TLSConfig).
	Dialer *websocket.Dialer

	// HTTPClient sends the REST requests (CreateRoom, ListRooms, …). Nil
	// means a client of the package's own, whose idle connections Close
	// releases.
	HTTPClient *http.Client

	// Lobby selects the ChatLobby object a ChatClient talks to: "" is the
	// lobby "main" (/api/lobby/…), anything else /api/lobbies/{Lobby}/….
	// GameClient ignores it.
	Lobby string

	// InOrder makes the client try the addresses in the order given, instead
	// of a random rotation (which spreads clients over the nodes). Useful
	// when the first address is a preferred node, and in tests.
	InOrder bool
}

// Defaults of Options.
const (
	DefaultMinBackoff         = 100 * time.Millisecond
	DefaultMaxBackoff         = 10 * time.Second
	DefaultPingInterval       = 15 * time.Second
	DefaultWriteTimeout       = 10 * time.Second
	DefaultMaxFramesPerSecond = 50
	defaultHandshakeTimeout   = 10 * time.Second
)

// withDefaults returns o with every unset field at its default.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.PingInterval == 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.MaxFramesPerSecond == 0 {
		o.MaxFramesPerSecond = DefaultMaxFramesPerSecond
	}
	if o.Dialer == nil {
		o.Dialer = &websocket.Dialer{
			Proxy:            http.ProxyFromEnvironment,
			HandshakeTimeout: defaultHandshakeTimeout,
			TLSClientConfig:  o.TLSConfig,
		}
	}
	return o
}
