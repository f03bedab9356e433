package cluster

import (
	"bytes"
	"net"
	"sync"
	"testing"
)

// recordingConn records each Write that reaches the network.
type recordingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []string
	reads  int
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, string(bytes.Clone(p)))
	return len(p), nil
}

func (c *recordingConn) Read(p []byte) (int, error) {
	c.reads++
	return 0, nil
}

func (c *recordingConn) Close() error { return nil }

func (c *recordingConn) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.writes...)
}

// TestRelayConnWritesOutBeforeTheRelayWaits: messages copied while the
// relay has more at hand leave in one write, and all of them leave before
// the relay reads its source again; unheld writes (a pong from the other
// relay) go straight out; Close writes out what is left.
func TestRelayConnWritesOutBeforeTheRelayWaits(t *testing.T) {
	clientNet, backendNet := &recordingConn{}, &recordingConn{}
	client, backend := &relayConn{Conn: clientNet}, &relayConn{Conn: backendNet}
	client.flushOnRead, backend.flushOnRead = backend, client

	// The client→backend relay copies three messages it had buffered.
	for _, m := range []string{"a", "bb", "ccc"} {
		backend.hold()
		backend.Write([]byte(m))
	}
	if got := backendNet.got(); len(got) != 0 {
		t.Fatalf("held messages reached the network early: %q", got)
	}
	// Meanwhile the other relay answers a ping on the client side: the
	// client side is not held, so it goes out at once.
	client.Write([]byte("pong"))
	if got := clientNet.got(); len(got) != 1 || got[0] != "pong" {
		t.Fatalf("client side writes = %q, want the pong at once", got)
	}
	// The relay is about to wait for the client: the copies go first.
	client.Read(make([]byte, 8))
	if got := backendNet.got(); len(got) != 1 || got[0] != "abbccc" {
		t.Fatalf("backend writes = %q, want one write \"abbccc\"", got)
	}
	if backend.buf != nil {
		t.Fatal("a released side keeps a buffer")
	}
	// After the release, writes go through again; a held one is written
	// out by Close.
	backend.Write([]byte("d"))
	backend.hold()
	backend.Write([]byte("close"))
	backend.Close()
	if got := backendNet.got(); len(got) != 3 || got[1] != "d" || got[2] != "close" {
		t.Fatalf("backend writes = %q", got)
	}
	// Too much to hold is written out in order.
	big := string(bytes.Repeat([]byte("x"), maxRelayBuffered))
	client.hold()
	client.Write([]byte("1"))
	client.Write([]byte(big))
	client.release()
	if got := clientNet.got(); len(got) != 3 || got[1] != "1" || got[2] != big {
		t.Fatalf("client writes after an oversized one: %d writes", len(got))
	}
	var none *relayConn
	none.hold()
	if err := none.release(); err != nil {
		t.Fatal(err)
	}
}
