package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// PingPath is the peer listener's route that proves a member: a request
// to it over the peer link succeeds only if the node answering holds the
// certificate of that member's name (the link's TLS checks it).
const PingPath = "/internal/ping"

// PingHandler answers PingPath: 204, nothing else to say.
func PingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// probeInterval spaces the probes of a member not proven yet.
const probeInterval = time.Second

// links records which members this node has proven over the peer link.
// Gossip says who is in the cluster, but with the gossip key alone a host
// could claim any name: before the rebalancer gives a member a replica
// (and so a partition's data and Raft votes), its peer listener must have
// answered with the certificate of the name it gossips. A proof holds for
// the rest of this process's life: a proven member that later fails its
// link is a reachability problem, which the dead-member timeout handles,
// not an identity one.
type links struct {
	client *http.Client
	link   *PeerLink

	mu     sync.Mutex
	proven map[string]bool
	// failed is the last probe error of a member not proven yet.
	failed  map[string]string
	probing map[string]time.Time // name → when its probe started
}

// newLinks starts with self proven.
func newLinks(self string, link *PeerLink) *links {
	return &links{link: link, client: link.Client(2 * time.Second),
		proven: map[string]bool{self: true}, failed: map[string]string{}, probing: map[string]time.Time{}}
}

// annotate sets each member's Proven and LinkError from what this node
// knows.
func (l *links) annotate(members []Member) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range members {
		members[i].Proven = l.proven[members[i].Name]
		if !members[i].Proven {
			members[i].LinkError = l.failed[members[i].Name]
		}
	}
}

// isProven reports whether the member called name is proven.
func (l *links) isProven(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.proven[name]
}

// probe starts a probe of every live member not proven yet (one at a
// time per member, at most one per probeInterval).
func (l *links) probe(ctx context.Context, members []Member) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	for _, m := range members {
		if l.proven[m.Name] || m.PeerAddr == "" || (m.State != StateAlive && m.State != StateSuspect) {
			continue
		}
		if at, ok := l.probing[m.Name]; ok && now.Sub(at) < probeInterval {
			continue
		}
		l.probing[m.Name] = now
		go l.probeOne(ctx, m.Name, m.PeerAddr)
	}
}

func (l *links) probeOne(ctx context.Context, name, addr string) {
	err := l.ping(ctx, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed[name] = err.Error()
		return
	}
	l.proven[name] = true
	delete(l.failed, name)
	delete(l.probing, name)
}

func (l *links) ping(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.link.URL(addr, PingPath), nil)
	if err != nil {
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("peer listener at %s answered %s to %s", addr, resp.Status, PingPath)
	}
	return nil
}
