// Package devcluster makes the secrets of a throwaway cluster on one
// machine (the process tests', the load tool's) the way an operator makes
// them, with the holocron binary's own `cert` commands: a CA, a node
// certificate per node name, and a gossip key file.
package devcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Secrets are a cluster's certificates and gossip key under one directory.
type Secrets struct {
	dir string
}

// Make creates, under dir, a CA, a certs directory for each of names and a
// gossip key file, by running binary's cert commands.
func Make(binary, dir string, names []string) (*Secrets, error) {
	s := &Secrets{dir: dir}
	caKey := s.CAKeyFile()
	caDir := filepath.Join(dir, "ca")
	if err := run(binary, "cert", "create-ca", "--certs-dir", caDir, "--ca-key", caKey); err != nil {
		return nil, err
	}
	if err := run(binary, "cert", "create-gossip-key", s.GossipKeyFile()); err != nil {
		return nil, err
	}
	caCert, err := os.ReadFile(filepath.Join(caDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		nd := s.CertsDir(name)
		if err := os.MkdirAll(nd, 0o700); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(nd, "ca.crt"), caCert, 0o644); err != nil {
			return nil, err
		}
		if err := run(binary, "cert", "create-node", name, "--host", "127.0.0.1,localhost", "--certs-dir", nd, "--ca-key", caKey); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// CertsDir is node name's -certs-dir.
func (s *Secrets) CertsDir(name string) string { return filepath.Join(s.dir, "node-"+name) }

// CAKeyFile is the CA's private key (for issuing more certificates).
func (s *Secrets) CAKeyFile() string { return filepath.Join(s.dir, "ca.key") }

// GossipKeyFile is every node's -gossip-key-file.
func (s *Secrets) GossipKeyFile() string { return filepath.Join(s.dir, "gossip.key") }

// Flags are the serve flags that give node name its secrets.
func (s *Secrets) Flags(name string) []string {
	return []string{"-certs-dir", s.CertsDir(name), "-gossip-key-file", s.GossipKeyFile()}
}

func run(binary string, args ...string) error {
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", binary, strings.Join(args, " "), err, out)
	}
	return nil
}
