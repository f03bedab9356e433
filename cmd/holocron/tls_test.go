package main

import (
	"context"
	"crypto/tls"
	"errors"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/client"
	"github.com/holocron-run/holocron/internal/certs"
	"github.com/holocron-run/holocron/internal/testenv"
)

// TestClientPortTLS: with -tls-cert and -tls-key the client port speaks
// HTTPS and WSS only; the Go client chats over wss:// trusting the
// certificate's CA; the certificate is replaced without a restart, when its
// files change and on SIGHUP, while a socket opened before stays open and
// served; a broken replacement is refused and the one in use stays.
func TestClientPortTLS(t *testing.T) {
	dir := t.TempDir()
	caKey := filepath.Join(dir, "ca.key")
	mustHolocron(t, "cert", "create-ca", "--certs-dir", dir, "--ca-key", caKey)
	issue := func() {
		mustHolocron(t, "cert", "create-node", "edge", "--host", "127.0.0.1,localhost", "--certs-dir", dir, "--ca-key", caKey, "--overwrite")
	}
	issue()
	pool, err := certs.LoadCAPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := newNode(t, freeAddr(t), t.TempDir())
	n.tlsRoots = pool
	n.start(nil, "-tls-cert", filepath.Join(dir, certs.NodeCertFile), "-tls-key", filepath.Join(dir, certs.NodeKeyFile))

	// Plain HTTP is not served.
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + n.addr + "/readyz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on a TLS client port")
		}
	}
	createRoom(t, n, "secure")

	// The Go client over wss://.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cc, err := client.DialChat(ctx, []string{"wss://" + n.addr}, client.Options{TLSConfig: n.tlsClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close(context.Background())
	if _, err := cc.JoinRoom(ctx, "secure", "p1", "Ada"); err != nil {
		t.Fatal(err)
	}
	send := func(what string) {
		t.Helper()
		if m, err := cc.SendMessage(ctx, "secure", what); err != nil || m.Content != what {
			t.Fatalf("send %q over the socket opened first: %+v %v", what, m, err)
		}
	}
	send("before any rotation")

	serial := func() *big.Int {
		conn, err := tls.Dial("tcp", n.addr, n.tlsClientConfig())
		if err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber
	}
	first := serial()

	// Rotation by file change (checked every few seconds).
	issue()
	testenv.WaitFor(t, 30*time.Second, "the new certificate after its files changed", func() error {
		if serial().Cmp(first) == 0 {
			return errors.New("still the first certificate")
		}
		return nil
	})
	second := serial()
	send("after the files changed")

	// Rotation by SIGHUP: the files change and the signal comes at once.
	issue()
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the new certificate after SIGHUP", func() error {
		if s := serial(); s.Cmp(second) == 0 || s.Cmp(first) == 0 {
			return errors.New("an earlier certificate")
		}
		return nil
	})
	send("after SIGHUP")

	// A raw wss:// handshake, as a browser's, with a fresh dialer.
	d := websocket.Dialer{TLSClientConfig: n.tlsClientConfig(), HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial(n.wsURL("/api/lobby/websocket"), nil)
	if err != nil {
		t.Fatalf("wss handshake after the rotations: %v", err)
	}
	ws.Close()

	// A broken replacement keeps the certificate in use: handshakes go on
	// with the third one, and the node says why (its log is read once it
	// has exited).
	third := serial()
	if err := os.WriteFile(filepath.Join(dir, certs.NodeCertFile), []byte("not a certificate"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the node to refuse the broken certificate", func() error {
		if !strings.Contains(n.logs.String(), "TLS certificate cannot be loaded; keeping the one in use") {
			return errors.New("not reported in the log yet")
		}
		return nil
	})
	send("after a broken replacement")
	if s := serial(); s.Cmp(third) != 0 {
		t.Fatalf("after a broken replacement the node presents serial %v, want the one in use (%v)", s, third)
	}
}

// mustHolocron runs the holocron binary and fails the test unless it exits 0.
func mustHolocron(t *testing.T, args ...string) {
	t.Helper()
	if code, _, errOut := runHolocron(t, args...); code != 0 {
		t.Fatalf("holocron %v: exit %d: %s", args, code, errOut)
	}
}
