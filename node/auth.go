package node

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// Player tokens are HS256 JWTs: sub is the playerId, name the player's
// display name, exp when it lapses.
type playerClaims struct {
	Name string `json:"name"`
	jwt.RegisteredClaims
}

// IssueToken signs a player token (HS256 with secret, the nodes' -auth-secret)
// fixing playerID and name for ttl from now: what `holocron token` prints,
// for a service of the operator's own that hands out access.
func IssueToken(secret []byte, playerID, name string, ttl time.Duration, now time.Time) (string, error) {
	claims := playerClaims{
		Name: name,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   playerID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// errTokenExpired distinguishes an expired token (the client should get a
// new one) from a bad one.
var errTokenExpired = errors.New("token expired")

// verifyToken checks a player token and returns its principal.
func verifyToken(secret []byte, token string) (runtime.Principal, error) {
	var claims playerClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second))
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return runtime.Principal{}, errTokenExpired
	case err != nil:
		return runtime.Principal{}, fmt.Errorf("invalid token: %w", err)
	case claims.Subject == "":
		return runtime.Principal{}, errors.New("invalid token: no subject (playerId)")
	}
	name := claims.Name
	if name == "" {
		name = claims.Subject
	}
	return runtime.Principal{ID: claims.Subject, Name: name, Expires: claims.ExpiresAt.Time}, nil
}

// authenticate guards the object routes. With a secret, a request needs a
// valid player token in "Authorization: Bearer T" or ?token=T (browsers
// cannot set headers on WebSockets); its identity then travels to the object
// as a runtime.Principal. Without a secret (development) every request
// passes and players name themselves.
//
// X-Forwarded-For and the hop header mean something only when a peer sent
// them over the peer link: from a client they are dropped, so per-address
// socket limits cannot be dodged.
func authenticate(secret []byte, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !cluster.FromPeer(r) {
			r.Header.Del(runtime.ForwardedForHeader)
			r.Header.Del(cluster.HopHeader)
		}
		if len(secret) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			token = r.URL.Query().Get("token")
		}
		if token == "" {
			refuse(w, protocol.CodeUnauthorized, "a player token is required (Authorization: Bearer or ?token=)")
			return
		}
		p, err := verifyToken(secret, token)
		if errors.Is(err, errTokenExpired) {
			refuse(w, protocol.CodeTokenExpired, "the player token has expired")
			return
		}
		if err != nil {
			refuse(w, protocol.CodeUnauthorized, err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(runtime.WithPrincipal(r.Context(), p)))
	})
}

func refuse(w http.ResponseWriter, code, msg string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="holocron"`)
	protocol.WriteHTTPError(w, http.StatusUnauthorized, protocol.Errorf(code, "%s", msg))
}
