package node

import (
	"testing"
)

func TestParseOrigins(t *testing.T) {
	for _, tc := range []struct {
		list string
		ok   bool
	}{
		{"", true},
		{"*", true},
		{"https://a.example,https://b.example:8443", true},
		{"a.example", false},
		{"https://a.example/path", false},
		{"https://a.example?x=1", false},
	} {
		if _, err := parseOrigins(tc.list); (err == nil) != tc.ok {
			t.Errorf("parseOrigins(%q) = %v, want ok %v", tc.list, err, tc.ok)
		}
	}
}
