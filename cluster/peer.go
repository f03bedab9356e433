package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/holocron-run/holocron/internal/certs"
)

// PeerLink is this node's end of the peer link: every node-to-node request
// (Raft, forwarded client requests, holds, the admin fan-out) goes to a
// peer's peer listener, never to its client port, over HTTP/2 — one
// multiplexed, flow-controlled connection per node pair — with mutual TLS:
// each end presents its node certificate from the cluster's CA, and the
// dialer checks that the peer is the node it means to reach.
//
// HTTP/2 rather than gRPC: what nodes send each other is HTTP already
// (forwarded requests, the admin API), and the standard library gives
// multiplexing, flow control and TLS with the same handlers; no generated
// code, no second RPC stack.
//
// Without TLS material (an -insecure cluster) the link is HTTP/2 in clear
// (h2c) and anyone who reaches the peer port is trusted: the node says so.
type PeerLink struct {
	tls *certs.Peer
	// nameAt maps a peer address to the member advertising it; set by the
	// Node once membership runs.
	nameAt atomic.Pointer[func(addr string) (string, bool)]

	transport *http.Transport
	// edges carries edge sessions over connections of their own: a
	// session's traffic waits on its objects (an owner reads an edge's
	// messages only as its objects take them), and on a shared connection
	// HTTP/2's connection-wide flow control then held up the Raft traffic
	// behind it; a leader lost its quorum (CI at 4a66083).
	edges *http.Transport
}

// Limits of the peer link: one request's headers, and how long a peer may
// take to send them (a peer that stalls is cut off, not waited for).
const (
	maxPeerHeaderBytes = 64 << 10
	peerHeaderTimeout  = 10 * time.Second
	peerIdleTimeout    = 2 * time.Minute
)

// NewPeerLink returns the link; tlsPeer nil means the insecure mode.
func NewPeerLink(tlsPeer *certs.Peer) *PeerLink {
	l := &PeerLink{tls: tlsPeer}
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 15 * time.Second}
	t := &http.Transport{
		MaxIdleConnsPerHost:    64,
		IdleConnTimeout:        time.Minute,
		MaxResponseHeaderBytes: maxPeerHeaderBytes,
		HTTP2: &http.HTTP2Config{
			// Pings find a dead peer connection before a request waits on it.
			SendPingTimeout: 5 * time.Second,
			PingTimeout:     5 * time.Second,
		},
	}
	t.Protocols = new(http.Protocols)
	if tlsPeer == nil {
		t.Protocols.SetUnencryptedHTTP2(true)
		t.DialContext = dialer.DialContext
	} else {
		t.Protocols.SetHTTP2(true)
		t.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return l.dialTLS(ctx, dialer, network, addr, "h2")
		}
	}
	l.transport = t
	l.edges = t.Clone()
	return l
}

// Insecure reports whether the link runs without TLS.
func (l *PeerLink) Insecure() bool { return l.tls == nil }

func (l *PeerLink) setNameAt(f func(addr string) (string, bool)) { l.nameAt.Store(&f) }

// dialTLS dials the peer at addr and verifies it is the member that
// advertises addr.
func (l *PeerLink) dialTLS(ctx context.Context, d *net.Dialer, network, addr, proto string) (net.Conn, error) {
	f := l.nameAt.Load()
	if f == nil {
		return nil, errors.New("peer link: membership not running yet")
	}
	name, ok := (*f)(addr)
	if !ok {
		return nil, fmt.Errorf("peer link: no member advertises %s", addr)
	}
	raw, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	cfg := l.tls.ClientConfig(name)
	cfg.NextProtos = []string{proto}
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("peer link to %s at %s: %w", name, addr, err)
	}
	return c, nil
}

// URL is the peer URL of path at a peer's address.
func (l *PeerLink) URL(addr, path string) string {
	if l.tls == nil {
		return "http://" + addr + path
	}
	return "https://" + addr + path
}

// EdgeRoundTripper sends the requests of edge sessions over the link, on
// connections apart from every other request's.
func (l *PeerLink) EdgeRoundTripper() http.RoundTripper { return l.edges }

// RoundTripper sends requests over the link.
func (l *PeerLink) RoundTripper() http.RoundTripper { return l.transport }

// Client is an HTTP client over the link with a timeout per request (0:
// none, the request's context bounds it).
func (l *PeerLink) Client(timeout time.Duration) *http.Client {
	return &http.Client{Transport: l.transport, Timeout: timeout}
}

// Close closes the link's idle connections.
func (l *PeerLink) Close() {
	l.transport.CloseIdleConnections()
	l.edges.CloseIdleConnections()
}

type peerNameKey struct{}

// PeerName is the node that sent r over the peer link, proven by its
// certificate; "" in insecure mode. ok is false when r did not come over
// the peer link at all.
func PeerName(r *http.Request) (name string, ok bool) {
	name, ok = r.Context().Value(peerNameKey{}).(string)
	return name, ok
}

// FromPeer reports whether r came over the peer link. Headers that claim
// to come from a peer (HopHeader, X-Forwarded-For) mean something only then.
func FromPeer(r *http.Request) bool {
	_, ok := PeerName(r)
	return ok
}

// Server returns the peer listener's server for h: TLS with client
// certificates required (or h2c in insecure mode), bounded headers, and
// every request marked with the peer's proven name.
func (l *PeerLink) Server(h http.Handler, log *slog.Logger) *http.Server {
	srv := &http.Server{
		ReadHeaderTimeout: peerHeaderTimeout,
		IdleTimeout:       peerIdleTimeout,
		MaxHeaderBytes:    maxPeerHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		Protocols:         new(http.Protocols),
		HTTP2:             &http.HTTP2Config{MaxReadFrameSize: 1 << 20},
	}
	// HTTP/1.1 too, for the peer requests that need no stream (edge
	// sessions refuse it, see EdgeHandler).
	srv.Protocols.SetHTTP1(true)
	if l.tls == nil {
		srv.Protocols.SetUnencryptedHTTP2(true)
	} else {
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = l.tls.ServerConfig()
	}
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := ""
		if l.tls != nil {
			if r.TLS == nil {
				http.Error(w, "peer link needs TLS", http.StatusForbidden)
				return
			}
			var err error
			if name, err = certs.PeerName(*r.TLS); err != nil {
				http.Error(w, "peer certificate: "+err.Error(), http.StatusForbidden)
				return
			}
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), peerNameKey{}, name)))
	})
	return srv
}

// Serve serves srv (from Server) on ln until it is shut down.
func (l *PeerLink) Serve(srv *http.Server, ln net.Listener) error {
	if l.tls == nil {
		return srv.Serve(ln)
	}
	return srv.ServeTLS(ln, "", "")
}
