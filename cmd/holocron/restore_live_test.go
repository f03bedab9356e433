package main

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// TestClusterRestoreIntoLiveClusterWithConnectedClients restores a cluster
// backup (`restore -to`) into a running cluster whose copy of the same
// object, the default lobby, has clients connected and joined to the
// restored room, through every node (so both on the object's owner and
// forwarded). What the product promises (runtime.Namespace.Restore, README
// "Backup and restore of a cluster"): restore replaces each object's whole
// state through its owner; the object's sockets close with 1012 "object
// restored" and clients come back to the restored state; it returns once
// the state is durable. So:
//   - the restore exits 0, in bounded time, with no node crashing or
//     hanging;
//   - every socket of the restored object gets close 1012 "object restored";
//     a socket of an object the backup does not hold stays open and works;
//   - the clients rejoin, and the room is the backup's: its record (name)
//     and its history begin with exactly the backup's messages, same ids
//     and contents; what the live cluster had before the restore is gone
//     (replaced, not merged); what follows is only what the clients did
//     after the restore (a closed socket leaves its rooms: a leave message;
//     a rejoin: a join message; the messages they send now), with ids after
//     the backup's.
func TestClusterRestoreIntoLiveClusterWithConnectedClients(t *testing.T) {
	noEnv := func(string) string { return "" }

	// Cluster A: the room the backup will hold.
	a := startCluster(t, 3)
	waitSettled(t, a)
	if code := a.nodes[0].do("POST", "/api/lobby/rooms", map[string]any{"roomId": "live", "name": "From the backup"}, nil); code != 201 {
		t.Fatalf("create room on A: HTTP %d", code)
	}
	var writers []*restoreLiveClient
	for i := range 2 {
		w := restoreLiveDial(t, a.nodes[i], "/api/lobby/websocket", fmt.Sprintf("a%d", i))
		w.join("live")
		writers = append(writers, w)
	}
	for k := range 20 {
		for _, w := range writers {
			w.send("live", fmt.Sprintf("%s-%02d", w.player, k))
		}
	}
	// The writers stay connected (their leave messages would otherwise be
	// written while the backup runs): nothing writes to A from here on,
	// which the history read before and after the backup confirms.
	backupHistory := roomHistory(t, a.nodes[2], "/api/lobby", "live")
	file := filepath.Join(t.TempDir(), "cluster.jsonl.gz")
	var out, errOut bytes.Buffer
	if code := run([]string{"backup", "-scope", "cluster", "-from", a.nodes[1].url(""), "-out", file, "-admin-token-file", adminTokenFile(t)}, &out, &errOut, noEnv); code != 0 {
		t.Fatalf("backup of A: exit %d: %s", code, errOut.String())
	}
	if after := roomHistory(t, a.nodes[2], "/api/lobby", "live"); !slices.Equal(after, backupHistory) {
		t.Fatalf("A's history changed while it was backed up: %d messages before, %d after", len(backupHistory), len(after))
	}
	texts := map[string]int{}
	for _, m := range backupHistory {
		if m.Type == "text" {
			texts[m.ClientMsgID]++
		}
	}
	for _, w := range writers {
		for k := range 20 {
			if cmid := fmt.Sprintf("%s-%02d", w.player, k); texts[cmid] != 1 {
				t.Fatalf("A's history holds %s %d times, want once", cmid, texts[cmid])
			}
		}
	}
	if len(texts) != 40 {
		t.Fatalf("A's history holds %d texts, want the 40 sent", len(texts))
	}
	// Done with A: its CPU is B's from here on.
	for _, n := range a.nodes {
		n.kill9()
	}

	// Cluster B: the same lobby and room, with other contents, and clients
	// joined to it through every node.
	b := startCluster(t, 3)
	waitSettled(t, b)
	if code := b.nodes[0].do("POST", "/api/lobby/rooms", map[string]any{"roomId": "live", "name": "Before the restore"}, nil); code != 201 {
		t.Fatalf("create room on B: HTTP %d", code)
	}
	if code := b.nodes[1].do("POST", "/api/lobbies/bystander/rooms", map[string]any{"roomId": "side", "name": "Side"}, nil); code != 201 {
		t.Fatalf("create room in lobby bystander on B: HTTP %d", code)
	}
	owner := b.leaderOf("ChatLobby", "main")
	var clients []*restoreLiveClient
	for i, n := range b.nodes {
		cl := restoreLiveDial(t, n, "/api/lobby/websocket", fmt.Sprintf("b%d", i))
		cl.join("live")
		clients = append(clients, cl)
	}
	for _, cl := range clients {
		for k := range 2 {
			cl.send("live", fmt.Sprintf("%s-pre-%d", cl.player, k))
		}
	}
	bystander := restoreLiveDial(t, b.nodes[(owner+1)%3], "/api/lobbies/bystander/websocket", "s")
	bystander.join("side")
	bystander.send("side", "s-pre")
	before := roomHistory(t, b.nodes[0], "/api/lobby", "live")
	t.Logf("B's lobby is served by %s; its room holds %d messages; clients joined via %v", b.names[owner], len(before), b.names)
	// Every socket is open right before the restore.
	for _, cl := range append(slices.Clone(clients), bystander) {
		cl.ping()
	}

	// The restore, into the live cluster.
	type result struct {
		code        int
		out, errOut string
	}
	done := make(chan result, 1)
	started := time.Now()
	go func() {
		var out, errOut bytes.Buffer
		code := run([]string{"restore", "-in", file, "-to", b.nodes[2].url(""), "-admin-token-file", adminTokenFile(t)}, &out, &errOut, noEnv)
		done <- result{code, out.String(), errOut.String()}
	}()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("restore into the live cluster: exit %d: %s", r.code, r.errOut)
		}
		t.Logf("%s (%s)", strings.TrimSpace(r.out), time.Since(started).Round(time.Millisecond))
	case <-time.After(2 * time.Minute):
		t.Fatalf("restore into the live cluster did not finish within 2 minutes")
	}

	// Every socket of the restored object is closed, as documented.
	for _, cl := range clients {
		cl.expectClose(websocket.CloseServiceRestart, "object restored", 20*time.Second)
	}
	// The bystander's object was not in the backup: untouched (send fails
	// the test on a close "object restored").
	bystander.send("side", "s-post")
	var side []string
	for _, m := range roomHistory(t, b.nodes[0], "/api/lobbies/bystander", "side") {
		if m.Type == "text" {
			side = append(side, m.Content)
		}
	}
	if !slices.Equal(side, []string{"s-pre", "s-post"}) {
		t.Errorf("lobby bystander's room holds the texts %q after the restore, want [s-pre s-post]", side)
	}

	// The clients come back to the restored state.
	for i, cl := range clients {
		again := restoreLiveDial(t, b.nodes[i], "/api/lobby/websocket", cl.player)
		if joined := again.join("live"); joined.Obj("room").Str("name") != "From the backup" {
			t.Errorf("%s rejoined room %q (via %s), want the backup's \"From the backup\"", cl.player, joined.Obj("room").Str("name"), b.names[i])
		}
		clients[i] = again
	}
	for _, cl := range clients {
		cl.send("live", cl.player+"-post")
	}

	// Seen from every node: the backup's room, then only what came after.
	for _, n := range b.nodes {
		var room struct {
			Name string `json:"name"`
		}
		if code := n.do("GET", "/api/lobby/rooms/live", nil, &room); code != 200 || room.Name != "From the backup" {
			t.Errorf("room via %s after the restore: HTTP %d, name %q, want the backup's \"From the backup\"", n.addr, code, room.Name)
		}
		got := roomHistory(t, n, "/api/lobby", "live")
		if why := restoreLiveCheckHistory(got, backupHistory); why != "" {
			t.Errorf("history via %s after the restore: %s\n  backup: %s\n  now:    %s", n.addr, why,
				restoreLiveSummary(backupHistory), restoreLiveSummary(got))
		} else if n == b.nodes[0] {
			t.Logf("history after the restore: the backup's %d messages, then %s", len(backupHistory), restoreLiveSummary(got[len(backupHistory):]))
		}
	}

	// No node crashed or hung, and the cluster is whole.
	for i, n := range b.nodes {
		if n.exited.Load() {
			t.Fatalf("%s exited during the restore", b.names[i])
		}
		if code := n.do("GET", "/readyz", nil, nil); code != 200 {
			t.Errorf("%s /readyz after the restore: HTTP %d", b.names[i], code)
		}
	}
	b.waitConverged(3)
}

