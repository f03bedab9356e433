package runtime

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/holocron-run/holocron/storage"
)

// These tests drive Storage the way entry.handle does — begin, the
// handler's calls, end, pushPending, Commit, popPending in the commit
// callback — against a real PebbleStore, and compare what the object reads
// with a reference model: a map folded over the committed, pending and
// current writes in order.

const storageTestTimeout = 10 * time.Second

var alarmBase = time.Date(2031, 5, 6, 7, 8, 9, 10, time.UTC)

func openTestPebble(t *testing.T) *storage.PebbleStore {
	t.Helper()
	s, err := storage.OpenPebble(t.TempDir(), storage.PebbleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

func testObjectID(n int) storage.ObjectID {
	var id storage.ObjectID
	id[30], id[31] = byte(n>>8), byte(n)
	return id
}

// storageHarness is one object's Storage over a shared PebbleStore.
type storageHarness struct {
	t     *testing.T
	store *storage.PebbleStore
	obj   storage.ObjectID
	st    *Storage
}

func newStorageHarness(t *testing.T, store *storage.PebbleStore, n int) *storageHarness {
	obj := testObjectID(n)
	return &storageHarness{t: t, store: store, obj: obj, st: newStorage(obj, store)}
}

// event runs fn as one event and returns its writes.
func (h *storageHarness) event(fn func(st *Storage)) *writeSet {
	h.st.begin()
	fn(h.st)
	return h.st.end()
}

func (h *storageHarness) batch(w *writeSet) *storage.Batch {
	b := &storage.Batch{Object: h.obj, Ops: w.ops}
	if w.alarm != nil {
		b.Alarm = *w.alarm
	}
	return b
}

// commitNow commits w to the store and waits, without a pending layer: as
// if the event happened long ago.
func (h *storageHarness) commitNow(w *writeSet) {
	h.t.Helper()
	done := make(chan error, 1)
	h.store.Commit(h.batch(w), func(err error) { done <- err })
	select {
	case err := <-done:
		if err != nil {
			h.t.Fatalf("commit: %v", err)
		}
	case <-time.After(storageTestTimeout):
		h.t.Fatal("commit did not complete")
	}
}

// submit does what entry.handle does with an event's writes: it makes them
// pending, then commits them and pops them when the commit is done.
func (h *storageHarness) submit(w *writeSet) <-chan error {
	done := make(chan error, 1)
	h.st.pushPending(w)
	h.store.Commit(h.batch(w), func(err error) {
		h.st.popPending()
		done <- err
	})
	return done
}

func (h *storageHarness) get(key string) (string, bool) {
	h.t.Helper()
	v, ok, err := h.st.Get(key)
	if err != nil {
		h.t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v), ok
}

func (h *storageHarness) list(o ListOptions) []string {
	h.t.Helper()
	kvs, err := h.st.List(o)
	if err != nil {
		h.t.Fatalf("List(%s): %v", describeList(o), err)
	}
	return kvStrings(kvs)
}

func kvStrings(kvs []KV) []string {
	out := make([]string, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, kv.Key+"="+string(kv.Value))
	}
	return out
}

func describeList(o ListOptions) string {
	return fmt.Sprintf("{Prefix:%q Start:%q End:%q Reverse:%v Limit:%d}", o.Prefix, o.Start, o.End, o.Reverse, o.Limit)
}

// holdStoreCommits parks the store's commit goroutine until the returned
// release is called, so that commits submitted meanwhile stay incomplete.
func holdStoreCommits(t *testing.T, store storage.Store) (release func()) {
	t.Helper()
	entered, released := make(chan struct{}), make(chan struct{})
	blocker := &storage.Batch{Object: testObjectID(0xffff), Ops: []storage.Op{{Kind: storage.OpPut, Key: "hold", Value: []byte("x")}}}
	store.Commit(blocker, func(error) {
		close(entered)
		<-released
	})
	select {
	case <-entered:
	case <-time.After(storageTestTimeout):
		t.Fatal("commit goroutine never ran the holding callback")
	}
	var once sync.Once
	release = func() { once.Do(func() { close(released) }) }
	t.Cleanup(release)
	return release
}

// Reference model.

func opPut(k, v string) storage.Op { return storage.Op{Kind: storage.OpPut, Key: k, Value: []byte(v)} }
func opDel(k string) storage.Op    { return storage.Op{Kind: storage.OpDelete, Key: k} }
func opDeleteAll() storage.Op      { return storage.Op{Kind: storage.OpDeleteAll} }

// applyOps performs ops through the Storage API, as object code would.
func applyOps(t *testing.T, st *Storage, ops []storage.Op) {
	t.Helper()
	for _, op := range ops {
		var err error
		switch op.Kind {
		case storage.OpPut:
			err = st.Put(op.Key, op.Value)
		case storage.OpDelete:
			err = st.Delete(op.Key)
		case storage.OpDeleteAll:
			err = st.DeleteAll()
		}
		if err != nil {
			t.Fatalf("apply %+v: %v", op, err)
		}
	}
}

// foldOps applies every op of every layer, oldest first, to a copy of base.
func foldOps(base map[string]string, layers ...[]storage.Op) map[string]string {
	m := make(map[string]string, len(base))
	for k, v := range base {
		m[k] = v
	}
	for _, ops := range layers {
		for _, op := range ops {
			switch op.Kind {
			case storage.OpPut:
				m[op.Key] = string(op.Value)
			case storage.OpDelete:
				delete(m, op.Key)
			case storage.OpDeleteAll:
				clear(m)
			}
		}
	}
	return m
}

// refList is what List must return for the visible state m.
func refList(m map[string]string, o ListOptions) []string {
	var keys []string
	for k := range m {
		if strings.HasPrefix(k, o.Prefix) && k >= o.Start && (o.End == "" || k < o.End) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	if o.Reverse {
		slices.Reverse(keys)
	}
	if o.Limit > 0 && len(keys) > o.Limit {
		keys = keys[:o.Limit]
	}
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+m[k])
	}
	return out
}

