package node

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
	"github.com/holocron-run/holocron/storage"
)

// objectSummary is one object in GET /admin/objects.
type objectSummary struct {
	ID    string     `json:"id"`
	Class string     `json:"class"`
	Name  string     `json:"name,omitempty"`
	Node  string     `json:"node"`
	Keys  int        `json:"keys"`
	Bytes int64      `json:"bytes"`
	Alarm *time.Time `json:"alarm,omitempty"`
	// LastActivity is when the object last committed a write (its owner's
	// clock); absent for objects last written before it was recorded.
	LastActivity *time.Time `json:"lastActivity,omitempty"`
}

type objectPage struct {
	Objects []objectSummary `json:"objects"`
	// Next, when set, is the after= of the next page.
	Next string `json:"next,omitempty"`
}

// objectsAdmin serves the object admin API: list, inspect, delete, move.
type objectsAdmin struct {
	*adminAPI
	store *storage.PebbleStore
}

func pageParams(q url.Values) (class string, after *storage.ObjectID, limit int, err error) {
	limit = 100
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return "", nil, 0, fmt.Errorf("limit must be 1..1000")
		}
	}
	if v := q.Get("after"); v != "" {
		id, perr := runtime.ParseID(v)
		if perr != nil {
			return "", nil, 0, fmt.Errorf("after: %v", perr)
		}
		oid := storage.ObjectID(id)
		after = &oid
	}
	return q.Get("class"), after, limit, nil
}

// serveLocal answers GET /admin/objects/local: the objects this node owns
// (on a cluster node: of the partitions it serves; with replicas=1 every
// object it holds a replica of).
func (a *objectsAdmin) serveLocal(w http.ResponseWriter, r *http.Request) {
	class, after, limit, err := pageParams(r.URL.Query())
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "%v", err))
		return
	}
	replicas := r.URL.Query().Get("replicas") == "1"
	list, err := a.store.ListObjects(after, limit+1, func(id storage.ObjectID, m storage.ObjectMeta) bool {
		return (class == "" || m.Class == class) && (a.node == nil || replicas || a.node.Serves(runtime.ID(id)))
	})
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "%v", err))
		return
	}
	page := objectPage{Objects: []objectSummary{}}
	for i, o := range list {
		if i == limit {
			page.Next = page.Objects[limit-1].ID
			break
		}
		page.Objects = append(page.Objects, objectSummary{ID: hex.EncodeToString(o.ID[:]), Class: o.Meta.Class, Name: o.Meta.Name,
			Node: a.nodeName, Keys: o.Keys, Bytes: o.Bytes, Alarm: o.Alarm, LastActivity: o.LastWrite})
	}
	protocol.WriteJSON(w, http.StatusOK, page)
}

// serveList answers GET /admin/objects: every node's objects merged in ID
// order, one page at a time.
func (a *objectsAdmin) serveList(w http.ResponseWriter, r *http.Request) {
	_, _, limit, err := pageParams(r.URL.Query())
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField, "%v", err))
		return
	}
	if a.node == nil {
		a.serveLocal(w, r)
		return
	}
	st, err := a.node.Status(r.Context())
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "%v", err))
		return
	}
	var (
		mu    sync.Mutex
		all   []objectSummary
		more  bool
		fails []string
		wg    sync.WaitGroup
	)
	for _, m := range st.Members {
		if m.State != cluster.StateAlive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var page objectPage
			err := a.getPeerJSON(r.Context(), m.PeerAddr, "/admin/objects/local?"+r.URL.RawQuery, &page)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails = append(fails, m.Name+": "+err.Error())
				return
			}
			all = append(all, page.Objects...)
			more = more || page.Next != ""
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "nodes did not answer: %s", strings.Join(fails, "; ")))
		return
	}
	slices.SortFunc(all, func(x, y objectSummary) int { return strings.Compare(x.ID, y.ID) })
	// With replicas=1 every replica lists the object: once is enough.
	all = slices.CompactFunc(all, func(x, y objectSummary) bool { return x.ID == y.ID })
	page := objectPage{Objects: all}
	if len(all) > limit {
		page.Objects, more = all[:limit], true
	}
	if more && len(page.Objects) > 0 {
		page.Next = page.Objects[len(page.Objects)-1].ID
	}
	if page.Objects == nil {
		page.Objects = []objectSummary{}
	}
	protocol.WriteJSON(w, http.StatusOK, page)
}

// routes registers the admin routes that answer for this node's own
// objects, or forward to the object's owner: on the client port, and on
// the peer listener, where the fan-out (serveList, serveOverview) and
// onOwner reach them from other nodes.
func (a *objectsAdmin) routes(mux *http.ServeMux) {
	mux.Handle("GET /admin/node", a.protect(http.HandlerFunc(a.serveNode)))
	mux.Handle("GET /admin/objects/local", a.protect(http.HandlerFunc(a.serveLocal)))
	mux.Handle("GET /admin/objects/{class}/{name}", a.protect(a.onOwner(a.objectIDByName, a.serveObject)))
	mux.Handle("DELETE /admin/objects/{class}/{name}", a.protect(a.onOwner(a.objectIDByName, a.serveDelete)))
	mux.Handle("POST /admin/objects/{class}/{name}/move", a.protect(a.onOwner(a.objectIDByName, a.serveMove)))
	mux.Handle("GET /admin/export/{id}", a.protect(a.onOwner(a.objectByID, a.serveExport)))
	mux.Handle("POST /admin/import/{id}", a.protect(a.onOwner(a.objectByID, a.serveImport)))
}

