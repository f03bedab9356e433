package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
)

// GossipKeys are the keys gossip is encrypted with (memberlist's keyring,
// Consul's `encrypt`): the first encrypts what this node sends, every one
// decrypts what it receives. A host without one of them can neither read
// gossip nor join.
//
// Rotation is Consul's install, use, remove, done by editing each node's key
// file (reloaded on change or SIGHUP): add the new key as a second line on
// every node; once all have it, make it the first line on every node; once
// all use it, delete the old line.
type GossipKeys [][]byte

// NewGossipKey returns a fresh 32-byte key in the form a key file holds.
func NewGossipKey() string {
	k := make([]byte, 32)
	rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}

// LoadGossipKeys reads a key file: one base64 key (16, 24 or 32 bytes:
// AES-128, -192 or -256) per line, the primary first; blank lines and lines
// starting with # are ignored.
func LoadGossipKeys(path string) (GossipKeys, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	var keys GossipKeys
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("gossip key file %s, line %d: not base64: %w", path, i+1, err)
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("gossip key file %s, line %d: %d-byte key, want 16, 24 or 32", path, i+1, n)
		}
		for _, have := range keys {
			if bytes.Equal(have, k) {
				return nil, fmt.Errorf("gossip key file %s, line %d: key repeated", path, i+1)
			}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("gossip key file %s holds no key", path)
	}
	return keys, nil
}

func (k GossipKeys) keyring() (*memberlist.Keyring, error) {
	return memberlist.NewKeyring(k, k[0])
}

// SetGossipKeys makes keys this node's keyring while it runs: new keys are
// installed, the first becomes the primary, keys no longer listed are
// removed. It fails when gossip was started without encryption (turning
// it on needs a restart of every node).
func (m *Membership) SetGossipKeys(keys GossipKeys) error {
	if len(keys) == 0 {
		return errors.New("no gossip key")
	}
	ring := m.keyring
	if ring == nil {
		return errors.New("gossip runs without encryption; start every node with a gossip key file to turn it on")
	}
	for _, k := range keys {
		if err := ring.AddKey(k); err != nil {
			return fmt.Errorf("install gossip key: %w", err)
		}
	}
	if err := ring.UseKey(keys[0]); err != nil {
		return fmt.Errorf("use gossip key: %w", err)
	}
	for _, have := range ring.GetKeys() {
		listed := false
		for _, k := range keys {
			listed = listed || bytes.Equal(k, have)
		}
		if !listed {
			if err := ring.RemoveKey(have); err != nil {
				return fmt.Errorf("remove gossip key: %w", err)
			}
		}
	}
	return nil
}
