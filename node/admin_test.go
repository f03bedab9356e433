package node

import (
	"net/http/httptest"
	"testing"
)

func TestLocalRequest(t *testing.T) {
	for _, tc := range []struct {
		remote, host string
		want         bool
	}{
		{"127.0.0.1:5000", "127.0.0.1:8080", true},
		{"127.0.0.1:5000", "localhost:8080", true},
		{"127.0.0.1:5000", "LOCALHOST", true},
		{"127.0.0.1:5000", "app.localhost:8080", true},
		{"[::1]:5000", "[::1]:8080", true},
		{"[::ffff:127.0.0.1]:5000", "127.0.0.1", true},
		{"127.0.0.1:5000", "evil.example:8080", false},
		{"127.0.0.1:5000", "10.0.0.5:8080", false},
		{"127.0.0.1:5000", "localhost.evil.example", false},
		{"10.0.0.7:5000", "127.0.0.1:8080", false},
		{"192.0.2.1:5000", "localhost", false},
		{"garbage", "localhost", false},
	} {
		r := httptest.NewRequest("GET", "/admin/node", nil)
		r.RemoteAddr, r.Host = tc.remote, tc.host
		if got := localRequest(r); got != tc.want {
			t.Errorf("localRequest(remote %s, Host %s) = %v, want %v", tc.remote, tc.host, got, tc.want)
		}
	}
}
