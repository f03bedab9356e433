package main

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"
)

// TestClusterBackupUnderLoadRestoresIntoAnotherCluster takes a cluster
// backup (every object through its owner) while three senders chat through
// all nodes, then restores it into a fresh 3-node cluster and into an empty
// single-node data directory: both serve the same rooms, history and game
// rooms, with every message acknowledged before the backup started.
func TestClusterBackupUnderLoadRestoresIntoAnotherCluster(t *testing.T) {
	noEnv := func(string) string { return "" }
	c := startCluster(t, 3)
	createRoom(t, c.nodes[0], "bk")
	const lobbies = 8
	for i := range lobbies {
		if code := c.nodes[i%3].do("POST", fmt.Sprintf("/api/lobbies/l%d/rooms", i), map[string]any{"roomId": "r", "name": fmt.Sprint("R", i)}, nil); code != 201 {
			t.Fatalf("create room in lobby l%d: %d", i, code)
		}
	}
	if code := c.nodes[1].do("POST", "/api/room-manager/rooms", map[string]any{"roomId": "g", "name": "G", "gameType": "competitive"}, nil); code != 201 {
		t.Fatalf("create game room: %d", code)
	}

	load := startChatLoad(c, "bk", 3)
	load.waitAcks(100, 60*time.Second)
	load.mu.Lock()
	before := maps.Clone(load.acked)
	load.mu.Unlock()
	file := filepath.Join(t.TempDir(), "cluster.jsonl.gz")
	var out, errOut bytes.Buffer
	if code := run([]string{"backup", "-scope", "cluster", "-from", c.nodes[1].url(""), "-out", file, "-admin-token-file", adminTokenFile(t)}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut.String())
	}
	t.Logf("%s", bytes.TrimSpace(out.Bytes()))
	load.waitAcks(load.ackCount()+50, 60*time.Second) // the cluster kept serving
	load.finish()

	// checkServes asserts n serves what the backup holds.
	checkServes := func(what string, n *node, c *testCluster) {
		t.Helper()
		history := (&chatLoad{c: c, room: "bk"}).history(n)
		got := map[string]string{}
		for _, m := range history {
			got[m.ClientMsgID] = m.ID
		}
		for cmid, id := range before {
			if got[cmid] != id {
				t.Errorf("%s: message %s (id %s) acknowledged before the backup is missing", what, cmid, id)
			}
		}
		for i := range lobbies {
			var room struct{ Name string }
			if code := n.do("GET", fmt.Sprintf("/api/lobbies/l%d/rooms/r", i), nil, &room); code != 200 || room.Name != fmt.Sprint("R", i) {
				t.Errorf("%s: lobby l%d room r: HTTP %d, name %q", what, i, code, room.Name)
			}
		}
		if code := n.do("GET", "/api/room-manager/rooms/g", nil, nil); code != 200 {
			t.Errorf("%s: game room g: HTTP %d", what, code)
		}
		// The restored objects take new writes.
		if code := n.do("POST", "/api/lobby/rooms", map[string]any{"roomId": "after", "name": "After"}, nil); code != 201 {
			t.Errorf("%s: create a room after the restore: HTTP %d", what, code)
		}
		t.Logf("%s: %d messages in history, all %d acknowledged before the backup among them", what, len(history), len(before))
	}

	fresh := startCluster(t, 3)
	out.Reset()
	if code := run([]string{"restore", "-in", file, "-to", fresh.nodes[2].url(""), "-admin-token-file", adminTokenFile(t)}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("restore into a cluster: exit %d: %s", code, errOut.String())
	}
	t.Logf("%s", bytes.TrimSpace(out.Bytes()))
	checkServes("restored cluster", fresh.nodes[0], fresh)

	dir := filepath.Join(t.TempDir(), "single")
	if code := run([]string{"restore", "-in", file, "-data", dir}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("restore into a data dir: exit %d: %s", code, errOut.String())
	}
	single := startNode(t, dir)
	checkServes("restored single node", single, &testCluster{t: t, nodes: []*node{single}})

	// A cluster backup is refused where it cannot go, and a node backup
	// is not taken for one.
	if code := run([]string{"restore", "-in", file, "-data", dir}, &out, &errOut, noEnv); code == 0 {
		t.Error("restore into a non-empty data directory succeeded")
	}
	nodeFile := filepath.Join(t.TempDir(), "node.tar.gz")
	if code := run([]string{"backup", "-from", single.url(""), "-out", nodeFile}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("node backup: exit %d: %s", code, errOut.String())
	}
	if code := run([]string{"restore", "-in", nodeFile, "-to", fresh.nodes[0].url(""), "-admin-token-file", adminTokenFile(t)}, &out, &errOut, noEnv); code != 2 {
		t.Errorf("restore of a node backup into a cluster: exit %d, want 2", code)
	}
}
