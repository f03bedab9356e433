package node

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/protocol"
)

// originPolicy decides which web pages may open WebSockets on the client
// port. A browser sends the page's Origin with every WebSocket handshake
// and lets any page open a socket to any host, so without a check a page
// on another site could act, in the visitor's browser, as a client of this
// node. The default admits the node's own origin (the pages it serves)
// and clients that are not browsers (they send no Origin); -allowed-origins
// adds the origins of games and sites served elsewhere, or "*" for any.
type originPolicy struct {
	any     bool
	allowed []string // "scheme://host[:port]", lower case
}

// parseOrigins reads -allowed-origins: a comma-separated list of origins
// (scheme://host[:port]) or "*".
func parseOrigins(list string) (originPolicy, error) {
	var p originPolicy
	for o := range strings.SplitSeq(list, ",") {
		o = strings.ToLower(strings.TrimSpace(o))
		switch {
		case o == "":
			continue
		case o == "*":
			p.any = true
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			return p, fmt.Errorf("-allowed-origins: %q is not an origin (scheme://host[:port])", o)
		}
		p.allowed = append(p.allowed, u.Scheme+"://"+u.Host)
	}
	return p, nil
}

// allows reports whether a handshake with r's Origin may proceed.
func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.Contains(p.allowed, strings.ToLower(u.Scheme+"://"+u.Host))
}

// guard refuses, on the client port, WebSocket handshakes from origins the
// policy does not admit (403, a typed error). The upgrades edges send their
// owners over the peer link were checked by the node the client reached.
func (p originPolicy) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if websocket.IsWebSocketUpgrade(r) && !cluster.FromPeer(r) && !p.allows(r) {
			protocol.WriteHTTPError(w, http.StatusForbidden, protocol.Errorf(protocol.CodeForbidden,
				"a page of origin %q may not open sockets on this node; -allowed-origins lists the origins that may", r.Header.Get("Origin")))
			return
		}
		next.ServeHTTP(w, r)
	})
}
