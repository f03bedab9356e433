package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/holocron-run/holocron/internal/certs"
)

// TestCertCommands runs `holocron cert` as an operator would (README's
// "Securing a cluster"): a CA, a node, a client, then list.
func TestCertCommands(t *testing.T) {
	root := t.TempDir()
	dir, key := filepath.Join(root, "certs"), filepath.Join(root, "safe", "ca.key")
	holocron := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	steps := []struct {
		args     []string
		code     int
		contains string // in stdout or stderr
	}{
		{[]string{"cert", "create-node", "n1", "--host", "127.0.0.1", "--certs-dir", dir, "--ca-key", key}, 1, "read certificate"},
		{[]string{"cert", "create-ca", "--certs-dir", dir, "--ca-key", key}, 0, ""},
		{[]string{"cert", "create-ca", "--certs-dir", dir, "--ca-key", key}, 1, "--overwrite"},
		{[]string{"cert", "create-node", "n1", "--certs-dir", dir, "--ca-key", key}, 1, "--host"},
		{[]string{"cert", "create-node", "--certs-dir", dir, "--ca-key", key}, 1, "name is required"},
		{[]string{"cert", "create-node", "n1", "--host", "127.0.0.1,localhost", "--host", "n1.example", "--certs-dir", dir, "--ca-key", key}, 0, ""},
		{[]string{"cert", "create-client", "root", "--certs-dir", dir, "--ca-key", key}, 0, ""},
		{[]string{"cert", "list", "--certs-dir", dir}, 0, "node.crt"},
		{[]string{"cert", "frobnicate"}, 2, "unknown command"},
	}
	for _, s := range steps {
		code, out, errOut := holocron(s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.contains) {
			t.Fatalf("holocron %s: exit %d (want %d), output %q (want it to contain %q)", strings.Join(s.args, " "), code, s.code, out+errOut, s.contains)
		}
	}
	_, list, _ := holocron("cert", "list", "--certs-dir", dir)
	for _, want := range []string{"ca.crt", "client.root.crt", "client  root", "node.crt", "node    n1"} {
		if !strings.Contains(list, want) {
			t.Errorf("cert list lacks %q:\n%s", want, list)
		}
	}
	for _, f := range []string{certs.CAFile, certs.NodeCertFile, certs.NodeKeyFile, certs.ClientCertFile("root"), certs.ClientKeyFile("root")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); err == nil {
		t.Error("the CA key was written into the certs directory")
	}
	if _, err := certs.LoadPeer(dir, "n1"); err != nil {
		t.Errorf("the node's certs directory does not load: %v", err)
	}
}
