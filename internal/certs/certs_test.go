package certs

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newCA makes a CA in a fresh directory and returns its options.
func newCA(t *testing.T) Options {
	t.Helper()
	root := t.TempDir()
	o := Options{CertsDir: filepath.Join(root, "certs"), CAKey: filepath.Join(root, "safe", "ca.key")}
	if err := CreateCA(o); err != nil {
		t.Fatalf("create-ca: %v", err)
	}
	return o
}

// nodeDir makes a certs directory for node name: the CA certificate and
// the node's pair, as an operator copies them to a machine.
func nodeDir(t *testing.T, ca Options, name string) string {
	t.Helper()
	dir := t.TempDir()
	raw, err := os.ReadFile(filepath.Join(ca.CertsDir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CAFile), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	o := ca
	o.CertsDir = dir
	if err := CreateNode(o, name, []string{"127.0.0.1", "localhost"}); err != nil {
		t.Fatalf("create-node %s: %v", name, err)
	}
	return dir
}

func listen(t *testing.T, cfg *tls.Config) net.Listener {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// peerHandshake dials srv's server config from cli's client config wanting
// the node called want, and reports both sides' errors.
func peerHandshake(t *testing.T, srv *tls.Config, cli *tls.Config) (error, error) {
	t.Helper()
	ln := listen(t, srv)
	defer ln.Close()
	type result struct {
		name string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer c.Close()
		tc := c.(*tls.Conn)
		tc.SetDeadline(time.Now().Add(10 * time.Second))
		if err := tc.Handshake(); err != nil {
			got <- result{err: err}
			return
		}
		name, err := PeerName(tc.ConnectionState())
		tc.Write([]byte{1})
		got <- result{name: name, err: err}
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), cli)
	var clientErr error
	if err != nil {
		clientErr = err
	} else {
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, clientErr = c.Read(make([]byte, 1))
	}
	r := <-got
	return r.err, clientErr
}

func TestPeerLinkAcceptsOnlyTheClustersNodesByName(t *testing.T) {
	ca := newCA(t)
	n1 := mustPeer(t, nodeDir(t, ca, "n1"), "n1")
	n2 := mustPeer(t, nodeDir(t, ca, "n2"), "n2")
	other := mustPeer(t, nodeDir(t, newCA(t), "n2"), "n2") // n2's name, another cluster's CA

	clientOnly := ca
	clientOnly.CertsDir = t.TempDir()
	copyFile(t, filepath.Join(ca.CertsDir, CAFile), filepath.Join(clientOnly.CertsDir, CAFile))
	if err := CreateClient(clientOnly, "root"); err != nil {
		t.Fatal(err)
	}
	clientPair, err := tls.LoadX509KeyPair(filepath.Join(clientOnly.CertsDir, ClientCertFile("root")), filepath.Join(clientOnly.CertsDir, ClientKeyFile("root")))
	if err != nil {
		t.Fatal(err)
	}
	withCert := func(cfg *tls.Config, cert *tls.Certificate) *tls.Config {
		cfg = cfg.Clone()
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		return cfg
	}

	tests := []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"a node of the cluster reaching the node it means", n2.ClientConfig("n1"), true},
		{"a node that means to reach another node", n2.ClientConfig("n3"), false},
		{"a node of another CA", other.ClientConfig("n1"), false},
		{"no certificate", withCert(n2.ClientConfig("n1"), &tls.Certificate{}), false},
		{"a client (not node) certificate of the cluster", withCert(n2.ClientConfig("n1"), &clientPair), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			serverErr, clientErr := peerHandshake(t, n1.ServerConfig(), tc.client)
			if ok := serverErr == nil && clientErr == nil; ok != tc.ok {
				t.Fatalf("connection made: %v, want %v (server: %v; client: %v)", ok, tc.ok, serverErr, clientErr)
			}
		})
	}
}

