package runtime

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/holocron-run/holocron/protocol"

	"github.com/holocron-run/holocron/storage"
)

// Quotas: a class may be given a limit on the number of its objects that
// exist (Registry.Limit), across the whole cluster. An object exists once
// its first write is durable; the runtime asks the class's quota object
// for a place before that first write commits, and an object refused a
// place commits nothing: the event that would have created it is answered
// 429 limit_exceeded (an error frame on its socket), whatever its handler
// answered. So a client that mints object names on a public route (a
// lobby, a leaderboard per name) cannot fill the cluster's storage, while
// reads of objects that do not exist cost nothing. Places are freed when
// an operator deletes an object (Namespace.Forget).
//
// The quota object of class C is the object QuotaClass/C: one per limited
// class, placed on the ring like any object, so a count survives node
// loss. It counts each object once (by ID), and answers only calls made by
// the runtime for an object of C: a client that reaches it (the generic
// /objects/ route) is refused.

// QuotaClass is the class of the runtime's quota objects.
const QuotaClass = "holocron.Quota"

// Limit bounds the objects of class that may exist at once, cluster-wide
// (see the notes on quotas); register the class first. Every node must set
// the same limits.
func (r *Registry) Limit(class string, max int) {
	if _, ok := r.classes[class]; !ok || max < 1 {
		panic("runtime: Limit needs a registered class and a positive limit")
	}
	if r.limits == nil {
		r.limits = map[string]int{}
	}
	r.limits[class] = max
}

// limit returns class's limit (0: none).
func (r *Registry) limit(class string) int { return r.limits[class] }

// quotaTimeout bounds the call that asks for an object's place.
const quotaTimeout = 10 * time.Second

// errOverQuota refuses the first write of an object whose class is full.
var errOverQuota = errors.New("limit_exceeded")

// placed makes sure the object has a place in its class's quota before
// its first write commits: at once when the class has no limit or the
// object already exists in storage. It answers errOverQuota when the class
// is full, another error when the quota could not be asked.
func (e *entry) placed() error {
	if e.quotaPlaced || e.rt.opts.Registry.limit(e.class) == 0 {
		return nil
	}
	if _, ok, err := e.rt.opts.Store.Meta(storage.ObjectID(e.id)); err != nil {
		return err
	} else if ok {
		e.quotaPlaced = true
		return nil
	}
	if err := e.askQuota("/claim"); err != nil {
		return err
	}
	e.quotaPlaced = true
	return nil
}

// askQuota calls the quota object of e's class at path for e, outside any
// output gate (nothing of e's is committed first: the answer decides
// whether it is). While the quota's partition has no owner to answer (it
// is electing a leader, or moving) the call is made again, for up to
// quotaTimeout: a claim and a release are idempotent.
func (e *entry) askQuota(path string) error {
	ctor, _ := e.rt.opts.Registry.Lookup(QuotaClass)
	ns := &Namespace{rt: e.rt, class: QuotaClass, ctor: ctor, caller: e}
	stub := ns.GetByName(e.class)
	ctx, cancel := context.WithTimeout(e.rt.ctx, quotaTimeout)
	defer cancel()
	for {
		req, err := http.NewRequest(http.MethodPost, path, nil)
		if err != nil {
			return err
		}
		out, err := stub.request(ctx, req)
		if err != nil {
			return err
		}
		resp, err := stub.send(ctx, out)
		var ce *CallError
		switch {
		case errors.As(err, &ce) && ce.Code == protocol.CodeLimitExceeded:
			return errOverQuota
		case errors.Is(err, ErrNotServed) && ctx.Err() == nil:
			select {
			case <-time.After(100 * time.Millisecond):
				continue
			case <-ctx.Done():
				return fmt.Errorf("ask the quota of %s: %w", e.class, err)
			}
		case err != nil:
			return fmt.Errorf("ask the quota of %s: %w", e.class, err)
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return nil
		case http.StatusTooManyRequests:
			return errOverQuota
		default:
			return fmt.Errorf("the quota of %s answered %d", e.class, resp.StatusCode)
		}
	}
}

// quota is a quota object: the class it counts is its name.
//
//	count        how many objects have a place
//	id/<ID>      "" — the object has a place
type quota struct {
	state *State
	limit func() int
}

func newQuota(reg *Registry) Constructor {
	return func(st *State) (Object, error) {
		return &quota{state: st, limit: func() int { return reg.limit(st.Name()) }}, nil
	}
}

func (q *quota) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	caller, ok := CallerFrom(r.Context())
	if !ok || caller.Class != q.state.Name() || r.Method != http.MethodPost {
		WriteError(w, http.StatusForbidden, protocol.CodeForbidden, "a quota answers the runtime, for objects of its class")
		return
	}
	st := q.state.Storage()
	key := "id/" + caller.ID.String()
	_, has, err := st.Get(key)
	if err != nil {
		panic(err)
	}
	n, _, err := GetJSON[int](st, "count")
	if err != nil {
		panic(err)
	}
	switch r.URL.Path {
	case "/claim":
		if has {
			break
		}
		if n >= q.limit() {
			WriteError(w, http.StatusTooManyRequests, protocol.CodeLimitExceeded, "the class "+caller.Class+" has its "+strconv.Itoa(q.limit())+" objects")
			return
		}
		if err := st.Put(key, nil); err != nil {
			panic(err)
		}
		if err := PutJSON(st, "count", n+1); err != nil {
			panic(err)
		}
	case "/release":
		if !has {
			break
		}
		if err := st.Delete(key); err != nil {
			panic(err)
		}
		if err := PutJSON(st, "count", n-1); err != nil {
			panic(err)
		}
	default:
		WriteError(w, http.StatusNotFound, protocol.CodeNotFound, "no such quota request")
		return
	}
	w.WriteHeader(http.StatusOK)
}
