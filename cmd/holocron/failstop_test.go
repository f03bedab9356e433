package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/internal/testenv"
	"github.com/holocron-run/holocron/runtime/runtimetest"
)

// The tests here give a node a real disk that fills up: a small tmpfs as
// its data directory, filled by a file written until ENOSPC. The tmpfs is
// smaller than the 70 MiB that Pebble preallocates for a WAL (110 % of the
// 64 MiB memtable), so the preallocation fails (Pebble ignores that) and
// the WAL takes pages as it grows: once the disk is full, the next commit's
// WAL write fails with ENOSPC. A larger tmpfs would let the WAL write into
// its preallocated pages and fail only much later.
const failStopTmpfsMiB = 32

// mountTmpfs mounts a tmpfs of mib MiB on a new temporary directory,
// unmounted when the test ends (after the nodes on it were killed: their
// clean-ups are registered later, so they run first).
func mountTmpfs(t *testing.T, mib int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0755", mib)); err != nil {
		t.Fatalf("mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", dir, err)
			}
		}
	})
	return dir
}

// fillDisk writes a file into dir until the file system has no space
// left, and returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatalf("create filler: %v", err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4 << 10} {
		buf := make([]byte, size)
		for err == nil {
			_, err = f.Write(buf)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("fill %s: %v, want ENOSPC", dir, err)
		}
		err = nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		t.Logf("disk %s full: %d bytes free", dir, st.Bavail*uint64(st.Bsize))
	}
	return path
}

// chatSession joins room as player through n and sends messages one at a
// time until the socket ends or stop is closed, reporting each one echoed
// back to it (the echo leaves the node only once the message is durable).
// It returns the close code the socket ended with, 0 if it ended without a
// close frame (or never opened, or was stopped).
func chatSession(n *node, room, player string, seq *int, acks chan<- ack, stop <-chan struct{}) int {
	ws, _, err := dialer.Dial(n.wsURL("/api/lobby/websocket"), nil)
	if err != nil {
		return 0
	}
	defer ws.Close()
	var closeErr *websocket.CloseError
	read := func() (runtimetest.Frame, bool) {
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		var f runtimetest.Frame
		err := ws.ReadJSON(&f)
		if err != nil {
			errors.As(err, &closeErr)
		}
		return f, err == nil
	}
	code := func() int {
		if closeErr != nil {
			return closeErr.Code
		}
		return 0
	}
	if ws.WriteJSON(map[string]any{"type": "join_room", "roomId": room, "playerId": player, "playerName": player}) != nil {
		return 0
	}
	for {
		f, ok := read()
		if !ok {
			return code()
		}
		if f.Type() == "room_joined" {
			break
		}
	}
	for {
		select {
		case <-stop:
			return 0
		default:
		}
		*seq++
		cmid := fmt.Sprintf("%s-%06d", player, *seq)
		if ws.WriteJSON(map[string]any{"type": "send_message", "roomId": room, "playerId": player,
			"content": "message " + cmid, "clientMsgId": cmid}) != nil {
			// The close frame may be waiting already.
			for {
				if _, ok := read(); !ok {
					return code()
				}
			}
		}
		for {
			f, ok := read()
			if !ok {
				return code()
			}
			if m := f.Obj("message"); f.Type() == "new_message" && m.Str("clientMsgId") == cmid && m.Str("senderId") == player {
				acks <- ack{clientMsgID: cmid, id: m.Str("id")}
				break
			}
		}
	}
}

// collectAcks gathers acknowledgements until want have arrived.
func collectAcks(t *testing.T, acks <-chan ack, acked map[string]string, want int, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for len(acked) < want {
		select {
		case a := <-acks:
			acked[a.clientMsgID] = a.id
		case <-timeout:
			t.Fatalf("only %d of %d acknowledgements within %s", len(acked), want, within)
		}
	}
}

