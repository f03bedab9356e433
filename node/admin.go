package node

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/protocol"
	"github.com/holocron-run/holocron/runtime"
)

// adminAPI serves the operator endpoints under /admin/.
type adminAPI struct {
	token    string
	nodeName string
	rt       *runtime.Runtime
	node     *cluster.Node // nil on a single node
	// peer is the peer link the fan-out to other nodes goes over (nil on a
	// single node).
	peer *cluster.PeerLink
	// origins refuses browsers' cross-origin requests that change state
	// (CSRF): the standard library's Sec-Fetch-Site and Origin checks.
	origins *http.CrossOriginProtection
}

// peerTimeout bounds one admin request to another node.
const peerTimeout = 2 * time.Second

// getPeerJSON GETs path from the node whose peer listener is at addr and
// decodes its JSON answer into out.
func (a *adminAPI) getPeerJSON(ctx context.Context, addr, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, peerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.peer.URL(addr, path), nil)
	if err != nil {
		return err
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.peer.RoundTripper().RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &httpStatusError{resp.Status}
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// nodeReport is one node's view for the dashboard (GET /admin/node).
type nodeReport struct {
	Node    string               `json:"node"`
	HTTP    string               `json:"http,omitempty"`
	Mode    string               `json:"mode"`
	Stats   runtime.Stats        `json:"stats"`
	Objects []runtime.ObjectInfo `json:"objects"`
	Time    time.Time            `json:"time"`
	Error   string               `json:"error,omitempty"`
}

// protect guards an operator route (the admin API, pprof):
//   - with -admin-token, a request needs it, as "Authorization: Bearer …" or
//     ?admin_token= (for links);
//   - without one (development), only this machine may call, to a
//     loopback name: the remote address and the Host header must both be
//     loopback, so neither the network nor a web page whose DNS name was
//     rebound to 127.0.0.1 reaches an open admin API. Requests over the
//     peer link come from a node of the cluster and pass;
//   - a browser's cross-origin request that changes something (a form
//     posted from another site, a fetch with a simple content type) is
//     refused, as is a body of a form's content types: the dashboard and
//     the CLI send none of them.
func (a *adminAPI) protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.token == "" && !cluster.FromPeer(r) && !localRequest(r) {
			protocol.WriteHTTPError(w, http.StatusForbidden, protocol.Errorf(protocol.CodeForbidden,
				"this node has no -admin-token, so its admin API answers only requests from this machine to localhost; set -admin-token or -admin-token-file to reach it from elsewhere"))
			return
		}
		if a.token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				got = r.URL.Query().Get("admin_token")
			}
			if subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="holocron-admin"`)
				protocol.WriteHTTPError(w, http.StatusUnauthorized, protocol.Errorf(protocol.CodeUnauthorized, "admin token required"))
				return
			}
		}
		if err := a.origins.Check(r); err != nil {
			protocol.WriteHTTPError(w, http.StatusForbidden, protocol.Errorf(protocol.CodeForbidden, "cross-origin admin request refused: %v", err))
			return
		}
		if formContentType(r) {
			protocol.WriteHTTPError(w, http.StatusUnsupportedMediaType, protocol.Errorf(protocol.CodeForbidden,
				"the admin API takes no form bodies (Content-Type %q): send application/json or none", r.Header.Get("Content-Type")))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// localRequest reports whether r came from this machine to a loopback
// name: its remote address is loopback, and so is its Host.
func localRequest(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
		return false
	}
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	name = strings.ToLower(strings.Trim(name, "[]"))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(name)
	return err == nil && ip.Unmap().IsLoopback()
}

// formContentType reports whether r, a request that may change something,
// carries a body type an HTML form can send cross-site without asking
// (the CORS "simple" types).
func formContentType(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return false
	}
	media, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return true
	}
	switch media {
	case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
		return true
	}
	return false
}

func (a *adminAPI) report() nodeReport {
	mode := "single-node"
	if a.node != nil {
		mode = "cluster"
	}
	return nodeReport{Node: a.nodeName, Mode: mode, Stats: a.rt.Stats(), Objects: a.rt.Objects(), Time: time.Now().UTC()}
}

// serveNode answers GET /admin/node: this node's objects and totals.
func (a *adminAPI) serveNode(w http.ResponseWriter, r *http.Request) {
	protocol.WriteJSON(w, http.StatusOK, a.report())
}

// overview is GET /admin/overview: every member's report, gathered by the
// node asked, with the cluster's membership, so a dashboard needs one
// endpoint on any node.
type overview struct {
	Node string `json:"node"`
	Mode string `json:"mode"`
	// Insecure says the cluster runs with -insecure: the dashboard shows
	// it on every page, as the node's log did at start.
	Insecure bool             `json:"insecure,omitempty"`
	Members  []cluster.Member `json:"members,omitempty"`
	Nodes    []nodeReport     `json:"nodes"`
}

func (a *adminAPI) serveOverview(w http.ResponseWriter, r *http.Request) {
	self := a.report()
	ov := overview{Node: a.nodeName, Mode: self.Mode, Insecure: a.peer != nil && a.peer.Insecure()}
	if a.node == nil {
		ov.Nodes = []nodeReport{self}
		protocol.WriteJSON(w, http.StatusOK, ov)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	st, err := a.node.Status(ctx)
	if err != nil {
		protocol.WriteHTTPError(w, http.StatusServiceUnavailable, protocol.Errorf(protocol.CodeUnavailable, "%v", err))
		return
	}
	ov.Members = st.Members
	reports := make([]nodeReport, len(st.Members))
	var wg sync.WaitGroup
	for i, m := range st.Members {
		if m.Name == a.nodeName {
			self.HTTP = m.HTTPAddr
			reports[i] = self
			continue
		}
		reports[i] = nodeReport{Node: m.Name, HTTP: m.HTTPAddr, Mode: "cluster"}
		if m.State != cluster.StateAlive {
			reports[i].Error = "member is " + string(m.State)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rep nodeReport
			err := a.getPeerJSON(ctx, m.PeerAddr, "/admin/node", &rep)
			if err != nil {
				reports[i].Error = err.Error()
				return
			}
			rep.HTTP = m.HTTPAddr
			reports[i] = rep
		}()
	}
	wg.Wait()
	ov.Nodes = reports
	protocol.WriteJSON(w, http.StatusOK, ov)
}

type httpStatusError struct{ status string }

func (e *httpStatusError) Error() string { return "node answered " + e.status }
