package client

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"
)

// node is one server address in the two forms the client needs.
type node struct {
	addr    string // as given, for logs and events
	wsBase  string // ws://host:port
	httpURL string // http://host:port
}

// parseNodes accepts "host:port" or a URL with scheme http, https, ws or
// wss (https and wss mean TLS).
func parseNodes(addrs []string) ([]node, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("no server addresses")
	}
	out := make([]node, 0, len(addrs))
	for _, a := range addrs {
		host, tls := a, false
		if strings.Contains(a, "://") {
			u, err := url.Parse(a)
			if err != nil {
				return nil, fmt.Errorf("server address %q: %w", a, err)
			}
			switch u.Scheme {
			case "http", "ws":
			case "https", "wss":
				tls = true
			default:
				return nil, fmt.Errorf("server address %q: scheme must be http, https, ws or wss", a)
			}
			host = u.Host
		}
		if host == "" {
			return nil, fmt.Errorf("server address %q: no host", a)
		}
		n := node{addr: a, wsBase: "ws://" + host, httpURL: "http://" + host}
		if tls {
			n.wsBase, n.httpURL = "wss://"+host, "https://"+host
		}
		out = append(out, n)
	}
	return out, nil
}

// rotation hands out addresses round robin, starting from a random one
// unless the order was asked for, so that clients spread over the nodes
// and a client whose node died tries another first.
type rotation struct {
	nodes []node
	next  int
}

func newRotation(nodes []node, inOrder bool) *rotation {
	r := &rotation{nodes: nodes}
	if !inOrder {
		rand.Shuffle(len(r.nodes), func(i, j int) { r.nodes[i], r.nodes[j] = r.nodes[j], r.nodes[i] })
	}
	return r
}

// take returns the next address to try.
func (r *rotation) take() node {
	n := r.nodes[r.next%len(r.nodes)]
	r.next = (r.next + 1) % len(r.nodes)
	return n
}

// backoff returns the delay before reconnection attempt n (0-based): an
// exponential step between lo and hi, jittered over its upper half so that
// clients dropped together do not come back together.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for range n {
		if d >= hi/2 {
			d = hi
			break
		}
		d *= 2
	}
	d = min(d, hi)
	return d/2 + rand.N(d/2+1)
}
