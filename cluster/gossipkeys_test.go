package cluster

import (
	"encoding/base64"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

func gossipKey(t *testing.T) []byte {
	t.Helper()
	k, err := base64.StdEncoding.DecodeString(NewGossipKey())
	if err != nil || len(k) != 32 {
		t.Fatalf("NewGossipKey: %d bytes, %v", len(k), err)
	}
	return k
}

func startKeyedMember(t *testing.T, name string, keys GossipKeys, join ...string) *Membership {
	t.Helper()
	m, err := StartMembership(MembershipConfig{
		NodeName: name, BindAddr: freeGossipAddr(t), HTTPAddr: httpAddrOf(name), Join: join,
		GossipKeys: keys, RetryJoinInterval: pollInterval, Logger: testLogger(),
	})
	if err != nil {
		t.Fatalf("StartMembership(%s): %v", name, err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// outsiderJoins makes a bare memberlist with keys (none: no encryption)
// and reports how many members its one Join reached: memberlist's Join
// exchanges state over TCP synchronously, so a refusal is known when it
// returns.
func outsiderJoins(t *testing.T, name string, keys GossipKeys, addr string) int {
	t.Helper()
	mc := memberlist.DefaultLANConfig()
	mc.Name = name
	host, port, err := splitHostPort(freeGossipAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	mc.BindAddr, mc.BindPort, mc.AdvertiseAddr, mc.AdvertisePort = host, port, host, port
	mc.Logger = log.New(io.Discard, "", 0)
	if len(keys) > 0 {
		if mc.Keyring, err = keys.keyring(); err != nil {
			t.Fatal(err)
		}
	}
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	defer ml.Shutdown()
	n, _ := ml.Join([]string{addr})
	return n
}

// TestGossipKeysKeepOutsidersOutAndRotate: members with the cluster's key
// join; a host with another key or none cannot; the key is rotated
// (install, use, remove) while the members stay joined, after which only
// the new key gets in.
func TestGossipKeysKeepOutsidersOutAndRotate(t *testing.T) {
	k1, k2 := gossipKey(t), gossipKey(t)
	a := startKeyedMember(t, "a", GossipKeys{k1})
	b := startKeyedMember(t, "b", GossipKeys{k1}, a.self)
	waitMember(t, a, "b", "alive", func(m Member) bool { return m.State == StateAlive })

	for _, tc := range []struct {
		name string
		keys GossipKeys
		in   bool
	}{
		{"outsider-other-key", GossipKeys{k2}, false},
		{"outsider-no-key", nil, false},
		{"insider", GossipKeys{k1}, true},
	} {
		if got := outsiderJoins(t, tc.name, tc.keys, a.self) > 0; got != tc.in {
			t.Errorf("%s: joined %v, want %v", tc.name, got, tc.in)
		}
		if _, known := memberByName(a, tc.name); known && !tc.in {
			t.Errorf("%s is a member of a's view after a refused join", tc.name)
		}
	}

	// Rotation, each step on every member before the next.
	for _, step := range []GossipKeys{{k1, k2}, {k2, k1}, {k2}} {
		for _, m := range []*Membership{a, b} {
			if err := m.SetGossipKeys(step); err != nil {
				t.Fatalf("%s: SetGossipKeys: %v", m.cfg.NodeName, err)
			}
		}
	}
	if n := outsiderJoins(t, "old-key", GossipKeys{k1}, a.self); n > 0 {
		t.Error("a host with the removed key joined")
	}
	if n := outsiderJoins(t, "new-key", GossipKeys{k2}, b.self); n == 0 {
		t.Error("a host with the new key could not join")
	}
	// The members kept each other throughout: a push/pull with the new key.
	for _, m := range []*Membership{a, b} {
		if got := m.keyring.GetPrimaryKey(); string(got) != string(k2) || len(m.keyring.GetKeys()) != 1 {
			t.Errorf("%s: keyring not rotated to the new key alone", m.cfg.NodeName)
		}
	}
	waitMember(t, b, "a", "alive", func(m Member) bool { return m.State == StateAlive })
	if n, err := a.ml.Join([]string{b.self}); n != 1 || err != nil {
		t.Errorf("a re-joins b after the rotation: %d, %v", n, err)
	}
}

func TestLoadGossipKeys(t *testing.T) {
	dir := t.TempDir()
	good1, good2 := NewGossipKey(), NewGossipKey()
	short := base64.StdEncoding.EncodeToString([]byte("short"))
	tests := []struct {
		name, file string
		keys       int
		err        string
	}{
		{"one", good1 + "\n", 1, ""},
		{"primary first, comments and blanks", "# rotation\n" + good2 + "\n\n" + good1 + "\n", 2, ""},
		{"empty", "# nothing\n", 0, "holds no key"},
		{"not base64", "!!!\n", 0, "not base64"},
		{"wrong size", short + "\n", 0, "5-byte key"},
		{"repeated", good1 + "\n" + good1 + "\n", 0, "repeated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.WriteFile(path, []byte(tc.file), 0o600); err != nil {
				t.Fatal(err)
			}
			keys, err := LoadGossipKeys(path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil || len(keys) != tc.keys {
				t.Fatalf("%d keys, %v; want %d", len(keys), err, tc.keys)
			}
		})
	}
	if _, err := LoadGossipKeys(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing key file loaded")
	}
	m := startKeyedMember(t, "clear", nil)
	if err := m.SetGossipKeys(GossipKeys{gossipKey(t)}); err == nil {
		t.Error("SetGossipKeys on gossip started in clear succeeded")
	}
}
