package node

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var errAny = errors.New("any error")

func TestVerifyToken(t *testing.T) {
	secret := []byte("s3cret")
	now := time.Now()
	good, _ := IssueToken(secret, "p1", "Alice", time.Hour, now)
	otherKey, _ := IssueToken([]byte("other"), "p1", "Alice", time.Hour, now)
	expired, _ := IssueToken(secret, "p1", "Alice", time.Minute, now.Add(-time.Hour))
	noSubject, _ := IssueToken(secret, "", "Alice", time.Hour, now)
	noExpiry, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "p1"}).SignedString(secret)
	hs512, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"sub": "p1", "exp": now.Add(time.Hour).Unix()}).SignedString(secret)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "p1", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	tests := []struct {
		name    string
		token   string
		wantErr error // nil: valid; errTokenExpired; or errAny
	}{
		{"valid", good, nil},
		{"other secret", otherKey, errAny},
		{"expired", expired, errTokenExpired},
		{"no subject", noSubject, errAny},
		{"no expiry", noExpiry, errAny},
		{"other algorithm", hs512, errAny},
		{"alg none", none, errAny},
		{"garbage", "not.a.jwt", errAny},
		{"empty", "", errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := verifyToken(secret, tc.token)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("verifyToken: %v, want valid", err)
			case tc.wantErr == nil && (p.ID != "p1" || p.Name != "Alice" || p.Expires.IsZero()):
				t.Fatalf("principal = %+v, want p1/Alice with an expiry", p)
			case tc.wantErr == errTokenExpired && !errors.Is(err, errTokenExpired):
				t.Fatalf("verifyToken: %v, want expired", err)
			case tc.wantErr == errAny && (err == nil || errors.Is(err, errTokenExpired)):
				t.Fatalf("verifyToken: %v, want invalid", err)
			}
		})
	}
}

func TestTokenCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := Main([]string{"token", "-auth-secret", "k", "-player", "p9", "-name", "Zed", "-ttl", "1h"}, &out, &errOut, func(string) string { return "" }, Types{}); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	p, err := verifyToken([]byte("k"), strings.TrimSpace(out.String()))
	if err != nil || p.ID != "p9" || p.Name != "Zed" || time.Until(p.Expires) < 59*time.Minute {
		t.Fatalf("printed token: %+v %v", p, err)
	}
	// The secret may come from the environment, as for serve.
	out.Reset()
	env := func(k string) string {
		if k == "HOLOCRON_AUTH_SECRET" {
			return "k"
		}
		return ""
	}
	if code := Main([]string{"token", "-player", "p1"}, &out, &errOut, env, Types{}); code != 0 {
		t.Fatalf("exit %d with env secret: %s", code, errOut.String())
	}
	for _, args := range [][]string{{"token", "-player", "p1"}, {"token", "-auth-secret", "k"}, {"token", "-auth-secret", "k", "-player", "p", "-ttl", "-1s"}} {
		errOut.Reset()
		if code := Main(args, &out, &errOut, func(string) string { return "" }, Types{}); code != 2 || errOut.Len() == 0 {
			t.Errorf("%v: exit %d (%q), want 2 with a message", args, code, errOut.String())
		}
	}
}
