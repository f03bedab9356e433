package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/objects/protocol"
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

// protect refuses requests without the admin token when one is set. The
// token may come as "Authorization: Bearer …" or ?admin_token= (for links).
func (a *adminAPI) protect(h http.Handler) http.Handler {
	if a.token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			got = r.URL.Query().Get("admin_token")
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="holocron-admin"`)
			protocol.WriteHTTPError(w, http.StatusUnauthorized, protocol.Errorf("unauthorized", "admin token required"))
			return
		}
		h.ServeHTTP(w, r)
	})
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
	Node    string           `json:"node"`
	Mode    string           `json:"mode"`
	Members []cluster.Member `json:"members,omitempty"`
	Nodes   []nodeReport     `json:"nodes"`
}

func (a *adminAPI) serveOverview(w http.ResponseWriter, r *http.Request) {
	self := a.report()
	ov := overview{Node: a.nodeName, Mode: self.Mode}
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
