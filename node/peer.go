package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/certs"
)

// peerListener is a cluster node's peer listener and the secrets of its
// link: the node certificate (mutual TLS) and the gossip keys.
type peerListener struct {
	ln         net.Listener
	link       *cluster.PeerLink
	tls        *certs.Peer // nil: -insecure
	gossipKeys cluster.GossipKeys
	keyFile    string
}

// listenPeer loads the cluster's secrets (or, with -insecure, says loudly
// that there are none) and opens the peer listener.
func listenPeer(cfg Config, log *slog.Logger) (*peerListener, error) {
	p := &peerListener{keyFile: cfg.GossipKeyFile}
	if cfg.Insecure {
		log.Warn("INSECURE CLUSTER: -insecure runs the peer link and gossip without TLS or keys; anyone who reaches the peer or gossip port can join, read every object and forge Raft messages. Use it for tests on one machine only.",
			"peer", cfg.PeerAddr, "gossip", cfg.Bind)
	} else {
		var err error
		if p.tls, err = certs.LoadPeer(cfg.CertsDir, cfg.NodeName); err != nil {
			return nil, fmt.Errorf("-certs-dir: %w", err)
		}
		if p.gossipKeys, err = cluster.LoadGossipKeys(cfg.GossipKeyFile); err != nil {
			return nil, fmt.Errorf("-gossip-key-file: %w", err)
		}
	}
	p.link = cluster.NewPeerLink(p.tls)
	ln, err := net.Listen("tcp", cfg.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("peer listener on %s: %w", cfg.PeerAddr, err)
	}
	p.ln = ln
	return p, nil
}

// secretsCheckInterval is how often the certificate and gossip key files
// are looked at for changes (SIGHUP reloads at once).
const secretsCheckInterval = 5 * time.Second

// watchSIGHUP delivers SIGHUP to hup until ctx ends (and keeps it from
// ending the process, its default, where nothing is reloaded).
func watchSIGHUP(ctx context.Context, hup chan os.Signal) {
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		signal.Stop(hup)
	}()
}

// watch reloads the certificates and the gossip keys when their files
// change, until ctx ends: rotation without a restart (SIGHUP: reload).
func (p *peerListener) watch(ctx context.Context, node *cluster.Node, log *slog.Logger) {
	if p.tls == nil {
		return
	}
	go p.tls.Watch(ctx, secretsCheckInterval, log)
	tick := time.NewTicker(secretsCheckInterval)
	defer tick.Stop()
	last, _ := os.ReadFile(p.keyFile)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if raw, err := os.ReadFile(p.keyFile); err == nil && !bytes.Equal(raw, last) {
			last = raw
			p.reloadGossipKeys(node, log)
		}
	}
}

// reload is SIGHUP's: the certificates and the gossip keys are read again,
// changed or not.
func (p *peerListener) reload(node *cluster.Node, log *slog.Logger) {
	if p.tls == nil {
		log.Info("SIGHUP: an -insecure node has no peer certificates or gossip keys to reload")
		return
	}
	if err := p.tls.Reload(); err != nil {
		log.Error("SIGHUP: peer certificates cannot be loaded; keeping the ones in use", "err", err)
	} else {
		log.Info("SIGHUP: peer certificates reloaded")
	}
	p.reloadGossipKeys(node, log)
}

func (p *peerListener) reloadGossipKeys(node *cluster.Node, log *slog.Logger) {
	keys, err := cluster.LoadGossipKeys(p.keyFile)
	if err == nil {
		err = node.SetGossipKeys(keys)
	}
	if err != nil {
		log.Error("gossip keys cannot be used; keeping the ones in use", "file", p.keyFile, "err", err)
		return
	}
	log.Info("gossip keys reloaded", "file", p.keyFile, "keys", len(keys))
}