// restoreLiveCheckHistory says how got, a room's history after the
// restore, differs from "the backup's messages, then only what the
// clients did after the restore" ("" if it does not).
func restoreLiveCheckHistory(got, backup []historyMessage) string {
	if len(got) < len(backup) {
		return fmt.Sprintf("%d messages, fewer than the backup's %d", len(got), len(backup))
	}
	for i, m := range backup {
		if got[i] != m {
			return fmt.Sprintf("message %d is %+v, the backup's is %+v", i, got[i], m)
		}
	}
	last := backup[len(backup)-1].ID
	presence, posts := map[string]string{}, map[string]int{}
	for _, m := range got[len(backup):] {
		if m.ID <= last {
			return fmt.Sprintf("message %+v after the backup's has id not after its last %s", m, last)
		}
		if !strings.HasPrefix(m.SenderID, "b") {
			return fmt.Sprintf("message %+v after the backup's is not by a client of the live cluster", m)
		}
		switch {
		case m.Type == "join" || m.Type == "leave":
			presence[m.SenderID] += m.Type[:1]
		case m.Type == "text" && m.Content == m.SenderID+"-post":
			posts[m.SenderID]++
		default:
			// Notably a text sent before the restore: merged, not replaced.
			return fmt.Sprintf("message %+v is neither the backup's nor from after the restore", m)
		}
	}
	// A player's presence messages after the restore: its old socket's
	// leave, then its rejoin (each pair once more per reconnect). Both are
	// missing when the rejoin came first, as the player never left.
	for _, p := range []string{"b0", "b1", "b2"} {
		seq := presence[p]
		if posts[p] != 1 || strings.ReplaceAll(seq, "lj", "") != "" {
			return fmt.Sprintf("after the backup's messages, %s has %d posts and the presence messages %q (l: leave, j: join); want one post and leave-join pairs",
				p, posts[p], seq)
		}
	}
	return ""
}

