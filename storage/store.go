// Package storage is Holocron's durable key-value layer: one Pebble database
// per node, an isolated key namespace per object, atomic fsync'd batches with
// group commit, ordered range scans and a durable alarm index.
//
// The runtime reaches storage only through the Store interface, so that a
// replicated implementation (one Raft group per partition) can stand in for
// the local one without the runtime knowing.
package storage

import (
	"errors"
	"fmt"
	"time"
)

// Size limits of one stored entry. They mirror Cloudflare Durable Objects so
// that object code written for one behaves the same on the other, and they
// bound the size of a single Raft proposal.
const (
	MaxKeySize   = 2 << 10   // 2 KiB
	MaxValueSize = 128 << 10 // 128 KiB
)

var (
	// ErrKeyTooLarge is returned for a key longer than MaxKeySize.
	ErrKeyTooLarge = errors.New("storage: key too large")
	// ErrValueTooLarge is returned for a value longer than MaxValueSize.
	ErrValueTooLarge = errors.New("storage: value too large")
	// ErrEmptyKey is returned for the empty key, which cannot be listed.
	ErrEmptyKey = errors.New("storage: empty key")
	// ErrClosed is returned by a Store after Close.
	ErrClosed = errors.New("storage: closed")
	// ErrNotOwner is returned by a replicated Store for a batch of an object
	// whose partition this node does not (or no longer) lead. The runtime
	// answers it by closing the object's sockets with 1012 "moved".
	ErrNotOwner = errors.New("storage: node does not own the object's partition")
	// ErrNotWritten accompanies an error (ErrNotOwner, so far) for a batch
	// the store refused before writing it anywhere, as opposed to one whose
	// fate is unknown (a leader that lost office while the batch was on its
	// way may see it committed later). Only the first kind makes a request
	// safe to send again elsewhere, whatever it was.
	ErrNotWritten = errors.New("storage: batch not written")
	// ErrFailed is returned for every read and commit of a store that
	// failed (a WAL write or fsync did not go through): it serves nothing
	// until its node restarts and replays the WAL. The runtime answers it
	// with unavailable (503), not an internal error.
	ErrFailed = errors.New("storage: failed")
)

// CheckKey reports whether key may be stored.
func CheckKey(key string) error {
	if key == "" {
		return ErrEmptyKey
	}
	if len(key) > MaxKeySize {
		return fmt.Errorf("key of %d bytes (max %d): %w", len(key), MaxKeySize, ErrKeyTooLarge)
	}
	return nil
}

// CheckValue reports whether value may be stored.
func CheckValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("value of %d bytes (max %d): %w", len(value), MaxValueSize, ErrValueTooLarge)
	}
	return nil
}

// ObjectID names one object's namespace. It is the 32-byte object identity
// that the runtime derives from (class, name) or draws at random.
type ObjectID [32]byte

// ObjectMeta is what a node remembers about an object besides its data: which
// class it belongs to and, when it was addressed by name, that name. The
// alarm scheduler needs it to activate an object nobody has asked for.
type ObjectMeta struct {
	Class string `json:"class"`
	Name  string `json:"name,omitempty"`
}

// Op is one write in a Batch.
type Op struct {
	Kind  OpKind
	Key   string
	Value []byte
}

// OpKind says what an Op does.
type OpKind uint8

// The kinds of Op.
const (
	OpPut OpKind = iota + 1
	OpDelete
	// OpDeleteAll removes every key of the object (not its alarm).
	OpDeleteAll
)

// AlarmChange is the alarm part of a Batch: nothing, set, or delete.
type AlarmChange struct {
	Set    bool
	Delete bool
	At     time.Time
}

// Batch is the writes of one object event. A Store commits it atomically:
// after a crash either all of it is there or none of it.
type Batch struct {
	Object ObjectID
	// Meta, when non-nil, records the object's class and name.
	Meta  *ObjectMeta
	Ops   []Op
	Alarm AlarmChange
	// Forget removes the object entirely (data, alarm and meta), for an
	// operator deleting it; Ops, Meta and Alarm are then ignored.
	Forget bool
	// Written, when not zero, is when the owner committed the batch by its
	// clock. The store keeps the latest one as the object's last write, so
	// that operators can tell live objects from forgotten ones.
	Written time.Time
}

// Empty reports whether committing b would change nothing.
func (b *Batch) Empty() bool {
	return b == nil || (len(b.Ops) == 0 && b.Meta == nil && !b.Alarm.Set && !b.Alarm.Delete && !b.Forget)
}

// ScanOptions select a key range of one object. Bounds are on user keys.
type ScanOptions struct {
	// Prefix restricts the scan to keys with this prefix.
	Prefix string
	// Start is the first key included (inclusive).
	Start string
	// End is the first key excluded; empty means no upper bound.
	End string
	// Reverse scans from the highest key down.
	Reverse bool
}

// Alarm is one due or scheduled alarm in a node's alarm index.
type Alarm struct {
	Object ObjectID
	Meta   ObjectMeta
	At     time.Time
}

// Store is a node's durable storage as the runtime sees it.
//
// Reads see every batch whose commit has completed. Commits of one object
// complete in the order they were submitted. Implementations must be safe for
// concurrent use.
// Leased is a Store whose right to answer for an object can lapse between
// its commits (a replicated store's leader lease, which a process paused
// past it wakes up still holding in its memory): Serves reports whether it
// may answer for obj now. The runtime asks before it lets out the answers
// of an event that wrote nothing; an event that wrote learns it from its
// commit.
type Leased interface {
	Serves(obj ObjectID) bool
}

type Store interface {
	// Get returns the value of key in obj's namespace.
	Get(obj ObjectID, key string) (value []byte, ok bool, err error)
	// Scan calls fn for each key of obj in opts' range in order until fn
	// returns false.
	Scan(obj ObjectID, opts ScanOptions, fn func(key string, value []byte) bool) error
	// Alarm returns obj's alarm, if one is set.
	Alarm(obj ObjectID) (at time.Time, ok bool, err error)
	// Meta returns what is recorded about obj.
	Meta(obj ObjectID) (ObjectMeta, bool, error)
	// Commit makes b durable and visible, then calls done exactly once with
	// the outcome. done runs on a Store goroutine and must not block. Many
	// batches submitted close together share one fsync (group commit). The
	// batches of one object are answered in the order they were submitted:
	// the runtime releases each event's outputs by that order.
	Commit(b *Batch, done func(error))
	// Alarms returns up to limit alarms due at or before until, earliest first.
	Alarms(until time.Time, limit int) ([]Alarm, error)
	// NextAlarm returns the earliest alarm time, if any.
	NextAlarm() (time.Time, bool, error)
	// Close waits for submitted commits and releases the store.
	Close() error
}
