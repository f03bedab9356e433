package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holocron-run/holocron/storage"
)

// waitTimeout bounds every wait on a commit callback; a commit that takes
// longer than this is a hang, not a slow disk.
const waitTimeout = 10 * time.Second

// baseTime is an arbitrary instant with a non-zero nanosecond part, so that
// tests notice if alarm times lose precision.
var baseTime = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func openStore(t testing.TB, dir string, opts storage.PebbleOptions) *storage.PebbleStore {
	t.Helper()
	s, err := storage.OpenPebble(dir, opts)
	if err != nil {
		t.Fatalf("OpenPebble: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func newStore(t testing.TB) *storage.PebbleStore {
	t.Helper()
	return openStore(t, t.TempDir(), storage.PebbleOptions{})
}

// objectID returns an id that differs from its neighbours only in its last
// byte, so that a scan leaking past its object's range would show.
func objectID(n byte) storage.ObjectID {
	var id storage.ObjectID
	id[len(id)-1] = n
	return id
}

// submit commits b and returns a channel that receives its outcome.
func submit(s storage.Store, b *storage.Batch) <-chan error {
	ch := make(chan error, 1)
	s.Commit(b, func(err error) { ch <- err })
	return ch
}

func wait(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("commit callback not called")
		return nil
	}
}

func mustCommit(t *testing.T, s storage.Store, b *storage.Batch) {
	t.Helper()
	if err := wait(t, submit(s, b)); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func puts(obj storage.ObjectID, kv ...string) *storage.Batch {
	b := &storage.Batch{Object: obj}
	for i := 0; i+1 < len(kv); i += 2 {
		b.Ops = append(b.Ops, storage.Op{Kind: storage.OpPut, Key: kv[i], Value: []byte(kv[i+1])})
	}
	return b
}

func mustGet(t *testing.T, s storage.Store, obj storage.ObjectID, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get(obj, key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v), ok
}

func scanKeys(t *testing.T, s storage.Store, obj storage.ObjectID, opts storage.ScanOptions) []string {
	t.Helper()
	keys := []string{}
	err := s.Scan(obj, opts, func(key string, value []byte) bool {
		keys = append(keys, key)
		return true
	})
	if err != nil {
		t.Fatalf("Scan(%+v): %v", opts, err)
	}
	return keys
}

// holdCommitLoop parks the store's commit goroutine inside a done callback
// until the returned release is called, so that every batch submitted in
// between is queued and then committed together as one group. The batch it
// uses writes one key of object 0xee.
func holdCommitLoop(t *testing.T, s storage.Store) (release func()) {
	t.Helper()
	entered, released := make(chan struct{}), make(chan struct{})
	s.Commit(puts(objectID(0xee), "hold", "x"), func(error) {
		close(entered)
		<-released
	})
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("commit goroutine never ran the holding callback")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release) // runs before the store's Close, registered earlier
	return release
}

// groupRecorder is a CommitObserver that remembers every group commit.
type groupRecorder struct {
	mu     sync.Mutex
	groups []observedGroup
}

type observedGroup struct{ batches, bytes int }

func (r *groupRecorder) ObserveGroupCommit(batches, bytes int, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.groups = append(r.groups, observedGroup{batches, bytes})
}

func (r *groupRecorder) snapshot() []observedGroup {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.groups)
}

