package runtime

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// ID identifies one object. IDs derived from a name are deterministic, so
// every node computes the same ID for ("ChatLobby", "main"); unique IDs are
// random. Either way an ID renders as 64 hex characters and parses back.
type ID [32]byte

// String renders id as 64 lower-case hex characters.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText renders the ID as 64 hex characters (in JSON too).
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// idFromName hashes class and name; the class is part of the hash so that
// two classes never share an object by sharing a name.
func idFromName(class, name string) ID {
	h := sha256.New()
	h.Write([]byte(class))
	h.Write([]byte{0})
	h.Write([]byte(name))
	var id ID
	copy(id[:], h.Sum(nil))
	return id
}

// ParseID parses the 64-hex-character form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("parse object id %q: want %d hex characters", s, 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("parse object id %q: %w", s, err)
	}
	return id, nil
}

func newUniqueID() ID {
	var id ID
	// crypto/rand.Read never returns an error on supported platforms.
	_, _ = rand.Read(id[:])
	return id
}