// restoreLiveSummary is a compact rendering of a history for failures.
func restoreLiveSummary(msgs []historyMessage) string {
	var parts []string
	for _, m := range msgs {
		id := strings.TrimLeft(m.ID, "0")
		switch m.Type {
		case "text":
			parts = append(parts, id+":"+m.Content)
		default:
			parts = append(parts, id+":"+m.Type+"("+m.SenderID+")")
		}
	}
	return fmt.Sprintf("%d messages [%s]", len(msgs), strings.Join(parts, " "))
}

// restoreLiveClient is one player's chat socket to one node. A close that
// sends the client elsewhere (1012 "moved": the object's partition changed
// leader; 1001: the node is going away) is not what the tests look at: the
// client reconnects through the same node, rejoins its rooms and retries
// (a send with the same clientMsgId, which the lobby stores once), and
// records the close.
type restoreLiveClient struct {
	t      *testing.T
	n      *node
	path   string
	player string
	ws     *websocket.Conn
	rooms  []string
	// closes are the closes it reconnected after, as "code reason".
	closes []string
}

func restoreLiveDial(t *testing.T, n *node, path, player string) *restoreLiveClient {
	t.Helper()
	c := &restoreLiveClient{t: t, n: n, path: path, player: player}
	if err := c.dial(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatalf("%s: dial %s via %s: %v", player, path, n.addr, err)
	}
	t.Cleanup(func() { c.ws.Close() })
	return c
}