func TestReadsSeeTheCurrentEventsWrites(t *testing.T) {
	store := openTestPebble(t)
	tests := []struct {
		name   string
		stored []storage.Op
		ops    []storage.Op
		key    string
		want   string
		wantOK bool
	}{
		{"own put", nil, []storage.Op{opPut("k", "new")}, "k", "new", true},
		{"own put over a stored value", []storage.Op{opPut("k", "old")}, []storage.Op{opPut("k", "new")}, "k", "new", true},
		{"last of two puts", nil, []storage.Op{opPut("k", "1"), opPut("k", "2")}, "k", "2", true},
		{"own delete of a stored key", []storage.Op{opPut("k", "old")}, []storage.Op{opDel("k")}, "k", "", false},
		{"put then delete", nil, []storage.Op{opPut("k", "1"), opDel("k")}, "k", "", false},
		{"delete then put", []storage.Op{opPut("k", "old")}, []storage.Op{opDel("k"), opPut("k", "new")}, "k", "new", true},
		{"delete all hides stored keys", []storage.Op{opPut("k", "old")}, []storage.Op{opDeleteAll()}, "k", "", false},
		{"delete all hides own earlier puts", nil, []storage.Op{opPut("k", "1"), opDeleteAll()}, "k", "", false},
		{"put after delete all", []storage.Op{opPut("k", "old")}, []storage.Op{opDeleteAll(), opPut("k", "new")}, "k", "new", true},
		{"untouched stored key", []storage.Op{opPut("k", "old")}, []storage.Op{opPut("other", "x")}, "k", "old", true},
		{"empty value is present", nil, []storage.Op{opPut("k", "")}, "k", "", true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStorageHarness(t, store, i+1)
			if tt.stored != nil {
				h.commitNow(h.event(func(st *Storage) { applyOps(t, st, tt.stored) }))
			}
			h.st.begin()
			defer h.st.discard()
			applyOps(t, h.st, tt.ops)
			if got, ok := h.get(tt.key); got != tt.want || ok != tt.wantOK {
				t.Errorf("Get(%q) = %q, %v; want %q, %v", tt.key, got, ok, tt.want, tt.wantOK)
			}
			many, err := h.st.GetMany([]string{tt.key, "never-written"})
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := many[tt.key]; ok != tt.wantOK || string(v) != tt.want {
				t.Errorf("GetMany[%q] = %q, %v; want %q, %v", tt.key, v, ok, tt.want, tt.wantOK)
			}
			if _, ok := many["never-written"]; ok || len(many) > 1 {
				t.Errorf("GetMany returned absent keys: %q", many)
			}
		})
	}
}

var errRollback = errors.New("roll back")

