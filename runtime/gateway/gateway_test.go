package gateway

import (
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"main", true},
		{"spring-cup", true},
		{"Ünïcødé lobby", true},
		{strings.Repeat("x", MaxNameBytes), true},
		{strings.Repeat("x", MaxNameBytes+1), false},
		{"", false},
		{"tab\tname", false},
		{"nul\x00name", false},
		{"del\x7fname", false},
		{"bad\xffutf8", false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}