func TestGetReturnsLatestCommittedValueOfExactKey(t *testing.T) {
	s := newStore(t)
	obj, other := objectID(1), objectID(2)
	mustCommit(t, s, puts(obj, "a", "1", "ab", "2", "a\xff", "3", "\xff\xff", "4", "gone", "5"))
	mustCommit(t, s, puts(obj, "ab", "2b"))
	mustCommit(t, s, &storage.Batch{Object: obj, Ops: []storage.Op{{Kind: storage.OpDelete, Key: "gone"}}})
	mustCommit(t, s, puts(other, "only-other", "x"))

	tests := []struct {
		name   string
		key    string
		want   string
		wantOK bool
	}{
		{"existing key", "a", "1", true},
		{"overwritten key has its newer value", "ab", "2b", true},
		{"key ending in 0xff", "a\xff", "3", true},
		{"key of only 0xff bytes", "\xff\xff", "4", true},
		{"deleted key is absent", "gone", "", false},
		{"missing key is absent", "zzz", "", false},
		{"prefix of a stored key is not that key", "\xff", "", false},
		{"longer key with stored prefix is absent", "abc", "", false},
		{"key of another object is absent", "only-other", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := mustGet(t, s, obj, tt.key)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestGetReturnsACopyTheCallerMayModify(t *testing.T) {
	s := newStore(t)
	obj := objectID(1)
	mustCommit(t, s, puts(obj, "k", "value"))
	v, _, err := s.Get(obj, "k")
	if err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	if got, _ := mustGet(t, s, obj, "k"); got != "value" {
		t.Errorf("stored value changed through a returned slice: %q", got)
	}
}

// scanKeySet is stored in the object under test by TestScanSelectsRange;
// its neighbours hold decoys that no scan of it may return.
var scanKeySet = []string{
	"\x00", "\x01", "a", "a\x00", "ab", "abc", "abd", "a\xff", "a\xff\xff", "b", "ba", "bb",
	"\xff", "\xff\x00", "\xff\xff", "\xff\xffz",
}

func TestScanSelectsRange(t *testing.T) {
	s := newStore(t)
	obj := objectID(2)
	b := &storage.Batch{Object: obj}
	for _, k := range scanKeySet {
		b.Ops = append(b.Ops, storage.Op{Kind: storage.OpPut, Key: k, Value: []byte("v:" + k)})
	}
	mustCommit(t, s, b)
	// Decoys in the objects just below and above, sharing every key.
	for _, n := range []byte{1, 3} {
		d := &storage.Batch{Object: objectID(n)}
		for _, k := range append(slices.Clone(scanKeySet), "decoy", "\xff\xff\xff") {
			d.Ops = append(d.Ops, storage.Op{Kind: storage.OpPut, Key: k, Value: []byte("decoy")})
		}
		mustCommit(t, s, d)
	}

	all := scanKeySet
	rev := func(ks ...string) []string { slices.Reverse(ks); return ks }
	tests := []struct {
		name string
		opts storage.ScanOptions
		want []string
	}{
		{"no bounds returns every key in order", storage.ScanOptions{}, all},
		{"reverse returns every key high to low", storage.ScanOptions{Reverse: true}, rev(slices.Clone(all)...)},
		{"prefix", storage.ScanOptions{Prefix: "a"}, []string{"a", "a\x00", "ab", "abc", "abd", "a\xff", "a\xff\xff"}},
		{"prefix reverse", storage.ScanOptions{Prefix: "ab", Reverse: true}, []string{"abd", "abc", "ab"}},
		{"prefix ending in 0xff", storage.ScanOptions{Prefix: "a\xff"}, []string{"a\xff", "a\xff\xff"}},
		{"prefix of only 0xff has no successor but stays in the object", storage.ScanOptions{Prefix: "\xff"}, []string{"\xff", "\xff\x00", "\xff\xff", "\xff\xffz"}},
		{"prefix 0xff 0xff reverse", storage.ScanOptions{Prefix: "\xff\xff", Reverse: true}, []string{"\xff\xffz", "\xff\xff"}},
		{"prefix matching nothing", storage.ScanOptions{Prefix: "c"}, []string{}},
		{"start is inclusive", storage.ScanOptions{Start: "b"}, []string{"b", "ba", "bb", "\xff", "\xff\x00", "\xff\xff", "\xff\xffz"}},
		{"start between keys", storage.ScanOptions{Start: "abcd"}, []string{"abd", "a\xff", "a\xff\xff", "b", "ba", "bb", "\xff", "\xff\x00", "\xff\xff", "\xff\xffz"}},
		{"end is exclusive", storage.ScanOptions{End: "a\xff"}, []string{"\x00", "\x01", "a", "a\x00", "ab", "abc", "abd"}},
		{"end 0x01 leaves only 0x00", storage.ScanOptions{End: "\x01"}, []string{"\x00"}},
		{"start and end", storage.ScanOptions{Start: "a\x00", End: "abd"}, []string{"a\x00", "ab", "abc"}},
		{"0xff bytes sort above letters", storage.ScanOptions{Start: "abc", End: "b"}, []string{"abc", "abd", "a\xff", "a\xff\xff"}},
		{"start and end reverse", storage.ScanOptions{Start: "a\x00", End: "b", Reverse: true}, []string{"a\xff\xff", "a\xff", "abd", "abc", "ab", "a\x00"}},
		{"end equal to start is empty", storage.ScanOptions{Start: "b", End: "b"}, []string{}},
		{"end below start is empty", storage.ScanOptions{Start: "bb", End: "b"}, []string{}},
		{"prefix with start inside it", storage.ScanOptions{Prefix: "a", Start: "ab"}, []string{"ab", "abc", "abd", "a\xff", "a\xff\xff"}},
		{"prefix with start below it", storage.ScanOptions{Prefix: "b", Start: "a"}, []string{"b", "ba", "bb"}},
		{"prefix with start above it is empty", storage.ScanOptions{Prefix: "a", Start: "b"}, []string{}},
		{"prefix with end inside it", storage.ScanOptions{Prefix: "a", End: "ab"}, []string{"a", "a\x00"}},
		{"prefix with end above it", storage.ScanOptions{Prefix: "a", End: "zz"}, []string{"a", "a\x00", "ab", "abc", "abd", "a\xff", "a\xff\xff"}},
		{"prefix with end below it is empty", storage.ScanOptions{Prefix: "b", End: "a\xff"}, []string{}},
		{"prefix start end reverse", storage.ScanOptions{Prefix: "a", Start: "a\x00", End: "a\xff\xff", Reverse: true}, []string{"a\xff", "abd", "abc", "ab", "a\x00"}},
		{"start above end inside prefix is empty", storage.ScanOptions{Prefix: "a", Start: "a\xff", End: "abd"}, []string{}},
		{"0xff prefix with end", storage.ScanOptions{Prefix: "\xff", End: "\xff\xff"}, []string{"\xff", "\xff\x00"}},
		{"start of 0xff bytes", storage.ScanOptions{Start: "\xff\xff"}, []string{"\xff\xff", "\xff\xffz"}},
		{"start above every key is empty", storage.ScanOptions{Start: "\xff\xff\xff"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := scanKeys(t, s, obj, tt.opts)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Scan(%s)\n got %q\nwant %q", describe(tt.opts), got, tt.want)
			}
			// Every value is the one stored under its key.
			err := s.Scan(obj, tt.opts, func(key string, value []byte) bool {
				if string(value) != "v:"+key {
					t.Errorf("Scan value of %q = %q", key, value)
				}
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// refScan is the reference answer of a scan over keys.
func refScan(keys []string, o storage.ScanOptions) []string {
	out := []string{}
	for _, k := range keys {
		if strings.HasPrefix(k, o.Prefix) && k >= o.Start && (o.End == "" || k < o.End) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	if o.Reverse {
		slices.Reverse(out)
	}
	return out
}

func TestScanAgreesWithReferenceOnRandomBounds(t *testing.T) {
	s := newStore(t)
	obj := objectID(7)
	rng := rand.New(rand.NewPCG(7, 7))
	alphabet := []byte{0x00, 'a', 'b', 0xff}
	randKey := func(maxLen int) string {
		n := rng.IntN(maxLen + 1)
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	set := map[string]bool{}
	b := &storage.Batch{Object: obj}
	for len(set) < 60 {
		k := randKey(4)
		if k == "" || set[k] {
			continue
		}
		set[k] = true
		b.Ops = append(b.Ops, storage.Op{Kind: storage.OpPut, Key: k, Value: []byte(k)})
	}
	mustCommit(t, s, b)
	mustCommit(t, s, puts(objectID(6), "a", "decoy", "\xff\xff\xff\xff\xff", "decoy"))
	mustCommit(t, s, puts(objectID(8), "\x00", "decoy", "a", "decoy"))
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	for i := 0; i < 500; i++ {
		o := storage.ScanOptions{Prefix: randKey(2), Start: randKey(3), End: randKey(3), Reverse: rng.IntN(2) == 0}
		got, want := scanKeys(t, s, obj, o), refScan(keys, o)
		if !slices.Equal(got, want) {
			t.Fatalf("Scan(%s)\n got %q\nwant %q", describe(o), got, want)
		}
	}
}

func TestScanStopsWhenCallbackReturnsFalse(t *testing.T) {
	s := newStore(t)
	obj := objectID(1)
	mustCommit(t, s, puts(obj, "a", "1", "b", "2", "c", "3", "d", "4"))
	for _, reverse := range []bool{false, true} {
		var seen []string
		err := s.Scan(obj, storage.ScanOptions{Reverse: reverse}, func(key string, value []byte) bool {
			seen = append(seen, key)
			return len(seen) < 2
		})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"a", "b"}
		if reverse {
			want = []string{"d", "c"}
		}
		if !slices.Equal(seen, want) {
			t.Errorf("reverse=%v: callback saw %q, want %q", reverse, seen, want)
		}
	}
}

func TestObjectsNeverSeeEachOthersKeys(t *testing.T) {
	s := newStore(t)
	a, b := objectID(1), objectID(2)
	mustCommit(t, s, puts(a, "shared", "A", "only-a", "A"))
	mustCommit(t, s, puts(b, "shared", "B", "only-b", "B"))

	for _, c := range []struct {
		obj       storage.ObjectID
		name      string
		wantKeys  []string
		wantValue string
	}{
		{a, "a", []string{"only-a", "shared"}, "A"},
		{b, "b", []string{"only-b", "shared"}, "B"},
	} {
		if got := scanKeys(t, s, c.obj, storage.ScanOptions{}); !slices.Equal(got, c.wantKeys) {
			t.Errorf("object %s scans %q, want %q", c.name, got, c.wantKeys)
		}
		if v, _ := mustGet(t, s, c.obj, "shared"); v != c.wantValue {
			t.Errorf("object %s reads shared=%q, want %q", c.name, v, c.wantValue)
		}
	}
}

func TestDeleteAllOfOneObjectLeavesOthersAlarmAndMeta(t *testing.T) {
	s := newStore(t)
	a, b := objectID(1), objectID(2)
	metaA := &storage.ObjectMeta{Class: "C", Name: "a"}
	mustCommit(t, s, &storage.Batch{Object: a, Meta: metaA, Ops: puts(a, "k1", "1", "k2", "2").Ops,
		Alarm: storage.AlarmChange{Set: true, At: baseTime}})
	mustCommit(t, s, puts(b, "k1", "1", "k2", "2"))

	mustCommit(t, s, &storage.Batch{Object: a, Ops: []storage.Op{{Kind: storage.OpDeleteAll}}})

	if got := scanKeys(t, s, a, storage.ScanOptions{}); len(got) != 0 {
		t.Errorf("object a after DeleteAll has keys %q", got)
	}
	if _, ok := mustGet(t, s, a, "k1"); ok {
		t.Error("object a after DeleteAll still has k1")
	}
	if got := scanKeys(t, s, b, storage.ScanOptions{}); !slices.Equal(got, []string{"k1", "k2"}) {
		t.Errorf("object b after DeleteAll of a has keys %q", got)
	}
	if at, ok, err := s.Alarm(a); err != nil || !ok || !at.Equal(baseTime) {
		t.Errorf("alarm of a after DeleteAll = %v, %v, %v; want %v kept", at, ok, err, baseTime)
	}
	if m, ok, err := s.Meta(a); err != nil || !ok || m != *metaA {
		t.Errorf("meta of a after DeleteAll = %+v, %v, %v; want %+v kept", m, ok, err, *metaA)
	}
}

func TestBatchOpsApplyInOrderAndAllBecomeVisible(t *testing.T) {
	tests := []struct {
		name string
		pre  []string // key/value pairs committed before
		ops  []storage.Op
		want map[string]string
	}{
		{
			name: "puts and deletes",
			pre:  []string{"old", "1", "keep", "2"},
			ops: []storage.Op{
				{Kind: storage.OpPut, Key: "x", Value: []byte("x1")},
				{Kind: storage.OpPut, Key: "y", Value: []byte("y1")},
				{Kind: storage.OpDelete, Key: "old"},
			},
			want: map[string]string{"keep": "2", "x": "x1", "y": "y1"},
		},
		{
			name: "later put of the same key wins",
			ops: []storage.Op{
				{Kind: storage.OpPut, Key: "x", Value: []byte("1")},
				{Kind: storage.OpPut, Key: "x", Value: []byte("2")},
			},
			want: map[string]string{"x": "2"},
		},
		{
			name: "delete after put removes",
			ops: []storage.Op{
				{Kind: storage.OpPut, Key: "x", Value: []byte("1")},
				{Kind: storage.OpDelete, Key: "x"},
			},
			want: map[string]string{},
		},
		{
			name: "put after delete restores",
			pre:  []string{"x", "0"},
			ops: []storage.Op{
				{Kind: storage.OpDelete, Key: "x"},
				{Kind: storage.OpPut, Key: "x", Value: []byte("1")},
			},
			want: map[string]string{"x": "1"},
		},
		{
			name: "delete all removes earlier puts and stored keys but not later puts",
			pre:  []string{"old", "1", "\xff", "2"},
			ops: []storage.Op{
				{Kind: storage.OpPut, Key: "before", Value: []byte("b")},
				{Kind: storage.OpDeleteAll},
				{Kind: storage.OpPut, Key: "after", Value: []byte("a")},
			},
			want: map[string]string{"after": "a"},
		},
		{
			name: "empty value is stored and distinct from absent",
			ops:  []storage.Op{{Kind: storage.OpPut, Key: "e", Value: nil}},
			want: map[string]string{"e": ""},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			obj := objectID(byte(i + 1))
			if len(tt.pre) > 0 {
				mustCommit(t, s, puts(obj, tt.pre...))
			}
			mustCommit(t, s, &storage.Batch{Object: obj, Ops: tt.ops})
			got := map[string]string{}
			err := s.Scan(obj, storage.ScanOptions{}, func(k string, v []byte) bool {
				got[k] = string(v)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("after commit: %q, want %q", got, tt.want)
			}
			for k, v := range tt.want {
				if g, ok := mustGet(t, s, obj, k); !ok || g != v {
					t.Errorf("Get(%q) = %q, %v; want %q", k, g, ok, v)
				}
			}
		})
	}
}

func TestCommitsOfOneObjectCompleteInSubmissionOrder(t *testing.T) {
	s := newStore(t)
	obj := objectID(1)
	const n = 300
	var mu sync.Mutex
	var order []int
	all := make(chan struct{})
	for i := 0; i < n; i++ {
		s.Commit(puts(obj, "k", fmt.Sprint(i)), func(err error) {
			if err != nil {
				t.Errorf("commit %d: %v", i, err)
			}
			mu.Lock()
			order = append(order, i)
			if len(order) == n {
				close(all)
			}
			mu.Unlock()
		})
	}
	select {
	case <-all:
	case <-time.After(waitTimeout):
		t.Fatal("not every commit completed")
	}
	mu.Lock()
	defer mu.Unlock()
	for i, got := range order {
		if got != i {
			t.Fatalf("completion %d was commit %d; order %v", i, got, order)
		}
	}
	if v, _ := mustGet(t, s, obj, "k"); v != fmt.Sprint(n-1) {
		t.Errorf("k = %q after %d ordered puts, want %q", v, n, fmt.Sprint(n-1))
	}
}

func TestCommittedDataSurvivesCloseAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.OpenPebble(dir, storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := objectID(1), objectID(2)
	meta := storage.ObjectMeta{Class: "Chat", Name: "main"}
	mustCommit(t, s, &storage.Batch{Object: a, Meta: &meta, Ops: puts(a, "k", "v", "gone", "x").Ops,
		Alarm: storage.AlarmChange{Set: true, At: baseTime}})
	mustCommit(t, s, &storage.Batch{Object: a, Ops: []storage.Op{{Kind: storage.OpDelete, Key: "gone"}}})
	// Submitted without waiting: Close must finish it before closing.
	last := submit(s, puts(b, "late", "yes"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, last); err != nil {
		t.Fatalf("commit submitted before Close: %v", err)
	}

	s2 := openStore(t, dir, storage.PebbleOptions{})
	if v, ok := mustGet(t, s2, a, "k"); !ok || v != "v" {
		t.Errorf("k after reopen = %q, %v", v, ok)
	}
	if _, ok := mustGet(t, s2, a, "gone"); ok {
		t.Error("deleted key is back after reopen")
	}
	if v, ok := mustGet(t, s2, b, "late"); !ok || v != "yes" {
		t.Errorf("commit submitted just before Close lost: %q, %v", v, ok)
	}
	if m, ok, err := s2.Meta(a); err != nil || !ok || m != meta {
		t.Errorf("meta after reopen = %+v, %v, %v", m, ok, err)
	}
	if at, ok, err := s2.Alarm(a); err != nil || !ok || !at.Equal(baseTime) {
		t.Errorf("alarm after reopen = %v, %v, %v", at, ok, err)
	}
	alarms, err := s2.Alarms(baseTime, 10)
	if err != nil || len(alarms) != 1 || alarms[0].Object != a || alarms[0].Meta != meta {
		t.Errorf("alarm index after reopen = %+v, %v", alarms, err)
	}
}

func TestCommitAfterCloseFailsWithErrClosed(t *testing.T) {
	s, err := storage.OpenPebble(t.TempDir(), storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := wait(t, submit(s, puts(objectID(1), "k", "v"))); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Commit after Close: %v, want ErrClosed", err)
	}
}

func TestCheckKeyAndValueLimits(t *testing.T) {
	keys := []struct {
		name    string
		key     string
		wantErr error
	}{
		{"one byte", "k", nil},
		{"exactly max", strings.Repeat("k", storage.MaxKeySize), nil},
		{"max is 2 KiB", strings.Repeat("k", 2048), nil},
		{"one byte over max", strings.Repeat("k", storage.MaxKeySize+1), storage.ErrKeyTooLarge},
		{"far over max", strings.Repeat("k", 1<<20), storage.ErrKeyTooLarge},
		{"empty", "", storage.ErrEmptyKey},
	}
	for _, tt := range keys {
		t.Run("key "+tt.name, func(t *testing.T) {
			err := storage.CheckKey(tt.key)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("CheckKey(%d bytes) = %v, want %v", len(tt.key), err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), fmt.Sprint(len(tt.key))) && tt.key != "" {
				t.Errorf("error %q does not say the size", err)
			}
		})
	}
	values := []struct {
		name    string
		size    int
		wantErr error
	}{
		{"nil", 0, nil},
		{"exactly max", storage.MaxValueSize, nil},
		{"max is 128 KiB", 128 * 1024, nil},
		{"one byte over max", storage.MaxValueSize + 1, storage.ErrValueTooLarge},
	}
	for _, tt := range values {
		t.Run("value "+tt.name, func(t *testing.T) {
			var v []byte
			if tt.size > 0 {
				v = make([]byte, tt.size)
			}
			err := storage.CheckValue(v)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("CheckValue(%d bytes) = %v, want %v", tt.size, err, tt.wantErr)
			}
		})
	}
}

func TestMaximumSizeKeyAndValueRoundTrip(t *testing.T) {
	s := newStore(t)
	obj := objectID(1)
	key := strings.Repeat("\xff", storage.MaxKeySize)
	value := bytes.Repeat([]byte{0xab}, storage.MaxValueSize)
	mustCommit(t, s, &storage.Batch{Object: obj, Ops: []storage.Op{{Kind: storage.OpPut, Key: key, Value: value}}})
	got, ok, err := s.Get(obj, key)
	if err != nil || !ok || !bytes.Equal(got, value) {
		t.Errorf("Get of max-size entry: %d bytes, %v, %v", len(got), ok, err)
	}
	if keys := scanKeys(t, s, obj, storage.ScanOptions{Prefix: "\xff"}); len(keys) != 1 || keys[0] != key {
		t.Errorf("Scan of max-size key found %d keys", len(keys))
	}
}

func TestBatchEmpty(t *testing.T) {
	tests := []struct {
		name string
		b    *storage.Batch
		want bool
	}{
		{"nil", nil, true},
		{"zero", &storage.Batch{}, true},
		{"one op", &storage.Batch{Ops: []storage.Op{{Kind: storage.OpDelete, Key: "k"}}}, false},
		{"meta only", &storage.Batch{Meta: &storage.ObjectMeta{Class: "C"}}, false},
		{"alarm set", &storage.Batch{Alarm: storage.AlarmChange{Set: true, At: baseTime}}, false},
		{"alarm delete", &storage.Batch{Alarm: storage.AlarmChange{Delete: true}}, false},
		{"alarm time without set or delete", &storage.Batch{Alarm: storage.AlarmChange{At: baseTime}}, true},
	}
	for _, tt := range tests {
		if got := tt.b.Empty(); got != tt.want {
			t.Errorf("%s: Empty() = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestPrefixSuccessor(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"a", "b", true},
		{"ab", "ac", true},
		{"a\xff", "b", true},
		{"a\xff\xff", "b", true},
		{"\x00", "\x01", true},
		{"\xfe\xff", "\xff", true},
		{"\xff", "", false},
		{"\xff\xff\xff", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := storage.PrefixSuccessor(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("PrefixSuccessor(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func setAlarm(obj storage.ObjectID, at time.Time) *storage.Batch {
	return &storage.Batch{Object: obj, Alarm: storage.AlarmChange{Set: true, At: at}}
}

func deleteAlarm(obj storage.ObjectID) *storage.Batch {
	return &storage.Batch{Object: obj, Alarm: storage.AlarmChange{Delete: true}}
}

func allAlarms(t *testing.T, s storage.Store) []storage.Alarm {
	t.Helper()
	as, err := s.Alarms(baseTime.Add(1000*time.Hour), 1000)
	if err != nil {
		t.Fatalf("Alarms: %v", err)
	}
	return as
}

func TestAlarmSetReplaceDelete(t *testing.T) {
	s := newStore(t)
	obj := objectID(1)
	meta := storage.ObjectMeta{Class: "Room", Name: "r1"}
	mustCommit(t, s, &storage.Batch{Object: obj, Meta: &meta})

	// Nothing set yet.
	if _, ok, err := s.Alarm(obj); err != nil || ok {
		t.Fatalf("Alarm before set = %v, %v", ok, err)
	}
	if _, ok, err := s.NextAlarm(); err != nil || ok {
		t.Fatalf("NextAlarm before set = %v, %v", ok, err)
	}

	steps := []struct {
		name  string
		batch *storage.Batch
		want  *time.Time // nil: no alarm
	}{
		{"set", setAlarm(obj, baseTime.Add(time.Hour)), ptr(baseTime.Add(time.Hour))},
		{"replace with earlier", setAlarm(obj, baseTime), ptr(baseTime)},
		{"replace with later", setAlarm(obj, baseTime.Add(2*time.Hour)), ptr(baseTime.Add(2 * time.Hour))},
		{"replace with same time", setAlarm(obj, baseTime.Add(2*time.Hour)), ptr(baseTime.Add(2 * time.Hour))},
		{"delete", deleteAlarm(obj), nil},
		{"delete again", deleteAlarm(obj), nil},
		{"set after delete", setAlarm(obj, baseTime.Add(3*time.Hour)), ptr(baseTime.Add(3 * time.Hour))},
	}
	for _, st := range steps {
		mustCommit(t, s, st.batch)
		at, ok, err := s.Alarm(obj)
		if err != nil {
			t.Fatal(err)
		}
		index := allAlarms(t, s)
		next, nextOK, err := s.NextAlarm()
		if err != nil {
			t.Fatal(err)
		}
		if st.want == nil {
			if ok || len(index) != 0 || nextOK {
				t.Errorf("after %s: Alarm=%v,%v index=%+v NextAlarm=%v,%v; want none", st.name, at, ok, index, next, nextOK)
			}
			continue
		}
		if !ok || !at.Equal(*st.want) {
			t.Errorf("after %s: Alarm = %v, %v; want %v", st.name, at, ok, *st.want)
		}
		if len(index) != 1 || !index[0].At.Equal(*st.want) || index[0].Object != obj || index[0].Meta != meta {
			t.Errorf("after %s: index = %+v; want exactly one entry at %v with meta %+v", st.name, index, *st.want, meta)
		}
		if !nextOK || !next.Equal(*st.want) {
			t.Errorf("after %s: NextAlarm = %v, %v; want %v", st.name, next, nextOK, *st.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestAlarmsReturnsDueAlarmsEarliestFirstUpToLimit(t *testing.T) {
	s := newStore(t)
	// Object ids deliberately not in time order.
	times := map[byte]time.Duration{5: 0, 1: time.Second, 4: 2 * time.Second, 2: 3 * time.Second, 3: time.Hour}
	for n, d := range times {
		mustCommit(t, s, &storage.Batch{Object: objectID(n), Meta: &storage.ObjectMeta{Class: "C", Name: fmt.Sprint(n)},
			Alarm: storage.AlarmChange{Set: true, At: baseTime.Add(d)}})
	}
	tests := []struct {
		name  string
		until time.Time
		limit int
		want  []byte // object numbers
	}{
		{"everything", baseTime.Add(24 * time.Hour), 100, []byte{5, 1, 4, 2, 3}},
		{"until is inclusive", baseTime.Add(2 * time.Second), 100, []byte{5, 1, 4}},
		{"one nanosecond before excludes", baseTime.Add(2*time.Second - 1), 100, []byte{5, 1}},
		{"limit truncates to the earliest", baseTime.Add(24 * time.Hour), 2, []byte{5, 1}},
		{"limit one", baseTime.Add(24 * time.Hour), 1, []byte{5}},
		{"limit zero", baseTime.Add(24 * time.Hour), 0, nil},
		{"nothing due", baseTime.Add(-1), 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Alarms(tt.until, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			var ids []byte
			for _, a := range got {
				n := a.Object[len(a.Object)-1]
				ids = append(ids, n)
				if !a.At.Equal(baseTime.Add(times[n])) {
					t.Errorf("alarm of %d at %v, want %v", n, a.At, baseTime.Add(times[n]))
				}
				if a.Meta.Name != fmt.Sprint(n) || a.Meta.Class != "C" {
					t.Errorf("alarm of %d has meta %+v", n, a.Meta)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("Alarms(until %v, limit %d) = objects %v, want %v", tt.until.Sub(baseTime), tt.limit, ids, tt.want)
			}
		})
	}
	next, ok, err := s.NextAlarm()
	if err != nil || !ok || !next.Equal(baseTime) {
		t.Errorf("NextAlarm = %v, %v, %v; want %v", next, ok, err, baseTime)
	}
}

func TestAlarmMetaComesFromBatchOrFromStore(t *testing.T) {
	s := newStore(t)
	withMeta, stored, none := objectID(1), objectID(2), objectID(3)
	mustCommit(t, s, &storage.Batch{Object: withMeta, Meta: &storage.ObjectMeta{Class: "A", Name: "in-batch"},
		Alarm: storage.AlarmChange{Set: true, At: baseTime}})
	mustCommit(t, s, &storage.Batch{Object: stored, Meta: &storage.ObjectMeta{Class: "B", Name: "earlier"}})
	mustCommit(t, s, setAlarm(stored, baseTime.Add(time.Second)))
	mustCommit(t, s, setAlarm(none, baseTime.Add(2*time.Second)))

	want := map[storage.ObjectID]storage.ObjectMeta{
		withMeta: {Class: "A", Name: "in-batch"},
		stored:   {Class: "B", Name: "earlier"},
		none:     {},
	}
	got := allAlarms(t, s)
	if len(got) != len(want) {
		t.Fatalf("index has %d alarms, want %d: %+v", len(got), len(want), got)
	}
	for _, a := range got {
		if a.Meta != want[a.Object] {
			t.Errorf("alarm of %x has meta %+v, want %+v", a.Object[31], a.Meta, want[a.Object])
		}
	}
}

// TestSeveralAlarmChangesInOneGroupLeaveOneIndexEntry holds the commit loop
// so that every batch of a case is committed in the same group, where the
// earlier alarm changes are not yet readable from the database.
func TestSeveralAlarmChangesInOneGroupLeaveOneIndexEntry(t *testing.T) {
	t1, t2, t3 := baseTime.Add(time.Minute), baseTime.Add(2*time.Minute), baseTime.Add(3*time.Minute)
	tests := []struct {
		name    string
		stored  *time.Time // alarm committed before the group
		changes []storage.AlarmChange
		want    *time.Time
	}{
		{"set then set", nil, []storage.AlarmChange{{Set: true, At: t1}, {Set: true, At: t2}}, &t2},
		{"set then set earlier", nil, []storage.AlarmChange{{Set: true, At: t2}, {Set: true, At: t1}}, &t1},
		{"set then delete", nil, []storage.AlarmChange{{Set: true, At: t1}, {Delete: true}}, nil},
		{"delete then set", &t3, []storage.AlarmChange{{Delete: true}, {Set: true, At: t1}}, &t1},
		{"stored then set set set", &t3, []storage.AlarmChange{{Set: true, At: t1}, {Set: true, At: t2}, {Set: true, At: t1}}, &t1},
		{"stored then set delete", &t3, []storage.AlarmChange{{Set: true, At: t1}, {Delete: true}}, nil},
		{"stored then delete delete", &t3, []storage.AlarmChange{{Delete: true}, {Delete: true}}, nil},
		{"set delete set", nil, []storage.AlarmChange{{Set: true, At: t1}, {Delete: true}, {Set: true, At: t2}}, &t2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &groupRecorder{}
			s := openStore(t, t.TempDir(), storage.PebbleOptions{Metrics: rec})
			obj := objectID(1)
			bystander := objectID(2)
			mustCommit(t, s, &storage.Batch{Object: obj, Meta: &storage.ObjectMeta{Class: "C"}})
			mustCommit(t, s, setAlarm(bystander, t2))
			if tt.stored != nil {
				mustCommit(t, s, setAlarm(obj, *tt.stored))
			}
			release := holdCommitLoop(t, s)
			var chans []<-chan error
			for _, c := range tt.changes {
				chans = append(chans, submit(s, &storage.Batch{Object: obj, Alarm: c}))
			}
			release()
			for _, ch := range chans {
				if err := wait(t, ch); err != nil {
					t.Fatal(err)
				}
			}
			groups := rec.snapshot()
			if last := groups[len(groups)-1]; last.batches != len(tt.changes) {
				t.Fatalf("changes were committed in groups %+v, not in one group", groups)
			}

			at, ok, err := s.Alarm(obj)
			if err != nil {
				t.Fatal(err)
			}
			var mine []storage.Alarm
			for _, a := range allAlarms(t, s) {
				if a.Object == obj {
					mine = append(mine, a)
				} else if a.Object != bystander || !a.At.Equal(t2) {
					t.Errorf("unexpected index entry %+v", a)
				}
			}
			if tt.want == nil {
				if ok || len(mine) != 0 {
					t.Errorf("Alarm = %v, %v; index entries %+v; want none", at, ok, mine)
				}
				return
			}
			if !ok || !at.Equal(*tt.want) {
				t.Errorf("Alarm = %v, %v; want %v", at, ok, *tt.want)
			}
			if len(mine) != 1 || !mine[0].At.Equal(*tt.want) {
				t.Errorf("index entries %+v; want exactly one at %v", mine, *tt.want)
			}
		})
	}
}

// An object's first event usually carries its meta; a second event that
// sets an alarm (without meta, already sent) may land in the same group.
// The alarm index must still name the object's class, or the scheduler
// cannot activate it.
func TestAlarmSetInSameGroupAsFirstMetaRecordsThatMeta(t *testing.T) {
	rec := &groupRecorder{}
	s := openStore(t, t.TempDir(), storage.PebbleOptions{Metrics: rec})
	obj := objectID(1)
	meta := storage.ObjectMeta{Class: "RoomManager", Name: "main"}
	release := holdCommitLoop(t, s)
	first := submit(s, &storage.Batch{Object: obj, Meta: &meta, Ops: puts(obj, "k", "v").Ops})
	second := submit(s, setAlarm(obj, baseTime))
	release()
	for _, ch := range []<-chan error{first, second} {
		if err := wait(t, ch); err != nil {
			t.Fatal(err)
		}
	}
	if groups := rec.snapshot(); groups[len(groups)-1].batches != 2 {
		t.Fatalf("batches were not committed in one group: %+v", groups)
	}
	alarms := allAlarms(t, s)
	if len(alarms) != 1 {
		t.Fatalf("index = %+v, want one alarm", alarms)
	}
	if alarms[0].Meta != meta {
		t.Errorf("alarm index meta = %+v, want %+v (the meta committed earlier in the same group)", alarms[0].Meta, meta)
	}
}

func TestConcurrentCommitsShareGroupCommits(t *testing.T) {
	rec := &groupRecorder{}
	s := openStore(t, t.TempDir(), storage.PebbleOptions{Metrics: rec})
	const n = 200
	release := holdCommitLoop(t, s)

	results := make(chan error, n)
	var submitted sync.WaitGroup
	for i := 0; i < n; i++ {
		submitted.Add(1)
		go func() {
			defer submitted.Done()
			obj := objectID(byte(i % 50))
			s.Commit(puts(obj, fmt.Sprintf("k%03d", i), "v"), func(err error) { results <- err })
		}()
	}
	submitted.Wait()
	release()
	for i := 0; i < n; i++ {
		select {
		case err := <-results:
			if err != nil {
				t.Fatalf("commit: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("only %d of %d commits completed", i, n)
		}
	}

	groups := rec.snapshot()
	total := 0
	for _, g := range groups {
		total += g.batches
	}
	if total != n+1 { // +1: the holding batch
		t.Errorf("observed %d batches in %d groups, want %d", total, len(groups), n+1)
	}
	if len(groups) >= n {
		t.Errorf("%d batches took %d group commits; want fewer groups than batches", n, len(groups))
	}
	// Everything queued behind the held group fits in one group of 8 MiB.
	if len(groups) != 2 || groups[1].batches != n {
		t.Errorf("groups = %+v; want the held batch, then all %d queued batches in one group", groups, n)
	}
	for i := 0; i < n; i++ {
		if _, ok := mustGet(t, s, objectID(byte(i%50)), fmt.Sprintf("k%03d", i)); !ok {
			t.Errorf("batch %d not visible after its commit", i)
		}
	}
}

func TestGroupCommitStaysNearMaxGroupBytes(t *testing.T) {
	rec := &groupRecorder{}
	const maxGroup = 4096
	s := openStore(t, t.TempDir(), storage.PebbleOptions{Metrics: rec, MaxGroupBytes: maxGroup})
	const n = 100
	value := strings.Repeat("v", 500) // about 570 bytes a batch: 7-8 batches a group
	release := holdCommitLoop(t, s)
	var chans []<-chan error
	for i := 0; i < n; i++ {
		chans = append(chans, submit(s, puts(objectID(1), fmt.Sprint(i), value)))
	}
	release()
	for _, ch := range chans {
		if err := wait(t, ch); err != nil {
			t.Fatal(err)
		}
	}
	groups := rec.snapshot()[1:] // the first is the holding batch alone
	total := 0
	for _, g := range groups {
		total += g.batches
		if g.batches > 1 && g.bytes >= maxGroup+600 {
			t.Errorf("group of %d batches has %d bytes; limit %d overshot by more than one batch", g.batches, g.bytes, maxGroup)
		}
	}
	if total != n {
		t.Errorf("observed %d batches, want %d", total, n)
	}
	if len(groups) < n*570/(maxGroup+600) || len(groups) >= n {
		t.Errorf("%d batches of ~570 bytes in %d groups under a %d-byte limit", n, len(groups), maxGroup)
	}
}

// describe renders opts with its keys quoted, since they hold 0x00 and 0xff.
func describe(o storage.ScanOptions) string {
	return fmt.Sprintf("{Prefix:%q Start:%q End:%q Reverse:%v}", o.Prefix, o.Start, o.End, o.Reverse)
}

func TestForgetAndListObjects(t *testing.T) {
	s := newStore(t)
	at := time.Unix(1900000000, 0).UTC()
	for n := byte(1); n <= 3; n++ {
		mustCommit(t, s, &storage.Batch{Object: objectID(n), Meta: &storage.ObjectMeta{Class: "C", Name: fmt.Sprint("o", n)},
			Ops:   []storage.Op{{Kind: storage.OpPut, Key: "a", Value: []byte("1")}, {Kind: storage.OpPut, Key: "bb", Value: []byte("22")}},
			Alarm: storage.AlarmChange{Set: true, At: at}, Written: at.Add(-time.Duration(n) * time.Hour)})
	}
	// A later batch without a time keeps the last recorded one; one with a
	// time replaces it.
	mustCommit(t, s, &storage.Batch{Object: objectID(1), Ops: []storage.Op{{Kind: storage.OpDelete, Key: "zz"}}})
	mustCommit(t, s, &storage.Batch{Object: objectID(3), Ops: []storage.Op{{Kind: storage.OpDelete, Key: "zz"}}, Written: at})
	all, err := s.ListObjects(nil, 10, nil)
	if err != nil || len(all) != 3 {
		t.Fatalf("ListObjects = %d objects, %v; want 3", len(all), err)
	}
	if o := all[0]; o.ID != objectID(1) || o.Meta.Name != "o1" || o.Keys != 2 || o.Bytes != 6 || o.Alarm == nil || !o.Alarm.Equal(at) ||
		o.LastWrite == nil || !o.LastWrite.Equal(at.Add(-time.Hour)) {
		t.Fatalf("first object = %+v", o)
	}
	if o := all[2]; o.LastWrite == nil || !o.LastWrite.Equal(at) {
		t.Fatalf("third object's last write = %v, want %v", o.LastWrite, at)
	}
	// Paging: after the first, at most one.
	page, err := s.ListObjects(&all[0].ID, 1, nil)
	if err != nil || len(page) != 1 || page[0].ID != objectID(2) {
		t.Fatalf("second page = %+v, %v", page, err)
	}
	// Forget removes data, alarm (and its index entry), last write and meta.
	mustCommit(t, s, &storage.Batch{Object: objectID(2), Forget: true})
	var left []byte
	if err := s.ExportObjects(func(id storage.ObjectID) bool { return id == objectID(2) }, func(k, _ []byte) error {
		left = k
		return nil
	}); err != nil || left != nil {
		t.Fatalf("after Forget the object still has key %q (%v)", left, err)
	}
	if _, ok, _ := s.Get(objectID(2), "a"); ok {
		t.Fatal("data survived Forget")
	}
	if _, ok, _ := s.Alarm(objectID(2)); ok {
		t.Fatal("alarm survived Forget")
	}
	due, _ := s.Alarms(at, 10)
	for _, a := range due {
		if a.Object == objectID(2) {
			t.Fatal("alarm index entry survived Forget")
		}
	}
	if len(due) != 2 {
		t.Fatalf("%d due alarms, want the other 2", len(due))
	}
	rest, _ := s.ListObjects(nil, 10, func(id storage.ObjectID, m storage.ObjectMeta) bool { return m.Class == "C" })
	if len(rest) != 2 || rest[0].ID != objectID(1) || rest[1].ID != objectID(3) {
		t.Fatalf("after Forget: %+v", rest)
	}
	// The codec carries Forget.
	dec, err := storage.DecodeBatch(storage.AppendBatch(nil, &storage.Batch{Object: objectID(9), Forget: true}))
	if err != nil || !dec.Forget {
		t.Fatalf("codec lost Forget: %+v %v", dec, err)
	}
}

func TestExportObjectAndRestoreBatchesRoundTrip(t *testing.T) {
	src, dst := newStore(t), newStore(t)
	at := time.Unix(1900000000, 0).UTC()
	obj := objectID(7)
	var ops []storage.Op
	for i := range 50 {
		ops = append(ops, storage.Op{Kind: storage.OpPut, Key: fmt.Sprintf("k%03d", i), Value: bytes.Repeat([]byte{byte(i)}, 100)})
	}
	mustCommit(t, src, &storage.Batch{Object: obj, Meta: &storage.ObjectMeta{Class: "C", Name: "seven"}, Ops: ops,
		Alarm: storage.AlarmChange{Set: true, At: at}, Written: at})
	mustCommit(t, src, puts(objectID(8), "other", "x")) // a neighbour must not leak in
	exp, ok, err := src.ExportObject(obj)
	if err != nil || !ok {
		t.Fatalf("ExportObject: %v, %v", ok, err)
	}
	if exp.Meta.Name != "seven" || len(exp.Data) != 50 || exp.Alarm == nil || !exp.Alarm.Equal(at) || exp.LastWrite == nil || !exp.LastWrite.Equal(at) {
		t.Fatalf("export = meta %+v, %d keys, alarm %v, last write %v", exp.Meta, len(exp.Data), exp.Alarm, exp.LastWrite)
	}
	if _, ok, err := src.ExportObject(objectID(99)); ok || err != nil {
		t.Fatalf("ExportObject of a missing object: %v, %v", ok, err)
	}

	// The destination holds stale state of the same object: the restore
	// replaces it entirely, alarm included.
	mustCommit(t, dst, &storage.Batch{Object: obj, Meta: &storage.ObjectMeta{Class: "C", Name: "seven"},
		Ops: []storage.Op{{Kind: storage.OpPut, Key: "stale", Value: []byte("1")}}, Alarm: storage.AlarmChange{Set: true, At: at.Add(time.Hour)}})
	batches := storage.RestoreBatches(exp, 1000, at.Add(time.Minute))
	if len(batches) < 5 {
		t.Fatalf("%d batches for 5 KB at 1 KB each", len(batches))
	}
	for _, b := range batches {
		mustCommit(t, dst, b)
	}
	got, ok, err := dst.ExportObject(obj)
	if err != nil || !ok {
		t.Fatalf("ExportObject after restore: %v, %v", ok, err)
	}
	if !reflect.DeepEqual(got.Data, exp.Data) || got.Meta != exp.Meta || !got.Alarm.Equal(at) {
		t.Fatalf("restored state differs: %d keys (want %d), meta %+v, alarm %v", len(got.Data), len(exp.Data), got.Meta, got.Alarm)
	}
	if due, _ := dst.Alarms(at.Add(2*time.Hour), 10); len(due) != 1 || !due[0].At.Equal(at) {
		t.Fatalf("alarm index after restore: %+v", due)
	}
}

// TestFailedCommitFailsEveryLaterOne: an object pipelines its events, so a
// batch may have been computed on the writes of one that failed; once a
// commit fails, nothing later may land.
//
// Reads are refused too (with ErrFailed): after a failed WAL write Pebble
// may show the lost batch. A store opened again on the directory has every
// earlier commit and none of the refused ones.
func TestFailedCommitFailsEveryLaterOne(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.OpenPebble(dir, storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s, puts(objectID(1), "before", "1"))
	bad := &storage.Batch{Object: objectID(1), Ops: []storage.Op{{Kind: storage.OpKind(99), Key: "k"}}}
	if err := wait(t, submit(s, bad)); err == nil {
		t.Fatal("a batch with an unknown op committed")
	}
	if err := wait(t, submit(s, puts(objectID(2), "after", "2"))); !errors.Is(err, storage.ErrFailed) || !errors.Is(err, storage.ErrNotWritten) {
		t.Fatalf("a commit after a failed one: %v, want ErrFailed and ErrNotWritten", err)
	}
	if _, _, err := s.Get(objectID(1), "before"); !errors.Is(err, storage.ErrFailed) {
		t.Fatalf("a read of the failed store: %v, want ErrFailed", err)
	}
	if err := s.Scan(objectID(1), storage.ScanOptions{}, func(string, []byte) bool { return true }); !errors.Is(err, storage.ErrFailed) {
		t.Fatalf("a scan of the failed store: %v, want ErrFailed", err)
	}
	s.Close()
	s = openStore(t, dir, storage.PebbleOptions{})
	if _, ok, _ := s.Get(objectID(2), "after"); ok {
		t.Fatal("the later batch's write is in the store")
	}
	if _, ok, _ := s.Get(objectID(1), "before"); !ok {
		t.Fatal("the earlier commit is gone")
	}
}

// TestMemTableHoldsShortLivedWrites: writes that are overwritten while
// still in the memtable never reach a table file. With the default memtable
// (64 MiB) 6 MiB of rewrites of a few keys flush nothing; with a 1 MiB
// memtable the same writes flush, which shows the option reaches Pebble.
func TestMemTableHoldsShortLivedWrites(t *testing.T) {
	for _, tc := range []struct {
		name      string
		memtable  uint64
		wantFlush bool
	}{
		{"default", 0, false},
		{"1MiB", 1 << 20, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, t.TempDir(), storage.PebbleOptions{MemTableBytes: tc.memtable})
			value := strings.Repeat("v", 4096)
			for i := range 1536 { // 6 MiB in all, 16 keys
				mustCommit(t, s, puts(objectID(1), fmt.Sprintf("room-%02d", i%16), value))
			}
			flushes := s.Flushes()
			if got := flushes > 0; got != tc.wantFlush {
				t.Fatalf("memtable %d: %d flushes, want flushes: %v", tc.memtable, flushes, tc.wantFlush)
			}
			if v, ok := mustGet(t, s, objectID(1), "room-15"); !ok || v != value {
				t.Fatalf("room-15 = %d bytes, %v", len(v), ok)
			}
		})
	}
}