func TestTransactionCommitsIntoEventOrRollsBack(t *testing.T) {
	store := openTestPebble(t)
	type tx struct {
		ops      []storage.Op
		inner    *tx
		rollback bool
	}
	tests := []struct {
		name   string
		stored []storage.Op
		before []storage.Op // event writes before the transaction
		tx     tx
		want   map[string]string // visible after the transaction, and in the store after commit
	}{
		{"committed writes join the event", []storage.Op{opPut("s", "0")}, []storage.Op{opPut("a", "1")},
			tx{ops: []storage.Op{opPut("b", "2"), opDel("s")}},
			map[string]string{"a": "1", "b": "2"}},
		{"rolled back writes vanish", []storage.Op{opPut("s", "0")}, []storage.Op{opPut("a", "1")},
			tx{ops: []storage.Op{opPut("a", "changed"), opPut("b", "2"), opDel("s")}, rollback: true},
			map[string]string{"a": "1", "s": "0"}},
		{"rolled back delete all hides nothing", []storage.Op{opPut("s", "0")}, []storage.Op{opPut("a", "1")},
			tx{ops: []storage.Op{opDeleteAll(), opPut("c", "3")}, rollback: true},
			map[string]string{"a": "1", "s": "0"}},
		{"committed delete all hides store and earlier event writes", []storage.Op{opPut("s", "0")}, []storage.Op{opPut("a", "1")},
			tx{ops: []storage.Op{opDeleteAll(), opPut("c", "3")}},
			map[string]string{"c": "3"}},
		{"inner rollback inside outer commit", nil, nil,
			tx{ops: []storage.Op{opPut("outer", "1")}, inner: &tx{ops: []storage.Op{opPut("inner", "2"), opDel("outer")}, rollback: true}},
			map[string]string{"outer": "1"}},
		{"inner commit inside outer rollback", []storage.Op{opPut("s", "0")}, nil,
			tx{ops: []storage.Op{opPut("outer", "1")}, inner: &tx{ops: []storage.Op{opPut("inner", "2"), opDel("s")}}, rollback: true},
			map[string]string{"s": "0"}},
		{"inner and outer commit", []storage.Op{opPut("s", "0")}, nil,
			tx{ops: []storage.Op{opPut("outer", "1")}, inner: &tx{ops: []storage.Op{opPut("outer", "2"), opDel("s")}}},
			map[string]string{"outer": "2"}},
		{"inner delete all committed through outer", []storage.Op{opPut("s", "0")}, []storage.Op{opPut("a", "1")},
			tx{ops: []storage.Op{opPut("outer", "1")}, inner: &tx{ops: []storage.Op{opDeleteAll(), opPut("i", "2")}}},
			map[string]string{"i": "2"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStorageHarness(t, store, 100+i)
			stored := foldOps(nil, tt.stored)
			if tt.stored != nil {
				h.commitNow(h.event(func(st *Storage) { applyOps(t, st, tt.stored) }))
			}
			h.st.begin()
			applyOps(t, h.st, tt.before)
			// run performs x inside a transaction and checks that reads
			// inside it see its writes on top of visible.
			var run func(x *tx, visible map[string]string) error
			run = func(x *tx, visible map[string]string) error {
				return h.st.Transaction(func(txs *Storage) error {
					applyOps(t, txs, x.ops)
					inside := foldOps(visible, x.ops)
					if x.inner != nil {
						err := run(x.inner, inside)
						if x.inner.rollback != errors.Is(err, errRollback) {
							t.Errorf("inner transaction returned %v", err)
						}
						if !x.inner.rollback {
							inside = foldOps(inside, x.inner.ops)
						}
					}
					if got, want := h.list(ListOptions{}), refList(inside, ListOptions{}); !slices.Equal(got, want) {
						t.Errorf("inside transaction List = %q, want %q", got, want)
					}
					for k, v := range inside {
						if got, ok := h.get(k); !ok || got != v {
							t.Errorf("inside transaction Get(%q) = %q, %v; want %q", k, got, ok, v)
						}
					}
					if x.rollback {
						return errRollback
					}
					return nil
				})
			}
			err := run(&tt.tx, foldOps(stored, tt.before))
			if tt.tx.rollback != errors.Is(err, errRollback) {
				t.Fatalf("Transaction returned %v, rollback=%v", err, tt.tx.rollback)
			}
			if got, want := h.list(ListOptions{}), refList(tt.want, ListOptions{}); !slices.Equal(got, want) {
				t.Errorf("after transaction List = %q, want %q", got, want)
			}
			// The event's batch carries exactly what survived.
			h.commitNow(h.st.end())
			got := map[string]string{}
			err = store.Scan(h.obj, storage.ScanOptions{}, func(k string, v []byte) bool {
				got[k] = string(v)
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("committed %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNextEventSeesPendingWritesBeforeTheirCommitCompletes(t *testing.T) {
	store := openTestPebble(t)
	h := newStorageHarness(t, store, 1)
	h.commitNow(h.event(func(st *Storage) {
		applyOps(t, st, []storage.Op{opPut("old", "o"), opPut("keep", "k")})
		if err := st.SetAlarm(alarmBase); err != nil {
			t.Fatal(err)
		}
	}))

	release := holdStoreCommits(t, store)
	first := h.submit(h.event(func(st *Storage) {
		applyOps(t, st, []storage.Op{opPut("new", "n"), opDel("old")})
		if err := st.SetAlarm(alarmBase.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}))
	second := h.submit(h.event(func(st *Storage) {
		if v, ok := h.get("new"); !ok || v != "n" {
			t.Errorf("second event: Get(new) = %q, %v; want the first event's pending put", v, ok)
		}
		applyOps(t, st, []storage.Op{opPut("new", "n2")})
	}))

	// Neither commit has completed: the store does not have them yet.
	if _, ok, err := store.Get(h.obj, "new"); err != nil || ok {
		t.Fatalf("store already has the pending put (ok=%v, err=%v); the test cannot tell layers from store", ok, err)
	}
	h.st.begin()
	wantKeys := []string{"keep=k", "new=n2"}
	if got := h.list(ListOptions{}); !slices.Equal(got, wantKeys) {
		t.Errorf("third event: List = %q, want %q", got, wantKeys)
	}
	if _, ok := h.get("old"); ok {
		t.Error("third event: Get(old) found a key deleted by a pending batch")
	}
	if at, ok, err := h.st.GetAlarm(); err != nil || !ok || !at.Equal(alarmBase.Add(time.Hour)) {
		t.Errorf("third event: GetAlarm = %v, %v, %v; want the pending alarm", at, ok, err)
	}
	h.st.discard()

	release()
	for _, ch := range []<-chan error{first, second} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(storageTestTimeout):
			t.Fatal("commit did not complete")
		}
	}
	h.st.mu.Lock()
	pending := len(h.st.pending)
	h.st.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d layers still pending after every commit completed", pending)
	}
	// Now served from the store, with the same answers.
	if got := h.list(ListOptions{}); !slices.Equal(got, wantKeys) {
		t.Errorf("after commit: List = %q, want %q", got, wantKeys)
	}
	if at, ok, err := h.st.GetAlarm(); err != nil || !ok || !at.Equal(alarmBase.Add(time.Hour)) {
		t.Errorf("after commit: GetAlarm = %v, %v, %v", at, ok, err)
	}
}

func TestListMergesUncommittedLayersWithStore(t *testing.T) {
	store := openTestPebble(t)
	tests := []struct {
		name    string
		stored  []storage.Op
		pending [][]storage.Op // oldest first
		current []storage.Op
		opts    ListOptions
		want    []string
	}{
		{
			name:   "store only",
			stored: []storage.Op{opPut("b", "1"), opPut("a", "0")},
			want:   []string{"a=0", "b=1"},
		},
		{
			name:    "current puts interleave with stored keys",
			stored:  []storage.Op{opPut("a", "s"), opPut("c", "s"), opPut("e", "s")},
			current: []storage.Op{opPut("d", "m"), opPut("b", "m"), opPut("f", "m")},
			want:    []string{"a=s", "b=m", "c=s", "d=m", "e=s", "f=m"},
		},
		{
			name:    "current put overrides stored value",
			stored:  []storage.Op{opPut("a", "s"), opPut("b", "s")},
			current: []storage.Op{opPut("a", "m")},
			want:    []string{"a=m", "b=s"},
		},
		{
			name:    "pending delete hides stored key",
			stored:  []storage.Op{opPut("a", "s"), opPut("b", "s")},
			pending: [][]storage.Op{{opDel("a")}},
			want:    []string{"b=s"},
		},
		{
			name:    "current put over pending delete",
			stored:  []storage.Op{opPut("a", "s")},
			pending: [][]storage.Op{{opDel("a")}},
			current: []storage.Op{opPut("a", "m")},
			want:    []string{"a=m"},
		},
		{
			name:    "current delete of a key only pending has",
			pending: [][]storage.Op{{opPut("x", "p")}},
			current: []storage.Op{opDel("x")},
			want:    []string{},
		},
		{
			name:    "newest pending layer wins",
			stored:  []storage.Op{opPut("k", "s")},
			pending: [][]storage.Op{{opPut("k", "p1")}, {opPut("k", "p2")}},
			want:    []string{"k=p2"},
		},
		{
			name:    "pending delete all hides store, later layers add",
			stored:  []storage.Op{opPut("a", "s"), opPut("b", "s"), opPut("c", "s")},
			pending: [][]storage.Op{{opDeleteAll(), opPut("x", "p")}, {opPut("b", "p2")}},
			current: []storage.Op{opPut("a", "m")},
			want:    []string{"a=m", "b=p2", "x=p"},
		},
		{
			name:    "pending delete all hides earlier pending layers",
			pending: [][]storage.Op{{opPut("p", "1")}, {opDeleteAll()}},
			want:    []string{},
		},
		{
			name:    "puts before delete all in the same layer are gone",
			stored:  []storage.Op{opPut("s", "s")},
			pending: [][]storage.Op{{opPut("p", "1"), opDeleteAll(), opPut("q", "2")}},
			want:    []string{"q=2"},
		},
		{
			name:    "current delete all then puts",
			stored:  []storage.Op{opPut("a", "s"), opPut("b", "s")},
			pending: [][]storage.Op{{opPut("c", "p")}},
			current: []storage.Op{opDeleteAll(), opPut("d", "m")},
			want:    []string{"d=m"},
		},
		{
			name:    "prefix applies to every layer",
			stored:  []storage.Op{opPut("ab", "s"), opPut("ac", "s"), opPut("b", "s")},
			pending: [][]storage.Op{{opPut("aa", "p"), opDel("ac"), opPut("ba", "p")}},
			opts:    ListOptions{Prefix: "a"},
			want:    []string{"aa=p", "ab=s"},
		},
		{
			name:    "start inclusive end exclusive on every layer",
			stored:  []storage.Op{opPut("a", "s"), opPut("b", "s"), opPut("c", "s"), opPut("d", "s")},
			current: []storage.Op{opPut("bb", "m"), opDel("c"), opPut("d", "m"), opPut("a0", "m")},
			opts:    ListOptions{Start: "b", End: "d"},
			want:    []string{"b=s", "bb=m"},
		},
		{
			name:    "overlay key outside range is not listed",
			stored:  []storage.Op{opPut("a", "s")},
			current: []storage.Op{opPut("z", "m")},
			opts:    ListOptions{End: "m"},
			want:    []string{"a=s"},
		},
		{
			name:    "reverse",
			stored:  []storage.Op{opPut("a", "s"), opPut("c", "s")},
			current: []storage.Op{opPut("b", "m"), opPut("d", "m")},
			opts:    ListOptions{Reverse: true},
			want:    []string{"d=m", "c=s", "b=m", "a=s"},
		},
		{
			name:    "deleted keys do not count toward the limit",
			stored:  []storage.Op{opPut("a", "s"), opPut("b", "s"), opPut("c", "s"), opPut("d", "s")},
			current: []storage.Op{opDel("a"), opDel("b")},
			opts:    ListOptions{Limit: 1},
			want:    []string{"c=s"},
		},
		{
			name:    "limit with reverse and overlay",
			stored:  []storage.Op{opPut("a", "s"), opPut("c", "s"), opPut("e", "s")},
			current: []storage.Op{opPut("d", "m"), opDel("e")},
			opts:    ListOptions{Reverse: true, Limit: 2},
			want:    []string{"d=m", "c=s"},
		},
		{
			name:    "limit reached by an overlay key before the first stored key",
			stored:  []storage.Op{opPut("b", "s")},
			current: []storage.Op{opPut("a", "m")},
			opts:    ListOptions{Limit: 1},
			want:    []string{"a=m"},
		},
		{
			name:    "limit reached by overlay keys after the last stored key",
			stored:  []storage.Op{opPut("a", "s")},
			current: []storage.Op{opPut("b", "m"), opPut("c", "m"), opPut("d", "m")},
			opts:    ListOptions{Limit: 3},
			want:    []string{"a=s", "b=m", "c=m"},
		},
		{
			name:    "limit above the number of keys",
			stored:  []storage.Op{opPut("a", "s")},
			current: []storage.Op{opPut("b", "m")},
			opts:    ListOptions{Limit: 10},
			want:    []string{"a=s", "b=m"},
		},
		{
			name:    "keys with 0xff bytes, prefix and reverse",
			stored:  []storage.Op{opPut("\xff", "s"), opPut("\xff\xff", "s"), opPut("a", "s")},
			pending: [][]storage.Op{{opPut("\xff\x00", "p"), opPut("\xff\xff\xff", "p")}},
			current: []storage.Op{opDel("\xff\xff")},
			opts:    ListOptions{Prefix: "\xff", Reverse: true},
			want:    []string{"\xff\xff\xff=p", "\xff\x00=p", "\xff=s"},
		},
		{
			name:    "everything at once",
			stored:  []storage.Op{opPut("k1", "s"), opPut("k2", "s"), opPut("k3", "s"), opPut("k4", "s"), opPut("x", "s")},
			pending: [][]storage.Op{{opDel("k2"), opPut("k5", "p")}, {opPut("k2", "p2"), opDel("k4")}},
			current: []storage.Op{opPut("k0", "m"), opDel("k5")},
			opts:    ListOptions{Prefix: "k", Start: "k1", End: "k5", Reverse: true, Limit: 2},
			want:    []string{"k3=s", "k2=p2"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStorageHarness(t, store, 200+i)
			if tt.stored != nil {
				h.commitNow(h.event(func(st *Storage) { applyOps(t, st, tt.stored) }))
			}
			// Pending layers whose commits never complete: pushed only.
			for _, ops := range tt.pending {
				h.st.pushPending(h.event(func(st *Storage) { applyOps(t, st, ops) }))
			}
			h.st.begin()
			defer h.st.discard()
			applyOps(t, h.st, tt.current)

			got := h.list(tt.opts)
			if !slices.Equal(got, tt.want) {
				t.Errorf("List(%s)\n got %q\nwant %q", describeList(tt.opts), got, tt.want)
			}
			model := foldOps(nil, append(append([][]storage.Op{tt.stored}, tt.pending...), tt.current)...)
			if ref := refList(model, tt.opts); !slices.Equal(got, ref) {
				t.Errorf("List(%s) disagrees with the reference model\n got %q\nwant %q", describeList(tt.opts), got, ref)
			}
		})
	}
}

func TestListRejectsNegativeLimit(t *testing.T) {
	h := newStorageHarness(t, openTestPebble(t), 1)
	if _, err := h.st.List(ListOptions{Limit: -1}); err == nil {
		t.Error("List with limit -1 succeeded")
	}
}

// storageModel mirrors one object's storage: what the store holds, the
// pending layers, and the write stack of the current event (one entry per
// open transaction).
type storageModel struct {
	stored  map[string]string
	pending [][]storage.Op
	stack   [][]storage.Op
}

func (m *storageModel) visible() map[string]string {
	return foldOps(m.stored, append(slices.Clone(m.pending), m.stack...)...)
}

func (m *storageModel) record(op storage.Op) {
	m.stack[len(m.stack)-1] = append(m.stack[len(m.stack)-1], op)
}

func TestListAndGetMatchReferenceModelOnRandomHistories(t *testing.T) {
	store := openTestPebble(t)
	rng := rand.New(rand.NewPCG(2024, 11))
	alphabet := []string{"a", "b", "\x00", "\xff"}
	randString := func(minLen, maxLen int) string {
		var sb strings.Builder
		for n := minLen + rng.IntN(maxLen-minLen+1); n > 0; n-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return sb.String()
	}
	var allKeys []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		if n == 0 {
			return
		}
		for _, c := range alphabet {
			allKeys = append(allKeys, prefix+c)
			gen(prefix+c, n-1)
		}
	}
	gen("", 3)
	value := 0

	const histories = 300
	for hist := 0; hist < histories; hist++ {
		h := newStorageHarness(t, store, 1000+hist)
		m := &storageModel{stored: map[string]string{}}
		var trace []string // for the failure message

		check := func(where string) {
			t.Helper()
			vis := m.visible()
			for i := 0; i < 4; i++ {
				o := ListOptions{Prefix: randString(0, 1), Start: randString(0, 2), Reverse: rng.IntN(2) == 0, Limit: rng.IntN(6)}
				if rng.IntN(2) == 0 {
					o.End = randString(1, 3)
				}
				if got, want := h.list(o), refList(vis, o); !slices.Equal(got, want) {
					t.Fatalf("history %d, %s: List(%s)\n got %q\nwant %q\ntrace: %s", hist, where, describeList(o), got, want, strings.Join(trace, " "))
				}
			}
			for i := 0; i < 6; i++ {
				k := allKeys[rng.IntN(len(allKeys))]
				want, wantOK := vis[k]
				if got, ok := h.get(k); got != want || ok != wantOK {
					t.Fatalf("history %d, %s: Get(%q) = %q, %v; want %q, %v\ntrace: %s", hist, where, k, got, ok, want, wantOK, strings.Join(trace, " "))
				}
			}
		}

		var body func(st *Storage, depth int)
		body = func(st *Storage, depth int) {
			for n := rng.IntN(7); n > 0; n-- {
				switch r := rng.IntN(100); {
				case r < 45:
					k := randString(1, 3)
					value++
					v := fmt.Sprint(value)
					if err := st.Put(k, []byte(v)); err != nil {
						t.Fatal(err)
					}
					m.record(opPut(k, v))
					trace = append(trace, fmt.Sprintf("put(%q)", k))
				case r < 70:
					k := randString(1, 3)
					if err := st.Delete(k); err != nil {
						t.Fatal(err)
					}
					m.record(opDel(k))
					trace = append(trace, fmt.Sprintf("del(%q)", k))
				case r < 76:
					if err := st.DeleteAll(); err != nil {
						t.Fatal(err)
					}
					m.record(opDeleteAll())
					trace = append(trace, "deleteAll")
				case r < 88 && depth < 3:
					rollback := rng.IntN(3) == 0
					trace = append(trace, "tx{")
					m.stack = append(m.stack, nil)
					err := st.Transaction(func(tx *Storage) error {
						body(tx, depth+1)
						check("inside transaction")
						if rollback {
							return errRollback
						}
						return nil
					})
					child := m.stack[len(m.stack)-1]
					m.stack = m.stack[:len(m.stack)-1]
					if rollback {
						trace = append(trace, "}rollback")
						if !errors.Is(err, errRollback) {
							t.Fatalf("Transaction = %v, want the rollback error", err)
						}
					} else {
						trace = append(trace, "}commit")
						if err != nil {
							t.Fatal(err)
						}
						m.stack[len(m.stack)-1] = append(m.stack[len(m.stack)-1], child...)
					}
				default:
					check("during event")
				}
			}
		}

		// Some events are committed, then (in order, as the store commits
		// an object's batches in order) some stay pending.
		events := 1 + rng.IntN(6)
		committed := rng.IntN(events + 1)
		for e := 0; e < events; e++ {
			m.stack = [][]storage.Op{nil}
			h.st.begin()
			body(h.st, 0)
			w := h.st.end()
			ops := m.stack[0]
			m.stack = nil
			if w.empty() {
				continue
			}
			if e < committed {
				h.commitNow(w)
				m.stored = foldOps(m.stored, ops)
				trace = append(trace, "|committed|")
			} else {
				h.st.pushPending(w)
				m.pending = append(m.pending, ops)
				trace = append(trace, "|pending|")
			}
		}
		m.stack = [][]storage.Op{nil}
		h.st.begin()
		body(h.st, 0)
		check("final event")
		h.st.discard()
		m.stack = nil
		check("between events")
	}
}

func TestGetAlarmSeesNewestLayer(t *testing.T) {
	store := openTestPebble(t)
	t0, t1, t2 := alarmBase, alarmBase.Add(time.Minute), alarmBase.Add(2*time.Minute)
	set := func(at time.Time) func(st *Storage) error { return func(st *Storage) error { return st.SetAlarm(at) } }
	del := func(st *Storage) error { return st.DeleteAlarm() }
	rolledBack := func(f func(*Storage) error) func(st *Storage) error {
		return func(st *Storage) error {
			err := st.Transaction(func(tx *Storage) error {
				if err := f(tx); err != nil {
					return err
				}
				return errRollback
			})
			if !errors.Is(err, errRollback) {
				return fmt.Errorf("transaction: %v", err)
			}
			return nil
		}
	}
	inTx := func(f func(*Storage) error) func(st *Storage) error {
		return func(st *Storage) error { return st.Transaction(f) }
	}
	tests := []struct {
		name    string
		stored  *time.Time
		pending []func(*Storage) error
		current func(*Storage) error
		want    *time.Time
	}{
		{"none", nil, nil, nil, nil},
		{"stored", &t0, nil, nil, &t0},
		{"pending set over stored", &t0, []func(*Storage) error{set(t1)}, nil, &t1},
		{"pending delete over stored", &t0, []func(*Storage) error{del}, nil, nil},
		{"newest pending wins", nil, []func(*Storage) error{set(t1), set(t2)}, nil, &t2},
		{"newest pending delete wins", nil, []func(*Storage) error{set(t1), del}, nil, nil},
		{"current set over pending delete", &t0, []func(*Storage) error{del}, set(t2), &t2},
		{"current delete over pending set", nil, []func(*Storage) error{set(t1)}, del, nil},
		{"set in committed transaction", &t0, nil, inTx(set(t1)), &t1},
		{"set in rolled back transaction", &t0, []func(*Storage) error{set(t2)}, rolledBack(set(t1)), &t2},
		{"delete in rolled back transaction", &t0, nil, rolledBack(del), &t0},
		{"delete in committed transaction", &t0, nil, inTx(del), nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStorageHarness(t, store, 400+i)
			if tt.stored != nil {
				h.commitNow(h.event(func(st *Storage) {
					if err := st.SetAlarm(*tt.stored); err != nil {
						t.Fatal(err)
					}
				}))
			}
			for _, f := range tt.pending {
				h.st.pushPending(h.event(func(st *Storage) {
					if err := f(st); err != nil {
						t.Fatal(err)
					}
				}))
			}
			h.st.begin()
			defer h.st.discard()
			if tt.current != nil {
				if err := tt.current(h.st); err != nil {
					t.Fatal(err)
				}
			}
			at, ok, err := h.st.GetAlarm()
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if ok {
					t.Errorf("GetAlarm = %v, true; want no alarm", at)
				}
				return
			}
			if !ok || !at.Equal(*tt.want) {
				t.Errorf("GetAlarm = %v, %v; want %v", at, ok, *tt.want)
			}
		})
	}
}

func TestSetAlarmStoresUTC(t *testing.T) {
	h := newStorageHarness(t, openTestPebble(t), 1)
	zone := time.FixedZone("UTC+5", 5*3600)
	h.st.begin()
	defer h.st.discard()
	if err := h.st.SetAlarm(alarmBase.In(zone)); err != nil {
		t.Fatal(err)
	}
	at, ok, err := h.st.GetAlarm()
	if err != nil || !ok || !at.Equal(alarmBase) || at.Location() != time.UTC {
		t.Errorf("GetAlarm = %v (%v), %v, %v; want %v in UTC", at, at.Location(), ok, err, alarmBase)
	}
}

func TestOversizedOrEmptyKeysAndValuesAreRejected(t *testing.T) {
	store := openTestPebble(t)
	bigKey := strings.Repeat("k", storage.MaxKeySize+1)
	maxKey := strings.Repeat("k", storage.MaxKeySize)
	bigValue := make([]byte, storage.MaxValueSize+1)
	maxValue := make([]byte, storage.MaxValueSize)
	tests := []struct {
		name    string
		call    func(st *Storage) error
		wantErr error
	}{
		{"Put max key and value", func(st *Storage) error { return st.Put(maxKey, maxValue) }, nil},
		{"Put key over 2 KiB", func(st *Storage) error { return st.Put(bigKey, []byte("v")) }, storage.ErrKeyTooLarge},
		{"Put value over 128 KiB", func(st *Storage) error { return st.Put("k", bigValue) }, storage.ErrValueTooLarge},
		{"Put empty key", func(st *Storage) error { return st.Put("", []byte("v")) }, storage.ErrEmptyKey},
		{"PutMany with one value over 128 KiB", func(st *Storage) error {
			return st.PutMany(map[string][]byte{"a": []byte("1"), "b": bigValue, "c": []byte("3")})
		}, storage.ErrValueTooLarge},
		{"PutMany with one key over 2 KiB", func(st *Storage) error {
			return st.PutMany(map[string][]byte{"a": []byte("1"), bigKey: []byte("2")})
		}, storage.ErrKeyTooLarge},
		{"Delete key over 2 KiB", func(st *Storage) error { return st.Delete(bigKey) }, storage.ErrKeyTooLarge},
		{"Delete empty key", func(st *Storage) error { return st.Delete("") }, storage.ErrEmptyKey},
		{"DeleteMany with one empty key", func(st *Storage) error { return st.DeleteMany([]string{"a", ""}) }, storage.ErrEmptyKey},
		{"Get key over 2 KiB", func(st *Storage) error { _, _, err := st.Get(bigKey); return err }, storage.ErrKeyTooLarge},
		{"Get empty key", func(st *Storage) error { _, _, err := st.Get(""); return err }, storage.ErrEmptyKey},
		{"PutJSON of a value over 128 KiB", func(st *Storage) error { return PutJSON(st, "k", strings.Repeat("x", storage.MaxValueSize)) }, storage.ErrValueTooLarge},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStorageHarness(t, store, 500+i)
			h.st.begin()
			defer h.st.discard()
			err := tt.call(h.st)
			if (tt.wantErr == nil) != (err == nil) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil {
				return
			}
			// A rejected PutMany writes none of its entries.
			if kvs := h.list(ListOptions{}); len(kvs) != 0 {
				t.Errorf("rejected call left writes: %q", kvs)
			}
		})
	}
}

