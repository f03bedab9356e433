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
	dir  string
	name string

	mu   sync.RWMutex
	cert *tls.Certificate
	pool *x509.CertPool
	// stamp is the files' modification times and sizes at the last load.
	stamp string
}

// LoadPeer reads dir's ca.crt, node.crt and node.key for the node called
// name. The node certificate must be issued to name: a node started with
// another node's certificate would speak with its voice.
func LoadPeer(dir, name string) (*Peer, error) {
	p := &Peer{dir: dir, name: name}
	if err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// Reload reads the certs directory again. On an error the material in use
// stays.
func (p *Peer) Reload() error {
	stamp := p.fileStamp()
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
	p.cert, p.pool, p.stamp = &cert, pool, stamp
	p.mu.Unlock()
	return nil
}

func (p *Peer) fileStamp() string {
	s := ""
	for _, f := range []string{CAFile, NodeCertFile, NodeKeyFile} {
		if fi, err := os.Stat(filepath.Join(p.dir, f)); err == nil {
			s += fmt.Sprintf("%s:%d:%d;", f, fi.ModTime().UnixNano(), fi.Size())
		}
	}
	return s
}

// Watch reloads the files whenever they change (checked every interval)
// until ctx ends, logging each reload and each failed one. Operators may
// also send SIGHUP, which calls Reload.
func (p *Peer) Watch(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.RLock()
		same := p.stamp == p.fileStamp()
		p.mu.RUnlock()
		if same {
			continue
		}
		if err := p.Reload(); err != nil {
			log.Error("peer certificates changed but cannot be loaded; keeping the ones in use", "dir", p.dir, "err", err)
			// Do not retry the same broken files every tick.
			p.mu.Lock()
			p.stamp = p.fileStamp()
			p.mu.Unlock()
			continue
		}
		log.Info("peer certificates reloaded", "dir", p.dir)
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
