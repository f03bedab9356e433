package runtime

import (
	"context"
	"net"
	"time"
)

// Principal is an authenticated identity, established in front of the
// runtime (the gateway verifies a player token) and carried to the object in
// the request's context. A socket accepted for such a request keeps it:
// objects fix the socket's player to it instead of trusting what frames say.
type Principal struct {
	ID   string
	Name string
	// Expires, when set, is when the credential lapses: the socket is then
	// closed with 4001 (protocol.CloseAuthFailed).
	Expires time.Time
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Principal returns the identity the socket was opened with, if the server
// authenticates clients.
func (ws *WebSocket) Principal() (Principal, bool) {
	if ws.principal == nil {
		return Principal{}, false
	}
	return *ws.principal, true
}

// socketKeys are the admission counters a socket from remoteAddr with
// principal occupies.
func socketKeys(remoteAddr string, principal *Principal) (ip, id string) {
	ip = remoteAddr
	if host, _, err := net.SplitHostPort(remoteAddr); err == nil {
		ip = host
	}
	if principal != nil {
		id = principal.ID
	}
	return ip, id
}

// admit counts a new socket connection against the per-IP and
// per-principal limits and reports whether it is within them. Every
// admitted or refused connection is counted until it ends (unadmit).
func (rt *Runtime) admit(ip, principal string) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.socketsByIP[ip]++
	ok := rt.opts.MaxSocketsPerIP <= 0 || rt.socketsByIP[ip] <= rt.opts.MaxSocketsPerIP
	if principal != "" {
		rt.socketsByPrincipal[principal]++
		ok = ok && (rt.opts.MaxSocketsPerPrincipal <= 0 || rt.socketsByPrincipal[principal] <= rt.opts.MaxSocketsPerPrincipal)
	}
	return ok
}

// unadmit releases a socket connection's admission counters.
func (rt *Runtime) unadmit(ip, principal string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.socketsByIP[ip]--; rt.socketsByIP[ip] <= 0 {
		delete(rt.socketsByIP, ip)
	}
	if principal != "" {
		if rt.socketsByPrincipal[principal]--; rt.socketsByPrincipal[principal] <= 0 {
			delete(rt.socketsByPrincipal, principal)
		}
	}
}