// checkAcknowledgedInHistory fails unless every acknowledged message is in
// room's history through n exactly once, with the id its sender saw.
func checkAcknowledgedInHistory(t *testing.T, n *node, room string, acked map[string]string) {
	t.Helper()
	msgs := roomHistory(t, n, "/api/lobby", room)
	count := map[string]int{}
	ids := map[string]string{}
	for i, m := range msgs {
		if i > 0 && m.ID <= msgs[i-1].ID {
			t.Fatalf("history via %s out of order: %q after %q", n.addr, m.ID, msgs[i-1].ID)
		}
		count[m.ClientMsgID]++
		ids[m.ClientMsgID] = m.ID
	}
	missing := 0
	for cmid, id := range acked {
		switch {
		case count[cmid] != 1:
			missing++
			if missing <= 10 {
				t.Errorf("acknowledged message %s appears %d times in the history via %s", cmid, count[cmid], n.addr)
			}
		case ids[cmid] != id:
			t.Errorf("acknowledged message %s has id %s in the history, %s when acknowledged", cmid, ids[cmid], id)
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d acknowledged messages are not in the history (once) via %s", missing, len(acked), n.addr)
	}
	t.Logf("all %d acknowledged messages in the history via %s (%d messages)", len(acked), n.addr, len(msgs))
}

// readyzFailed polls n's /readyz until it answers 503 (returning the cause
// it reports) or the process exits or the deadline passes (failing t).
func readyzFailed(t *testing.T, n *node, within time.Duration) string {
	t.Helper()
	client := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(within)
	for ; time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if n.exited.Load() {
			t.Fatalf("%s exited before /readyz reported the failure", n.addr)
		}
		resp, err := client.Get(n.url("/readyz"))
		if err != nil {
			continue
		}
		var body struct{ Status, Error string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || err != nil || body.Status != "failed" || body.Error == "" {
			t.Fatalf("/readyz of %s: HTTP %d %+v (%v), want 503 with status failed and the error", n.addr, resp.StatusCode, body, err)
		}
		return body.Error
	}
	t.Fatalf("/readyz of %s did not turn 503 within %s", n.addr, within)
	return ""
}

// waitExit waits for n's process to exit and returns its exit code.
func waitExit(t *testing.T, n *node, within time.Duration) int {
	t.Helper()
	select {
	case <-n.done:
		return n.cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("%s still running %s after its storage failed", n.addr, within)
		return 0
	}
}

// checkFailStopLogs checks that the node logged its storage failure once,
// at error level, with the cause, and that it fail-stopped.
func checkFailStopLogs(t *testing.T, n *node, cause string) {
	t.Helper()
	failures, stops := 0, 0
	sc := bufio.NewScanner(bytes.NewReader(n.logs.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct{ Level, Msg, Err string }
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue // the last line is serve's plain error on stderr
		}
		switch {
		case line.Msg == "storage failed; every later commit is refused":
			failures++
			if line.Level != "ERROR" || !strings.Contains(line.Err, cause) {
				t.Errorf("storage failure logged as %q at %s, want ERROR with %q", line.Err, line.Level, cause)
			}
		case strings.HasPrefix(line.Msg, "fail-stop:"):
			stops++
		}
	}
	if failures != 1 || stops != 1 {
		t.Errorf("logged the storage failure %d times and the fail-stop %d times, want once each", failures, stops)
	}
}

// TestFullDiskFailStopsAndRestartKeepsAcknowledged: a single node whose
// disk fills up under chat traffic stops: /readyz turns 503 "failed" with
// the cause, new requests and WebSockets are refused, every socket closes
// 1012 (the client reconnects at once, elsewhere), the process exits 1.
// Restarted on the same directory once there is room, it has every message
// it acknowledged.
func TestFullDiskFailStopsAndRestartKeepsAcknowledged(t *testing.T) {
	testenv.NeedRoot(t, "mounting a tmpfs as a disk that fills up")
	dir := mountTmpfs(t, failStopTmpfsMiB)
	args := []string{"-history-limit", "100000", "-rate-limit", "-1"}
	n := startNode(t, dir, args...)
	const room = "full"
	if code := n.do("POST", "/api/lobby/rooms", map[string]any{"roomId": room, "name": "Full"}, nil); code != 201 {
		t.Fatalf("create room: %d", code)
	}

	acks := make(chan ack, 1<<16)
	codes := make(chan int, 8)
	const senders = 3
	for i := range senders {
		go func() {
			seq := 0
			codes <- chatSession(n, room, fmt.Sprintf("p%d", i), &seq, acks, nil)
		}()
	}
	acked := map[string]string{}
	collectAcks(t, acks, acked, 200, 60*time.Second)
	// A socket that never answers the close frame keeps the failed node
	// up for the 2s the runtime gives a peer to answer, so the test sees
	// it refuse work before it exits.
	silent := runtimetest.DialURL(t, n.wsURL("/api/lobby/websocket"), nil)

	filler := fillDisk(t, dir)
	cause := readyzFailed(t, n, 30*time.Second)
	failedAt := time.Now()
	if !strings.Contains(cause, "no space left on device") {
		t.Errorf("/readyz error %q does not name the cause (ENOSPC)", cause)
	}
	// No new work: requests and WebSocket upgrades are refused, unserved.
	var refused struct{ Code string }
	resp, err := http.Post(n.url("/api/lobby/rooms"), "application/json", strings.NewReader(`{"roomId":"late","name":"Late"}`))
	if err != nil {
		t.Fatalf("create a room on the failed node: %v", err)
	}
	decodeBody(t, resp, &refused)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("X-Holocron-Not-Served") == "" || refused.Code != "unavailable" {
		t.Errorf("create a room on the failed node: HTTP %d %+v, want 503 unavailable, not served", resp.StatusCode, refused)
	}
	if _, resp, err := dialer.Dial(n.wsURL("/api/lobby/websocket"), nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Errorf("WebSocket to the failed node: %v, HTTP %d; want refused with 503", err, status)
	}

	if code := waitExit(t, n, 15*time.Second); code != 1 {
		t.Fatalf("exit code %d after the storage failed, want 1", code)
	}
	t.Logf("exited 1, %s after /readyz turned 503", time.Since(failedAt).Round(time.Millisecond))
	checkFailStopLogs(t, n, "no space left on device")

	for range senders {
		if code := <-codes; code != websocket.CloseServiceRestart {
			t.Errorf("a sender's socket ended with close code %d, want 1012", code)
		}
	}
	for {
		_, err := silent.TryRead()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseServiceRestart) {
			t.Errorf("the silent socket ended with %v, want close 1012", err)
		}
		break
	}
	close(acks)
	for a := range acks {
		acked[a.clientMsgID] = a.id
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, dir, args...)
	checkAcknowledgedInHistory(t, n2, room, acked)
	// And it commits again.
	if code := n2.do("POST", "/api/lobby/rooms", map[string]any{"roomId": "after", "name": "After"}, nil); code != 201 {
		t.Fatalf("create a room after the restart: %d", code)
	}
}