// object resolves {class}/{name}; ok false means it was answered (an
// unknown class).
func (a *objectsAdmin) object(w http.ResponseWriter, r *http.Request) (*runtime.Namespace, runtime.ID, bool) {
	ns, err := a.rt.Namespace(r.PathValue("class"))
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "unknown object class %q", r.PathValue("class")))
		return nil, runtime.ID{}, false
	}
	return ns, ns.IDFromName(r.PathValue("name")), true
}

// objectIDByName is object for onOwner.
func (a *objectsAdmin) objectIDByName(w http.ResponseWriter, r *http.Request) (runtime.ID, bool) {
	_, id, ok := a.object(w, r)
	return id, ok
}

// onOwner runs h on the owner of the object that resolve finds in the
// request, forwarding the request there in a cluster; h resolves it again.
func (a *objectsAdmin) onOwner(resolve func(http.ResponseWriter, *http.Request) (runtime.ID, bool), h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := resolve(w, r)
		if ok {
			a.rt.Direct(w, r, id, h)
		}
	})
}

// storedKey is one key of an object as the admin API shows it: a value that
// is JSON is shown as JSON, anything else as a string.
type storedKey struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value,omitempty"`
	Text  string          `json:"text,omitempty"`
	Bytes int             `json:"bytes"`
}

// serveObject answers GET /admin/objects/{class}/{name}?prefix=&limit=.
func (a *objectsAdmin) serveObject(w http.ResponseWriter, r *http.Request) {
	ns, id, ok := a.object(w, r)
	if !ok {
		return
	}
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 && n <= 10000 {
			limit = n
		}
	}
	oid := storage.ObjectID(id)
	if !a.exists(w, oid, r.PathValue("class"), r.PathValue("name")) {
		return
	}
	keys := []storedKey{}
	more := false
	err := a.store.Scan(oid, storage.ScanOptions{Prefix: r.URL.Query().Get("prefix"), Start: r.URL.Query().Get("start")}, func(k string, v []byte) bool {
		if len(keys) == limit {
			more = true
			return false
		}
		sk := storedKey{Key: k, Bytes: len(v)}
		if json.Valid(v) {
			sk.Value = json.RawMessage(v)
		} else {
			sk.Text = string(v)
		}
		keys = append(keys, sk)
		return true
	})
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "%v", err))
		return
	}
	out := map[string]any{"id": id.String(), "class": ns.Class(), "name": r.PathValue("name"), "node": a.nodeName, "keys": keys, "more": more}
	if at, ok, err := a.store.Alarm(oid); err == nil && ok {
		out["alarm"] = at
	}
	if at, ok, err := a.store.LastWrite(oid); err == nil && ok {
		out["lastActivity"] = at
	}
	protocol.WriteJSON(w, http.StatusOK, out)
}

// exists answers 404 for an object with no stored state (never written,
// or deleted), so that a mistyped name is not shown as an empty object.
func (a *objectsAdmin) exists(w http.ResponseWriter, id storage.ObjectID, class, name string) bool {
	_, ok, err := a.store.Meta(id)
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusInternalServerError, protocol.Errorf(protocol.CodeInternal, "%v", err))
		return false
	}
	if !ok {
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "%s %q has no stored state", class, name))
		return false
	}
	return true
}

// serveDelete answers DELETE /admin/objects/{class}/{name}: the object's
// storage and alarm are deleted on every replica; its sockets close.
func (a *objectsAdmin) serveDelete(w http.ResponseWriter, r *http.Request) {
	ns, id, ok := a.object(w, r)
	if !ok || !a.exists(w, storage.ObjectID(id), r.PathValue("class"), r.PathValue("name")) {
		return
	}
	if err := ns.Forget(r.Context(), id); err != nil {
		protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "%v", err))
		return
	}
	protocol.WriteJSON(w, http.StatusOK, map[string]any{"id": id.String(), "deleted": true})
}

// serveMove answers POST /admin/objects/{class}/{name}/move: the object's
// instance is evicted (sockets close with 1012 "moved") and, in a cluster,
// its partition's leadership moves to another replica, so the object is
// re-placed there; its data goes with the partition's replicas.
func (a *objectsAdmin) serveMove(w http.ResponseWriter, r *http.Request) {
	_, id, ok := a.object(w, r)
	if !ok {
		return
	}
	moved := false
	if a.node != nil {
		var err error
		if moved, err = a.node.MoveObject(r.Context(), id); err != nil {
			protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "%v", err))
			return
		}
	}
	a.rt.Evict(func(x runtime.ID) bool { return x == id }, protocol.CloseMoved, protocol.ReasonMoved)
	protocol.WriteJSON(w, http.StatusOK, map[string]any{"id": id.String(), "from": a.nodeName, "leadershipMoved": moved})
}
