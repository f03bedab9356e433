package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	varint "encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/holocron-run/holocron/cluster"
	"github.com/holocron-run/holocron/internal/certs"
	"github.com/holocron-run/holocron/internal/devcluster"
	"github.com/holocron-run/holocron/internal/testenv"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// forgedHeartbeats is a Raft batch, as the peer link carries one, of
// heartbeats for every partition with term 2^40 from n2 to n1: taken in,
// it would make every group of n1 step down and re-elect.
func forgedHeartbeats(partitions int) []byte {
	var buf []byte
	for p := range partitions {
		m := &pb.Message{Type: pb.MessageType_MsgHeartbeat.Enum(), From: proto.Uint64(cluster.RaftIDFor("n2")),
			To: proto.Uint64(cluster.RaftIDFor("n1")), Term: proto.Uint64(1 << 40)}
		b, _ := proto.Marshal(m)
		buf = varint.AppendUvarint(buf, uint64(p))
		buf = varint.AppendUvarint(buf, uint64(len(b)))
		buf = append(buf, b...)
	}
	return buf
}

// TestClusterPeerTrafficOnlyOverThePeerLink attacks a secured cluster with
// what a client can reach: Raft and hold requests on the client port are
// not found; the peer listener refuses plain HTTP, a certificate of
// another CA, a client (not node) certificate of the cluster's own CA, and
// one node's certificate speaking for another. The cluster serves on
// throughout, and no group's term moved towards the forged one.
func TestClusterPeerTrafficOnlyOverThePeerLink(t *testing.T) {
	c := startCluster(t, 3)
	body := forgedHeartbeats(64)
	post := func(client *http.Client, url string) (int, error) {
		resp, err := client.Post(url, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	// The client port knows nothing of peer traffic.
	for _, n := range c.nodes {
		for _, path := range []string{cluster.RaftPath, cluster.HoldPath + "?partition=1&seconds=60"} {
			if code, err := post(&httpClient, n.url(path)); err != nil || code != http.StatusNotFound {
				t.Errorf("POST %s on %s's client port: %d %v, want 404", path, n.addr, code, err)
			}
		}
	}

	peerURL := "https://" + c.peers[0] + cluster.RaftPath
	tlsClient := func(cfg *tls.Config) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, ForceAttemptHTTP2: true}}
	}
	// Plain HTTP, and TLS without a certificate.
	if code, err := post(&httpClient, "http://"+c.peers[0]+cluster.RaftPath); err == nil && code < 400 {
		t.Errorf("plain HTTP to the peer listener: %d", code)
	}
	if code, err := post(tlsClient(&tls.Config{InsecureSkipVerify: true}), peerURL); err == nil {
		t.Errorf("TLS without a certificate to the peer listener: answered %d", code)
	}
	// A node certificate of another cluster.
	foreign, err := devcluster.Make(binary, t.TempDir(), []string{"n2"})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := post(tlsClient(peerClientConfig(t, foreign.CertsDir("n2"), "n2", "n1")), peerURL); err == nil {
		t.Errorf("a node certificate of another CA: answered %d", code)
	}
	// A client certificate of this cluster's CA is no node's.
	clientDir := c.secrets.CertsDir("n2")
	if code, _, errOut := runHolocron(t, "cert", "create-client", "ops", "--certs-dir", clientDir, "--ca-key", filepath.Join(filepath.Dir(clientDir), "ca.key")); code != 0 {
		t.Fatalf("create-client: %s", errOut)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(clientDir, certs.ClientCertFile("ops")), filepath.Join(clientDir, certs.ClientKeyFile("ops")))
	if err != nil {
		t.Fatal(err)
	}
	asClient := peerClientConfig(t, clientDir, "n2", "n1")
	asClient.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	if code, err := post(tlsClient(asClient), peerURL); err == nil {
		t.Errorf("a client certificate of the cluster on the peer link: answered %d", code)
	}
	// n3's own certificate, sending messages from n2.
	if code, err := post(tlsClient(peerClientConfig(t, c.secrets.CertsDir("n3"), "n3", "n1")), peerURL); err != nil || code != http.StatusForbidden {
		t.Errorf("n3's certificate sending n2's Raft messages: %d %v, want 403", code, err)
	}

	// The cluster noticed nothing.
	createRoom(t, c.nodes[1], "after-forgery")
	var ov map[string]any
	if code := c.nodes[0].do("GET", "/admin/overview", nil, &ov); code != 200 || ov["insecure"] != nil {
		t.Errorf("GET /admin/overview of a secured cluster: HTTP %d, insecure %v; want 200 and no such field", code, ov["insecure"])
	}
	for _, n := range c.nodes {
		st, ok := c.status(n)
		if !ok {
			t.Fatalf("no status from %s", n.addr)
		}
		for _, p := range st.Partitions {
			if p.Term > math.MaxUint32 {
				t.Fatalf("partition %d on %s is in term %d: a forged message was taken in", p.Partition, st.Node, p.Term)
			}
		}
	}
}

