package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Peer is a node's TLS material for the peer link: its own certificate and
// the cluster's CA, read from a certs directory and read again on Reload,
// so that certificates are rotated without a restart. Connections made
// after a reload use the new files; established ones keep theirs.
type Peer struct {
	dir   string
	name  string
	files fileSet

	mu   sync.RWMutex
	cert *tls.Certificate
	pool *x509.CertPool
}

// LoadPeer reads dir's ca.crt, node.crt and node.key for the node called
// name. The node certificate must be issued to name: a node started with
// another node's certificate would speak with its voice.
func LoadPeer(dir, name string) (*Peer, error) {
	p := &Peer{dir: dir, name: name, files: fileSet{paths: []string{
		filepath.Join(dir, CAFile), filepath.Join(dir, NodeCertFile), filepath.Join(dir, NodeKeyFile)}}}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the certs directory again. On an error the material in use
// stays.
func (p *Peer) Reload() error {
	stamp := p.files.stamp()
	pool, err := LoadCAPool(p.dir)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(p.dir, NodeCertFile), filepath.Join(p.dir, NodeKeyFile))
	if err != nil {
		return fmt.Errorf("node certificate: %w", err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("node certificate: %w", err)
		}
	}
	got, err := NodeName(leaf)
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(p.dir, NodeCertFile), err)
	}
	if got != p.name {
		return fmt.Errorf("%s is issued to node %q, not %q", filepath.Join(p.dir, NodeCertFile), got, p.name)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("%s is not signed by the CA in %s: %w", filepath.Join(p.dir, NodeCertFile), filepath.Join(p.dir, CAFile), err)
	}
	p.mu.Lock()
	p.cert, p.pool = &cert, pool
	p.mu.Unlock()
	p.files.loaded(stamp)
	return nil
}

// Watch reloads the files whenever they change (checked every interval)
// until ctx ends, logging each reload and each failed one. Operators may
// also send SIGHUP, which calls Reload.
func (p *Peer) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	p.files.watch(ctx, interval, p.Reload, log.With("what", "peer certificates", "dir", p.dir))
}

// KeyPair is a server certificate and its key, read from two files and
// read again when they change: the client port's TLS (-tls-cert,
// -tls-key), from a public CA or the operator's own. Handshakes after a
// reload present the new certificate; established connections keep
// theirs.
type KeyPair struct {
	certFile, keyFile string
	files             fileSet

	mu   sync.RWMutex
	cert *tls.Certificate
}

// LoadKeyPair reads a PEM certificate (chain) and its private key.
func LoadKeyPair(certFile, keyFile string) (*KeyPair, error) {
	k := &KeyPair{certFile: certFile, keyFile: keyFile, files: fileSet{paths: []string{certFile, keyFile}}}
	if err := k.Reload(); err != nil {
		return nil, err
	}
	return k, nil
}

// Reload reads the files again. On an error the pair in use stays.
func (k *KeyPair) Reload() error {
	stamp := k.files.stamp()
	cert, err := tls.LoadX509KeyPair(k.certFile, k.keyFile)
	if err != nil {
		return fmt.Errorf("TLS certificate %s, key %s: %w", k.certFile, k.keyFile, err)
	}
	k.mu.Lock()
	k.cert = &cert
	k.mu.Unlock()
	k.files.loaded(stamp)
	return nil
}

// Watch is Peer.Watch for the pair.
func (k *KeyPair) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	k.files.watch(ctx, interval, k.Reload, log.With("what", "TLS certificate", "file", k.certFile))
}

// ServerConfig is the client port's TLS: HTTP/1.1 only (WebSockets are
// upgraded from it), TLS 1.2 or later, the current certificate.
func (k *KeyPair) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			k.mu.RLock()
			defer k.mu.RUnlock()
			return k.cert, nil
		},
	}
}

// fileSet is files loaded together and loaded again when any of them
// changes (its modification time or size).
type fileSet struct {
	paths []string

	mu   sync.Mutex
	last string // stamp at the last load, or at the last failed one
}

func (f *fileSet) stamp() string {
	s := ""
	for _, p := range f.paths {
		if fi, err := os.Stat(p); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", p, fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}

func (f *fileSet) loaded(stamp string) {
	f.mu.Lock()
	f.last = stamp
	f.mu.Unlock()
}

func (f *fileSet) changed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last != f.stamp()
}

// watch calls reload each time the files changed (checked every interval)
// until ctx ends, logging each reload and each failed one.
func (f *fileSet) watch(ctx context.Context, interval time.Duration, reload func() error, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !f.changed() {
			continue
		}
		if err := reload(); err != nil {
			log.Error("files changed but cannot be loaded; keeping the ones in use", "err", err)
			// Do not retry the same broken files every tick.
			f.loaded(f.stamp())
			continue
		}
		log.Info("reloaded after a change")
	}
}

func (p *Peer) current() (*tls.Certificate, *x509.CertPool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cert, p.pool
}

// ServerConfig is the peer listener's TLS: a client must present a node
// certificate signed by the cluster's CA. Which node it is (PeerName) is for
// the caller to match against what the peer claims.
func (p *Peer) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := p.current()
			return &tls.Config{
				MinVersion:   tls.VersionTLS13,
				Certificates: []tls.Certificate{*cert},
				ClientAuth:   tls.RequireAndVerifyClientCert,
				ClientCAs:    pool,
				NextProtos:   []string{"h2", "http/1.1"},
				VerifyConnection: func(cs tls.ConnectionState) error {
					_, err := PeerName(cs)
					return err
				},
			}, nil
		},
	}
}

// ClientConfig is the TLS a node dials a peer with: the peer must present
// a node certificate from the cluster's CA issued to want (the node the
// dialer means to reach, whatever address it is at), and this node
// presents its own.
func (p *Peer) ClientConfig(want string) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			cert, _ := p.current()
			return cert, nil
		},
		// The chain is verified in VerifyConnection against the current
		// pool, and the peer by its node name rather than by the host it
		// was dialled at (addresses change; names are what Raft trusts).
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, pool := p.current()
			if len(cs.PeerCertificates) == 0 {
				return errors.New("peer presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return fmt.Errorf("peer certificate: %w", err)
			}
			got, err := NodeName(cs.PeerCertificates[0])
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("peer presented the certificate of node %q, not %q", got, want)
			}
			return nil
		},
	}
}

// PeerName is the node name of a verified TLS connection's peer.
func PeerName(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("peer presented no verified certificate")
	}
	return NodeName(cs.VerifiedChains[0][0])
}
