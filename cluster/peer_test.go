package cluster

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/holocron-run/holocron/internal/certs"
)

// testPKI makes a CA and returns a function that makes a certs directory
// for a node.
func testPKI(t *testing.T) func(name string) *certs.Peer {
	t.Helper()
	root := t.TempDir()
	ca := certs.Options{CertsDir: filepath.Join(root, "ca"), CAKey: filepath.Join(root, "ca.key")}
	if err := certs.CreateCA(ca); err != nil {
		t.Fatal(err)
	}
	return func(name string) *certs.Peer {
		t.Helper()
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(ca.CertsDir, certs.CAFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, certs.CAFile), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		o := ca
		o.CertsDir = dir
		if err := certs.CreateNode(o, name, []string{"127.0.0.1"}); err != nil {
			t.Fatal(err)
		}
		p, err := certs.LoadPeer(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (c *countingListener) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err == nil {
		c.n.Add(1)
	}
	return conn, err
}

// servePeer runs a peer server for link on loopback whose handler answers
// the proven peer name.
func servePeer(t *testing.T, link *PeerLink) (addr string, ln *countingListener) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = &countingListener{Listener: raw}
	srv := link.Server(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := PeerName(r)
		fmt.Fprintf(w, "%s %v %s", name, ok, r.Proto)
	}), testLogger())
	go link.Serve(srv, ln)
	t.Cleanup(func() { srv.Close() })
	return raw.Addr().String(), ln
}

func TestPeerLinkMutualTLS(t *testing.T) {
	node := testPKI(t)
	n1 := NewPeerLink(node("n1"))
	addr, ln := servePeer(t, n1)

	n2 := NewPeerLink(node("n2"))
	n2.setNameAt(func(a string) (string, bool) { return "n1", a == addr })
	defer n2.Close()
	get := func(l *PeerLink) (string, error) {
		resp, err := l.Client(5 * time.Second).Get(l.URL(addr, "/x"))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}

	// After the first request, many concurrent ones share its HTTP/2
	// connection (racing first dials may open more, of which the transport
	// keeps one), and each request knows the peer by its certificate.
	if got, err := get(n2); err != nil || got != "n2 true HTTP/2.0" {
		t.Fatalf("first request: %q, %v", got, err)
	}
	ln.n.Store(0)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := get(n2)
			if err == nil && got != "n2 true HTTP/2.0" {
				err = fmt.Errorf("answer %q, want %q", got, "n2 true HTTP/2.0")
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := ln.n.Load(); n != 0 {
		t.Errorf("50 requests from a connected peer opened %d more connections, want none", n)
	}

	// A node that takes the address for another node's refuses the
	// answer: the certificate says n1.
	wrong := NewPeerLink(node("n3"))
	wrong.setNameAt(func(string) (string, bool) { return "n4", true })
	if _, err := get(wrong); err == nil {
		t.Error("a dial meaning n4 accepted n1's certificate")
	}
	// Another cluster's node, and a client without a certificate, are
	// refused by the listener.
	stranger := NewPeerLink(testPKI(t)("n2"))
	stranger.setNameAt(func(string) (string, bool) { return "n1", true })
	if got, err := get(stranger); err == nil {
		t.Errorf("a node of another CA was answered: %q", got)
	}
	plain := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := plain.Get("https://" + addr + "/x"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		t.Errorf("a client without a certificate was answered: %s %q", resp.Status, b)
	}
}

func TestPeerLinkInsecureIsH2C(t *testing.T) {
	link := NewPeerLink(nil)
	addr, _ := servePeer(t, link)
	resp, err := link.Client(5 * time.Second).Get(link.URL(addr, "/x"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if string(b) != " true HTTP/2.0" {
		t.Fatalf("insecure peer answer %q, want %q", b, " true HTTP/2.0")
	}
}