// dial connects (retrying a refused upgrade, as while a partition has no
// leader) until deadline.
func (c *restoreLiveClient) dial(deadline time.Time) error {
	for {
		ws, resp, err := dialer.Dial(c.n.wsURL(c.path), nil)
		if err == nil {
			if c.ws != nil {
				c.ws.Close()
			}
			c.ws = ws
			return nil
		}
		if resp != nil {
			err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// movedAway reports whether err is a close that sends a client elsewhere.
func movedAway(err error) bool {
	return websocket.IsCloseError(err, websocket.CloseServiceRestart, websocket.CloseGoingAway) &&
		!strings.Contains(err.Error(), "object restored")
}

// do runs op (a request and the wait for its answer) until it succeeds,
// reconnecting and rejoining after a close that sends the client
// elsewhere; other errors fail the test.
func (c *restoreLiveClient) do(what string, op func() (runtimetest.Frame, error)) runtimetest.Frame {
	c.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		f, err := op()
		if err == nil {
			return f
		}
		if !movedAway(err) || time.Now().After(deadline) {
			c.t.Fatalf("%s via %s: %s: %v (reconnected after %v)", c.player, c.n.addr, what, err, c.closes)
		}
		c.closes = append(c.closes, err.Error())
		if err := c.dial(deadline); err != nil {
			c.t.Fatalf("%s via %s: %s: reconnect: %v", c.player, c.n.addr, what, err)
		}
		for _, room := range c.rooms {
			if _, err := c.tryJoin(room); err != nil && !movedAway(err) {
				c.t.Fatalf("%s via %s: %s: rejoin %s: %v", c.player, c.n.addr, what, room, err)
			}
		}
	}
}

// next returns the next frame (20s at most).
func (c *restoreLiveClient) next() (runtimetest.Frame, error) {
	c.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	var f runtimetest.Frame
	err := c.ws.ReadJSON(&f)
	return f, err
}

func (c *restoreLiveClient) tryJoin(room string) (runtimetest.Frame, error) {
	if err := c.ws.WriteJSON(map[string]any{"type": "join_room", "roomId": room, "playerId": c.player, "playerName": c.player}); err != nil {
		return nil, err
	}
	for {
		f, err := c.next()
		if err != nil {
			return nil, err
		}
		switch f.Type() {
		case "room_joined":
			return f, nil
		case "error", "join_failed":
			return nil, fmt.Errorf("join %s refused: %v", room, f)
		}
	}
}

// join joins room and returns room_joined (other frames are skipped).
func (c *restoreLiveClient) join(room string) runtimetest.Frame {
	c.t.Helper()
	f := c.do("join "+room, func() (runtimetest.Frame, error) { return c.tryJoin(room) })
	if !slices.Contains(c.rooms, room) {
		c.rooms = append(c.rooms, room)
	}
	return f
}

// send sends content (also its clientMsgId) and waits for its echo.
func (c *restoreLiveClient) send(room, content string) {
	c.t.Helper()
	c.do("send "+content, func() (runtimetest.Frame, error) {
		if err := c.ws.WriteJSON(map[string]any{"type": "send_message", "roomId": room, "playerId": c.player, "content": content, "clientMsgId": content}); err != nil {
			return nil, err
		}
		for {
			f, err := c.next()
			if err != nil {
				return nil, err
			}
			if f.Type() == "error" {
				return nil, fmt.Errorf("send %s refused: %v", content, f)
			}
			if m := f.Obj("message"); f.Type() == "new_message" && m.Str("clientMsgId") == content {
				return f, nil
			}
		}
	})
}

// ping checks the socket is open and answering, with no reconnect.
func (c *restoreLiveClient) ping() {
	c.t.Helper()
	if err := c.ws.WriteJSON(map[string]any{"type": "ping"}); err != nil {
		c.t.Fatalf("%s via %s: ping: %v", c.player, c.n.addr, err)
	}
	for {
		f, err := c.next()
		if err != nil {
			c.t.Fatalf("%s via %s: waiting for pong: %v", c.player, c.n.addr, err)
		}
		if f.Type() == "pong" {
			return
		}
	}
}

// expectClose reads (skipping frames) until the socket ends, which must be
// a close frame with code and reason.
func (c *restoreLiveClient) expectClose(code int, reason string, within time.Duration) {
	c.t.Helper()
	c.ws.SetReadDeadline(time.Now().Add(within))
	var frames []string
	for {
		_, data, err := c.ws.ReadMessage()
		if err == nil {
			frames = append(frames, string(data))
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Text != reason {
			c.t.Errorf("%s via %s: socket ended with %v (after frames %q), want close %d %q", c.player, c.n.addr, err, frames, code, reason)
		}
		return
	}
}

// waitSettled (used beyond this file) waits until c is done moving partitions and
// leaders after its start: every partition at its ring placement and led
// by its preferred node, so that no leadership change (whose close 1012
// "moved" would end the sockets for another reason) is under way.
func waitSettled(t *testing.T, c *testCluster) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		why := "statuses incomplete"
		if statuses, complete := replaceTryStatuses(c); complete {
			if why = replacePlaced(statuses); why == "" {
				for p, l := range replaceLeaderViewsOf(statuses) {
					if len(l.preferred) > 0 && l.node != l.preferred[0] {
						why = fmt.Sprintf("partition %d led by %s, its preferred leader is %s", p, l.node, l.preferred[0])
						break
					}
				}
			}
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not settled within 90s: %s", why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