func TestWritesOutsideAnEventFailWithErrNoEvent(t *testing.T) {
	store := openTestPebble(t)
	writes := []struct {
		name string
		call func(st *Storage) error
	}{
		{"Put", func(st *Storage) error { return st.Put("k", []byte("v")) }},
		{"PutMany", func(st *Storage) error { return st.PutMany(map[string][]byte{"k": []byte("v")}) }},
		{"PutJSON", func(st *Storage) error { return PutJSON(st, "k", 1) }},
		{"Delete", func(st *Storage) error { return st.Delete("k") }},
		{"DeleteMany", func(st *Storage) error { return st.DeleteMany([]string{"k"}) }},
		{"DeleteAll", func(st *Storage) error { return st.DeleteAll() }},
		{"SetAlarm", func(st *Storage) error { return st.SetAlarm(alarmBase) }},
		{"DeleteAlarm", func(st *Storage) error { return st.DeleteAlarm() }},
		{"Transaction", func(st *Storage) error {
			return st.Transaction(func(*Storage) error { t.Error("transaction body ran outside an event"); return nil })
		}},
	}
	phases := []struct {
		name  string
		setup func(st *Storage)
	}{
		{"never begun", func(st *Storage) {}},
		{"after end", func(st *Storage) { st.begin(); st.end() }},
		{"after discard", func(st *Storage) { st.begin(); st.discard() }},
	}
	n := 600
	for _, ph := range phases {
		for _, w := range writes {
			t.Run(ph.name+"/"+w.name, func(t *testing.T) {
				n++
				h := newStorageHarness(t, store, n)
				ph.setup(h.st)
				if err := w.call(h.st); !errors.Is(err, ErrNoEvent) {
					t.Errorf("%s = %v, want ErrNoEvent", w.name, err)
				}
				// Nothing was buffered for a later event to commit.
				if got := h.event(func(*Storage) {}); !got.empty() {
					t.Errorf("a write outside an event reached the next event's batch: %+v", got.ops)
				}
			})
		}
	}
}