// peerClientConfig is the TLS node name (certs directory dir) dials the
// peer listener of node want with.
func peerClientConfig(t *testing.T, dir, name, want string) *tls.Config {
	t.Helper()
	p, err := certs.LoadPeer(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.ClientConfig(want)
	cfg.NextProtos = []string{"h2"}
	return cfg
}

// runHolocron runs the holocron binary and returns its exit code, stdout
// and stderr.
func runHolocron(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(args, &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

// TestClusterInsecureModeSaysSoAndServes: with -insecure (the one cluster
// test that runs so) the peer link is HTTP/2 in clear and gossip has no
// key; every node warns of it at start, and the cluster chats and fails
// over as a secured one does.
func TestClusterInsecureModeSaysSoAndServes(t *testing.T) {
	c := newCluster(t, 3)
	c.insecure = true
	c.start()
	createRoom(t, c.nodes[1], "clear")
	// The dashboard says so too (its banner shows what this field says;
	// a secured cluster's overview has no such field, see
	// TestClusterPeerTrafficOnlyOverThePeerLink).
	var ov struct {
		Insecure bool `json:"insecure"`
	}
	if code := c.nodes[0].do("GET", "/admin/overview", nil, &ov); code != 200 || !ov.Insecure {
		t.Errorf("GET /admin/overview: HTTP %d, insecure %v; want 200 and true", code, ov.Insecure)
	}
	load := startChatLoad(c, "clear", 4)
	load.waitAcks(60, 60*time.Second)
	victim, lead := c.lead("ChatLobby", "main")
	load.disrupt("kill -9 of the lobby's leader")
	c.nodes[victim].kill9()
	load.waitAcks(load.ackCount()+60, 60*time.Second)
	load.settle(3)
	c.assertFailedOver("ChatLobby", "main", victim, lead.Term)
	load.finish()
	// The logs are read once each process has exited.
	for i, n := range c.nodes {
		if !n.exited.Load() {
			n.stop()
		}
		if !strings.Contains(n.logs.String(), "INSECURE CLUSTER") {
			t.Errorf("%s did not warn that it runs insecure", c.names[i])
		}
	}
}

// TestClusterRefusesImpostors: hosts that reach a secured cluster's gossip
// and peer ports without all of its secrets get nothing.
//   - n5 has the gossip key but a node certificate of another CA: gossip
//     lets it in as a member, but no node can prove its peer link, so
//     /admin/cluster shows it unproven with the link's error, and it is
//     added to no Raft group;
//   - n6 has a certificate of the cluster's CA but another gossip key: it
//     never appears as a member at all;
//   - meanwhile n4, with the cluster's secrets, joins, is proven and given
//     replicas: the same rebalancer, in the same time, placed a node that
//     may be placed, so the impostors' empty hands are not for lack of time.
//
// The chat keeps working throughout.
func TestClusterRefusesImpostors(t *testing.T) {
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "guarded")
	load := startChatLoad(c, "guarded", 3)
	load.waitAcks(30, 60*time.Second)
	foreign, err := devcluster.Make(binary, t.TempDir(), []string{"n5", "n6"})
	if err != nil {
		t.Fatal(err)
	}
	impostor := func(name, certsDir, keyFile string) *node {
		args := []string{"-node-name", name, "-bind", freeGossipAddr(t), "-join", strings.Join(c.gossip, ","),
			"-peer", freeAddr(t), "-raft-tick", "50ms", "-admin-token", clusterAdminToken,
			"-certs-dir", certsDir, "-gossip-key-file", keyFile}
		n := startNode(t, t.TempDir(), args...)
		n.adminToken = clusterAdminToken
		return n
	}
	n5 := impostor("n5", foreign.CertsDir("n5"), c.secrets.GossipKeyFile())
	n6 := impostor("n6", c.secrets.CertsDir("n6"), foreign.GossipKeyFile())

	// n5 is a member, unproven, with the reason.
	testenv.WaitFor(t, 30*time.Second, "n5 listed as an unproven member", func() error {
		st, ok := c.status(c.nodes[0])
		if !ok {
			return errors.New("no status from n1")
		}
		m, ok := replaceMember(st, "n5")
		switch {
		case !ok:
			return errors.New("n5 not listed")
		case m.Proven:
			return errors.New("n5 proven")
		case m.LinkError == "":
			return errors.New("n5 unproven with no link error yet")
		}
		return nil
	})

	// n4, a real node, joins and gets replicas.
	c.grow()
	n4ID := cluster.RaftIDFor("n4")
	testenv.WaitFor(t, 90*time.Second, "n4 proven and a voter of some partition", func() error {
		st, ok := c.status(c.nodes[0])
		if !ok {
			return errors.New("no status from n1")
		}
		if m, ok := replaceMember(st, "n4"); !ok || !m.Proven {
			return fmt.Errorf("n4 not proven: %+v", m)
		}
		for _, p := range st.Partitions {
			if slices.Contains(p.Voters, n4ID) {
				return nil
			}
		}
		return errors.New("n4 a voter of no partition yet")
	})

	// By now the impostors hold nothing, in any node's view, and n6 is
	// nobody's member.
	for _, name := range []string{"n5", "n6"} {
		id := cluster.RaftIDFor(name)
		for i, n := range c.nodes {
			st, ok := c.status(n)
			if !ok {
				t.Fatalf("no status from %s", c.names[i])
			}
			for _, p := range st.Partitions {
				if slices.Contains(p.Voters, id) || slices.Contains(p.Learners, id) {
					t.Errorf("%s: %s is in partition %d's group (voters %v, learners %v)", c.names[i], name, p.Partition, p.Voters, p.Learners)
				}
			}
			if m, ok := replaceMember(st, name); ok && (m.Proven || name == "n6") {
				t.Errorf("%s lists %s as a member (proven %v)", c.names[i], name, m.Proven)
			}
		}
	}
	// Nor do the impostors think they hold anything.
	for name, n := range map[string]*node{"n5": n5, "n6": n6} {
		st, ok := c.status(n)
		if !ok {
			t.Fatalf("no status from %s", name)
		}
		for _, p := range st.Partitions {
			if p.Member {
				t.Errorf("%s holds a group of partition %d", name, p.Partition)
			}
		}
	}
	load.finish()
}

// TestClusterHalfSentBodyThroughAnotherNode: a client that sends half a
// body (sized or chunked) to the lobby through a node that does not own
// it holds up only its own request: that node reads the whole body, within
// the runtime's bounds, before it routes the request, so the stalled one is
// answered 408 request_timeout while other clients' requests through the
// same node, and the lobby's sockets, are served as usual.
func TestClusterHalfSentBodyThroughAnotherNode(t *testing.T) {
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "steady")
	via := c.nodes[c.otherThan(c.leaderOf("ChatLobby", "main"))]
	stalled := map[string]net.Conn{}
	for name, head := range map[string]string{"sized": "Content-Length: 1000\r\n", "chunked": "Transfer-Encoding: chunked\r\n"} {
		conn, err := net.DialTimeout("tcp", via.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		part := "{"
		if name == "chunked" {
			part = "1\r\n{\r\n"
		}
		fmt.Fprintf(conn, "POST /api/lobby/rooms HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s\r\n%s", via.addr, head, part)
		stalled[name] = conn
	}
	// While both stall, the lobby serves others through the same node.
	ws := runtimetest.DialURL(t, via.wsURL("/api/lobby/websocket"), nil)
	ws.Send(map[string]any{"type": "join_room", "roomId": "steady", "playerId": "p", "playerName": "P"})
	until(ws, "room_joined")
	for i := range 5 {
		createRoom(t, via, fmt.Sprintf("during-%d", i))
		ws.Send(map[string]any{"type": "send_message", "roomId": "steady", "playerId": "p", "content": fmt.Sprint("m", i)})
		until(ws, "new_message")
	}
	for name, conn := range stalled {
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%s: the stalled request got no answer: %v", name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(raw), "request_timeout") {
			t.Errorf("%s: the stalled request: %s %s, want 408 request_timeout", name, resp.Status, raw)
		}
	}
}

// TestClusterRotatesSecretsUnderLoad: under chat load, a node's
// certificate is replaced (its peer listener presents the new one) and the
// gossip key is rotated as the README says, install, use, remove, each
// step reloaded node by node with SIGHUP; no acknowledged message is lost
// and no dial or read fails (the load runs with no disruption declared).
// Afterwards a node with only the new key joins, and one with only the old
// key does not.
func TestClusterRotatesSecretsUnderLoad(t *testing.T) {
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "rotate")
	load := startChatLoad(c, "rotate", 6)
	load.waitAcks(60, 60*time.Second)
	hupAll := func(what string) {
		t.Helper()
		for i, n := range c.nodes {
			before := strings.Count(n.logs.String(), "gossip keys reloaded")
			if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%s to reload its gossip keys (%s)", c.names[i], what), func() error {
				if strings.Count(n.logs.String(), "gossip keys reloaded") <= before {
					return errors.New("not reloaded yet")
				}
				return nil
			})
			acks := load.ackCount()
			load.waitAcks(acks+10, 30*time.Second)
		}
	}

	// The certificate of n2, replaced in place.
	n2 := c.secrets.CertsDir("n2")
	serial := func() string {
		conn, err := tls.Dial("tcp", c.peers[1], peerClientConfig(t, c.secrets.CertsDir("n1"), "n1", "n2"))
		if err != nil {
			t.Fatalf("TLS to n2's peer listener: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	old := serial()
	mustHolocron(t, "cert", "create-node", "n2", "--host", "127.0.0.1,localhost", "--certs-dir", n2, "--ca-key", c.secrets.CAKeyFile(), "--overwrite")
	if err := c.nodes[1].cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "n2's peer listener to present its new certificate", func() error {
		if serial() == old {
			return errors.New("still the old certificate")
		}
		return nil
	})
	load.waitAcks(load.ackCount()+30, 30*time.Second)

	// The gossip key: install, use, remove.
	keyFile := c.secrets.GossipKeyFile()
	oldKey, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	newKeyFile := filepath.Join(t.TempDir(), "new.key")
	mustHolocron(t, "cert", "create-gossip-key", newKeyFile)
	newKey, err := os.ReadFile(newKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	line := func(b []byte) string { return strings.TrimSpace(string(b)) + "\n" }
	for _, step := range []struct{ what, content string }{
		{"install", line(oldKey) + line(newKey)},
		{"use", line(newKey) + line(oldKey)},
		{"remove", line(newKey)},
	} {
		if err := os.WriteFile(keyFile, []byte(step.content), 0o600); err != nil {
			t.Fatal(err)
		}
		hupAll(step.what)
	}
	load.waitAcks(load.ackCount()+60, 60*time.Second)
	load.finish()

	// Only the new key lets a node in now.
	oldKeyFile := filepath.Join(t.TempDir(), "old.key")
	if err := os.WriteFile(oldKeyFile, oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	joiner := func(name, keys string) {
		n := startNode(t, t.TempDir(), "-node-name", name, "-bind", freeGossipAddr(t), "-join", strings.Join(c.gossip, ","),
			"-peer", freeAddr(t), "-raft-tick", "50ms", "-admin-token", clusterAdminToken,
			"-certs-dir", c.secrets.CertsDir(name), "-gossip-key-file", keys)
		n.adminToken = clusterAdminToken
	}
	joiner("n5", oldKeyFile)
	joiner("n4", newKeyFile)
	testenv.WaitFor(t, 30*time.Second, "n4 (the new key) to be a member", func() error {
		st, ok := c.status(c.nodes[0])
		if !ok {
			return errors.New("no status from n1")
		}
		if m, ok := replaceMember(st, "n4"); !ok || m.State != cluster.StateAlive {
			return errors.New("n4 not an alive member")
		}
		return nil
	})
	for i, n := range c.nodes {
		st, ok := c.status(n)
		if !ok {
			t.Fatalf("no status from %s", c.names[i])
		}
		if _, ok := replaceMember(st, "n5"); ok {
			t.Errorf("%s lists n5, which has only the removed gossip key", c.names[i])
		}
	}
}

// TestClusterBoundsTheObjectsClientsCreate: a client names new lobbies and
// leaderboards on the public routes; -max-lobbies and -max-leaderboards
// bound how many exist in the whole cluster, whichever node each was
// created through: the write that would create one more is refused 429
// limit_exceeded and stores nothing, while the ones that exist go on.
func TestClusterBoundsTheObjectsClientsCreate(t *testing.T) {
	c := startCluster(t, 3, "-max-lobbies", "3", "-max-leaderboards", "2")
	createIn := func(n *node, lobby string) int {
		t.Helper()
		return n.do("POST", "/api/lobbies/"+lobby+"/rooms", map[string]any{"roomId": "r", "name": "R"}, nil)
	}
	// "main" (the default lobby) counts once it exists; two more fit.
	for i, lobby := range []string{"main", "x1", "x2"} {
		if code := createIn(c.nodes[i], lobby); code != http.StatusCreated {
			t.Fatalf("lobby %s through %s: %d", lobby, c.names[i], code)
		}
	}
	for i := range c.nodes {
		var refused struct{ Code string }
		if code := c.nodes[i].do("POST", "/api/lobbies/y"+strconv.Itoa(i)+"/rooms", map[string]any{"roomId": "r", "name": "R"}, &refused); code != http.StatusTooManyRequests || refused.Code != "limit_exceeded" {
			t.Fatalf("a fourth lobby through %s: %d %q, want 429 limit_exceeded", c.names[i], code, refused.Code)
		}
	}
	// The lobbies that exist take more rooms.
	if code := c.nodes[2].do("POST", "/api/lobbies/x1/rooms", map[string]any{"roomId": "r2", "name": "R2"}, nil); code != http.StatusCreated {
		t.Fatalf("a second room in an existing lobby: %d", code)
	}
	score := func(n *node, board string) int {
		t.Helper()
		return n.do("POST", "/api/leaderboards/"+board+"/scores", map[string]any{"playerId": "p", "playerName": "P", "score": 1}, nil)
	}
	for i, board := range []string{"b1", "b2"} {
		if code := score(c.nodes[i], board); code != http.StatusOK {
			t.Fatalf("board %s: %d", board, code)
		}
	}
	if code := score(c.nodes[2], "b3"); code != http.StatusTooManyRequests {
		t.Fatalf("a third board: %d, want 429", code)
	}
	// Nothing of the refused objects was stored.
	var obj struct{ Keys []any }
	if code := c.nodes[0].do("GET", "/admin/objects/ChatLobby/y0", nil, &obj); code != http.StatusNotFound {
		t.Fatalf("the refused lobby y0 is in storage: %d %+v", code, obj)
	}
}
