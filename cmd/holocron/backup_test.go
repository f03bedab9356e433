package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestBackupUnderLoadRestoresEveryAcknowledgedMessage(t *testing.T) {
	n := startNode(t, t.TempDir())
	if code := n.do("POST", "/api/lobby/rooms", map[string]any{"roomId": "bk", "name": "Backup"}, nil); code != 201 {
		t.Fatalf("create room: %d", code)
	}
	acks := make(chan ack, 1<<16)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			chatSender(t, n, "bk", fmt.Sprintf("b%d", i), acks)
		}()
	}
	acked := map[string]string{}
	collect := func(until int) {
		timeout := time.After(60 * time.Second)
		for len(acked) < until {
			select {
			case a := <-acks:
				acked[a.clientMsgID] = a.id
			case <-timeout:
				t.Fatalf("only %d acks", len(acked))
			}
		}
	}
	collect(100)
	// Everything acknowledged before the backup starts must be in it.
	before := map[string]string{}
	for k, v := range acked {
		before[k] = v
	}
	file := filepath.Join(t.TempDir(), "backup.tar.gz")
	var out, errOut bytes.Buffer
	if code := run([]string{"backup", "-from", n.url(""), "-out", file}, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut.String())
	}
	collect(len(acked) + 50) // the node kept serving during and after the backup
	n.stop()
	wg.Wait()

	restored := filepath.Join(t.TempDir(), "restored")
	if code := run([]string{"restore", "-in", file, "-data", restored}, &out, &errOut, func(string) string { return "" }); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errOut.String())
	}
	r := startNode(t, restored)
	var page struct {
		Messages []struct {
			ID          string `json:"id"`
			ClientMsgID string `json:"clientMsgId"`
		} `json:"messages"`
	}
	if code := r.do("GET", "/api/lobby/rooms/bk/messages?limit=1000", nil, &page); code != 200 {
		t.Fatalf("history of the restored node: %d", code)
	}
	got := map[string]string{}
	for _, m := range page.Messages {
		got[m.ClientMsgID] = m.ID
	}
	for cmid, id := range before {
		if got[cmid] != id {
			t.Errorf("message %s (id %s) acknowledged before the backup is missing after restore", cmid, id)
		}
	}
	t.Logf("%d messages acknowledged before the backup, all restored; %d in the restored history", len(before), len(page.Messages))

	// A restore never lands on existing data, and refuses what is not a backup.
	if code := run([]string{"restore", "-in", file, "-data", restored}, &out, &errOut, func(string) string { return "" }); code == 0 {
		t.Error("restore into a non-empty data directory succeeded")
	}
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not a backup"), 0o644)
	if code := run([]string{"restore", "-in", junk, "-data", filepath.Join(t.TempDir(), "x")}, &out, &errOut, func(string) string { return "" }); code == 0 {
		t.Error("restore of a junk file succeeded")
	}
}
