// Package gateway maps HTTP paths to objects: it is the first step of every
// request, deciding which object (class and name) a URL addresses and what
// path the object sees. It knows nothing about what objects do.
package gateway

import (
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// Route sends every path under Prefix to one object. With Name set, the
// object is fixed (Class, Name); with Name empty, the first path segment
// after Prefix is the object's name (a sharded route such as
// /api/lobbies/{name}/).
type Route struct {
	Prefix string
	Class  string
	Name   string
}

// Gateway is an http.Handler over a runtime.
type Gateway struct {
	rt     *runtime.Runtime
	routes []Route
}

// New returns a gateway with routes plus the generic route
// /objects/{class}/{name}/… that reaches any registered class. Requests
// go where the runtime's Director sends them (on a single node: here).
func New(rt *runtime.Runtime, routes []Route) *Gateway {
	return &Gateway{rt: rt, routes: routes}
}

// Target is the object a request addresses and the path it sees.
type Target struct {
	Class string
	Name  string
	Path  string
}

// MaxNameBytes bounds an object's name on the public routes: a name is
// stored with the object and shown to operators, and a client must not
// mint unbounded ones.
const MaxNameBytes = 128

// ValidName reports whether name may name an object on the public routes:
// 1..MaxNameBytes bytes of UTF-8 without control characters.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameBytes || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

// Resolve maps a URL path to its target object.
func (g *Gateway) Resolve(path string) (Target, bool) {
	for _, r := range g.routes {
		rest, ok := strings.CutPrefix(path, r.Prefix)
		if !ok {
			continue
		}
		if r.Name != "" {
			if rest != "" && !strings.HasPrefix(rest, "/") {
				continue
			}
			return Target{Class: r.Class, Name: r.Name, Path: "/" + strings.TrimPrefix(rest, "/")}, true
		}
		rest = strings.TrimPrefix(rest, "/")
		name, sub, _ := strings.Cut(rest, "/")
		if name == "" {
			return Target{}, false
		}
		return Target{Class: r.Class, Name: name, Path: "/" + sub}, true
	}
	if rest, ok := strings.CutPrefix(path, "/objects/"); ok {
		class, rest, _ := strings.Cut(rest, "/")
		name, sub, _ := strings.Cut(rest, "/")
		if class == "" || name == "" {
			return Target{}, false
		}
		return Target{Class: class, Name: name, Path: "/" + sub}, true
	}
	return Target{}, false
}

// Handles reports whether path belongs to an object route.
func (g *Gateway) Handles(path string) bool {
	_, ok := g.Resolve(path)
	return ok
}

// ServeHTTP routes r to its object.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t, ok := g.Resolve(r.URL.Path)
	if !ok {
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "no object route for %s", r.URL.Path))
		return
	}
	if !ValidName(t.Name) {
		protocol.WriteHTTPError(w, http.StatusBadRequest, protocol.Errorf(protocol.CodeInvalidField,
			"an object name is 1..%d bytes of printable UTF-8", MaxNameBytes))
		return
	}
	ns, err := g.rt.Namespace(t.Class)
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusNotFound, protocol.Errorf(protocol.CodeNotFound, "unknown object class %q", t.Class))
		return
	}
	stub := ns.GetByName(t.Name)
	local := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.URL.Path = t.Path
		r2.URL.RawPath = ""
		stub.ServeHTTP(w, r2)
	})
	g.rt.Direct(w, r, stub.ID(), local)
}