// clusterTmpfsMiB sizes the cluster nodes' disks: under the WAL's
// preallocation (see failStopTmpfsMiB), above what a node writes in the
// test.
const clusterTmpfsMiB = 48

// TestClusterNodeWithFullDiskFailStops: the disk of the node leading the
// lobby fills up under chat traffic. That node fail-stops (/readyz 503
// "failed", its sockets closed 1012, exit 1) rather than linger as a member
// that can persist nothing; the two others elect a leader and go on serving
// the room with every acknowledged message. Restarted on its directory once
// there is room, it catches up and serves the same history.
func TestClusterNodeWithFullDiskFailStops(t *testing.T) {
	testenv.NeedRoot(t, "mounting tmpfs disks that fill up")
	c := &testCluster{t: t}
	for i := range 3 {
		c.names = append(c.names, fmt.Sprintf("n%d", i+1))
		c.gossip = append(c.gossip, freeGossipAddr(t))
		c.https = append(c.https, freeAddr(t))
		c.peers = append(c.peers, freeAddr(t))
		c.dirs = append(c.dirs, mountTmpfs(t, clusterTmpfsMiB))
	}
	c.start()
	const room = "full"
	if code := c.nodes[0].do("POST", "/api/lobby/rooms", map[string]any{"roomId": room, "name": "Full"}, nil); code != 201 {
		t.Fatalf("create room: %d", code)
	}

	// Senders go through every live node in turn, reconnecting when their
	// socket ends.
	acks := make(chan ack, 1<<16)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq := 0
			for attempt := i; ; attempt++ {
				select {
				case <-stop:
					return
				default:
				}
				if live := c.live(); len(live) > 0 {
					chatSession(live[attempt%len(live)], room, fmt.Sprintf("p%d", i), &seq, acks, stop)
				}
				time.Sleep(50 * time.Millisecond) // reconnect backoff
			}
		}()
	}
	acked := map[string]string{}
	collectAcks(t, acks, acked, 200, 60*time.Second)

	v := c.leaderOf("ChatLobby", "main")
	victim := c.nodes[v]
	silent := runtimetest.DialURL(t, victim.wsURL("/api/lobby/websocket"), nil)
	filler := fillDisk(t, c.dirs[v])
	cause := readyzFailed(t, victim, 30*time.Second)
	failedAt := time.Now()
	if !strings.Contains(cause, "no space left on device") {
		t.Errorf("/readyz error %q does not name the cause (ENOSPC)", cause)
	}
	if code := waitExit(t, victim, 15*time.Second); code != 1 {
		t.Fatalf("exit code %d of %s after its storage failed, want 1", code, c.names[v])
	}
	t.Logf("%s (the lobby's leader) exited 1, %s after /readyz turned 503", c.names[v], time.Since(failedAt).Round(time.Millisecond))
	checkFailStopLogs(t, victim, "no space left on device")
	for {
		if _, err := silent.TryRead(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseServiceRestart) {
				t.Errorf("a socket of the failed node ended with %v, want close 1012", err)
			}
			break
		}
	}

	// The others go on: new acknowledgements, through them only.
	collectAcks(t, acks, acked, len(acked)+200, 60*time.Second)
	close(stop)
	wg.Wait()
	close(acks)
	for a := range acks {
		acked[a.clientMsgID] = a.id
	}
	for _, n := range c.live() {
		checkAcknowledgedInHistory(t, n, room, acked)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c.nodes[v] = c.launch(v, false)
	c.waitConverged(3)
	checkAcknowledgedInHistory(t, c.nodes[v], room, acked)
	for i, dir := range c.dirs {
		var st syscall.Statfs_t
		if syscall.Statfs(dir, &st) == nil {
			t.Logf("%s's disk: %d KiB used of %d", c.names[i], (st.Blocks-st.Bfree)*uint64(st.Bsize)>>10, st.Blocks*uint64(st.Bsize)>>10)
		}
	}
}