func TestLoadPeerRefusesAnotherNodesCertificate(t *testing.T) {
	ca := newCA(t)
	dir := nodeDir(t, ca, "n1")
	_, err := LoadPeer(dir, "n2")
	if err == nil || !strings.Contains(err.Error(), `issued to node "n1", not "n2"`) {
		t.Fatalf("LoadPeer of n1's certificate as n2: %v", err)
	}
	// A node certificate beside another cluster's CA is refused too.
	copyFile(t, filepath.Join(newCA(t).CertsDir, CAFile), filepath.Join(dir, CAFile))
	if _, err := LoadPeer(dir, "n1"); err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Fatalf("LoadPeer with a foreign CA: %v", err)
	}
}

func TestCreateRefusesToOverwriteAndToOutliveTheCA(t *testing.T) {
	ca := newCA(t)
	if err := CreateNode(ca, "n1", []string{"localhost"}); err != nil {
		t.Fatal(err)
	}
	if err := CreateNode(ca, "n1", []string{"localhost"}); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("second create-node: %v, want a refusal naming --overwrite", err)
	}
	o := ca
	o.Overwrite = true
	if err := CreateNode(o, "n1", []string{"localhost"}); err != nil {
		t.Fatalf("create-node --overwrite: %v", err)
	}
	o.Lifetime = 20 * 365 * 24 * time.Hour
	if err := CreateNode(o, "n1", []string{"localhost"}); err == nil || !strings.Contains(err.Error(), "outlive the CA") {
		t.Fatalf("create-node outliving the CA: %v", err)
	}
	for _, bad := range []string{"", "a/b", "x y", strings.Repeat("n", 65)} {
		if err := CreateNode(ca, bad, []string{"localhost"}); err == nil {
			t.Errorf("create-node %q accepted", bad)
		}
	}
	if err := CreateNode(ca, "n9", nil); err == nil {
		t.Error("create-node without a host accepted")
	}
	fi, err := os.Stat(filepath.Join(ca.CertsDir, NodeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("node.key mode %v, want 0600", fi.Mode().Perm())
	}
	if fi, err := os.Stat(ca.CAKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ca.key: %v, mode %v, want 0600", err, fi.Mode().Perm())
	}
}

// TestRotatedCertificateIsUsedWithoutRestart: a node certificate replaced
// on disk is what the next connection presents once Watch sees the files
// change; broken files keep the material in use.
func TestRotatedCertificateIsUsedWithoutRestart(t *testing.T) {
	ca := newCA(t)
	dir := nodeDir(t, ca, "n1")
	n1 := mustPeer(t, dir, "n1")
	n2 := mustPeer(t, nodeDir(t, ca, "n2"), "n2")
	serial := func() string {
		t.Helper()
		ln := listen(t, n1.ServerConfig())
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Write([]byte{1})
				c.Close()
			}
		}()
		c, err := tls.Dial("tcp", ln.Addr().String(), n2.ClientConfig("n1"))
		if err != nil {
			t.Fatalf("dial n1: %v", err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watched := make(chan struct{})
	go func() { defer close(watched); n1.Watch(ctx, 10*time.Millisecond, slog.New(slog.DiscardHandler)) }()
	defer func() { cancel(); <-watched }()

	o := ca
	o.CertsDir, o.Overwrite = dir, true
	if err := CreateNode(o, "n1", []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for serial() == before {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not presented within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	rotated := serial()

	// A broken file is refused; the rotated certificate stays in use.
	if err := os.WriteFile(filepath.Join(dir, NodeCertFile), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n1.Reload(); err == nil {
		t.Fatal("Reload of a broken certificate file succeeded")
	}
	if got := serial(); got != rotated {
		t.Fatalf("after a failed reload the node presents %s, want the rotated %s", got, rotated)
	}
}

func mustPeer(t *testing.T, dir, name string) *Peer {
	t.Helper()
	p, err := LoadPeer(dir, name)
	if err != nil {
		t.Fatalf("LoadPeer %s: %v", name, err)
	}
	return p
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