func TestReadsOutsideAnEventSeeStoreAndPending(t *testing.T) {
	store := openTestPebble(t)
	h := newStorageHarness(t, store, 1)
	h.commitNow(h.event(func(st *Storage) { applyOps(t, st, []storage.Op{opPut("a", "s"), opPut("b", "s")}) }))
	h.st.pushPending(h.event(func(st *Storage) { applyOps(t, st, []storage.Op{opDel("a"), opPut("c", "p")}) }))
	if got, want := h.list(ListOptions{}), []string{"b=s", "c=p"}; !slices.Equal(got, want) {
		t.Errorf("List outside an event = %q, want %q", got, want)
	}
	if _, ok := h.get("a"); ok {
		t.Error("Get outside an event ignores a pending delete")
	}
}

func TestGetJSONRoundTripsAndReportsBadJSON(t *testing.T) {
	h := newStorageHarness(t, openTestPebble(t), 1)
	h.st.begin()
	defer h.st.discard()
	type doc struct{ N int }
	if err := PutJSON(h.st, "doc", doc{N: 7}); err != nil {
		t.Fatal(err)
	}
	if got, ok, err := GetJSON[doc](h.st, "doc"); err != nil || !ok || got.N != 7 {
		t.Errorf("GetJSON = %+v, %v, %v", got, ok, err)
	}
	if _, ok, err := GetJSON[doc](h.st, "missing"); err != nil || ok {
		t.Errorf("GetJSON of a missing key = %v, %v", ok, err)
	}
	if err := h.st.Put("bad", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := GetJSON[doc](h.st, "bad"); err == nil || ok {
		t.Errorf("GetJSON of invalid JSON = %v, %v; want an error", ok, err)
	}
}

// Object code may reuse a buffer after Put, or modify a slice Get returned,
// as it may with values read from the store (PebbleStore.Get returns a
// copy). A buffered write must not change because of it: it is committed
// later, on the store's goroutine.
func TestBufferedValuesAreNotAliasedWithCallerSlices(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(t *testing.T, st *Storage)
	}{
		{"caller reuses the buffer it passed to Put", func(t *testing.T, st *Storage) {
			buf := []byte("one")
			if err := st.Put("k", buf); err != nil {
				t.Fatal(err)
			}
			copy(buf, "two")
		}},
		{"caller modifies the slice Get returned", func(t *testing.T, st *Storage) {
			if err := st.Put("k", []byte("one")); err != nil {
				t.Fatal(err)
			}
			v, _, err := st.Get("k")
			if err != nil {
				t.Fatal(err)
			}
			copy(v, "two")
		}},
		{"caller modifies a value List returned", func(t *testing.T, st *Storage) {
			if err := st.Put("k", []byte("one")); err != nil {
				t.Fatal(err)
			}
			kvs, err := st.List(ListOptions{})
			if err != nil || len(kvs) != 1 {
				t.Fatalf("List = %q, %v", kvs, err)
			}
			copy(kvs[0].Value, "two")
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newStorageHarness(t, openTestPebble(t), i+1)
			h.st.begin()
			tt.mutate(t, h.st)
			if got, _ := h.get("k"); got != "one" {
				t.Errorf("buffered value is now %q, want %q", got, "one")
			}
			h.commitNow(h.st.end())
			if v, _, err := h.store.Get(h.obj, "k"); err != nil || string(v) != "one" {
				t.Errorf("committed value = %q, %v; want %q", v, err, "one")
			}
		})
	}
}
