package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/internal/testenv"
)

// readmeSecuring returns the shell blocks of the README's "Securing a
// cluster": the certificate steps and the serve command.
func readmeSecuring(t *testing.T) (certs, serve string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(moduleRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## Securing a cluster\n")
	if !ok {
		t.Fatal(`README has no "## Securing a cluster"`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(section, -1)
	if len(blocks) < 2 {
		t.Fatalf("README's Securing a cluster has %d shell blocks, want the certificate steps and the serve command", len(blocks))
	}
	return blocks[0][1], strings.ReplaceAll(blocks[1][1], "\\\n", " ")
}

// moduleRoot is the repository root (the package runs in cmd/holocron).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestREADMESecuringACluster runs the README's "Securing a cluster" as an
// operator would on three machines: the certificate commands as written
// (n2 and n3 with their names and addresses), each node's files copied to
// it, and the serve command as written in three network namespaces with
// one address each (the README's 10.0.0.11-13, moved to a subnet this
// machine has no route for). The nodes form a
// cluster that chats through each of them; one is killed with -9 and
// started again with the same command, and chats again.
func TestREADMESecuringACluster(t *testing.T) {
	lab := newNetLabAt(t, []int{11, 12, 13})
	certSteps, serve := readmeSecuring(t)
	// `holocron` on PATH is the binary under test.
	bin := t.TempDir()
	if err := os.Symlink(binary, filepath.Join(bin, "holocron")); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	run := func(dir, script string) {
		t.Helper()
		cmd := exec.Command("sh", "-ec", script)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s\n%v\n%s", script, err, out)
		}
	}
	// The README's addresses (10.0.0.11-13) are the lab's, whose subnet
	// is one this machine has no route for.
	lan := strings.NewReplacer("10.0.0.11", lab.ip(0), "10.0.0.12", lab.ip(1), "10.0.0.13", lab.ip(2))
	certSteps, serve = lan.Replace(certSteps), lan.Replace(serve)
	forNode := func(s string, i int) string {
		name := fmt.Sprintf("n%d", i+1)
		return strings.NewReplacer("n1", name, lab.ip(0)+",", lab.ip(i)+",", lab.ip(0)+":", lab.ip(i)+":").Replace(s)
	}
	// The operator's machine: the whole first block for n1, its per-node
	// part for the others.
	op := t.TempDir()
	run(op, certSteps)
	_, perNode, ok := strings.Cut(certSteps, "# for each node")
	if !ok {
		t.Fatal(`the certificate steps have no "# for each node" part`)
	}
	for i := 1; i < 3; i++ {
		run(op, forNode(perNode[strings.Index(perNode, "\n")+1:], i))
	}
	type proc struct {
		cmd  *exec.Cmd
		done chan error
		logs *proctest.LogBuffer
	}
	dirs := make([]string, 3)
	for i := range 3 {
		dirs[i] = t.TempDir()
		run(op, fmt.Sprintf("cp -r certs-n%d gossip.key %s/", i+1, dirs[i]))
		if _, err := os.Stat(filepath.Join(dirs[i], "ca.key")); err == nil {
			t.Fatal("a node got the CA key")
		}
	}
	start := func(i int) *proc {
		t.Helper()
		command := forNode(serve, i)
		if i > 0 {
			command = strings.ReplaceAll(command, " -bootstrap", "")
		}
		p := &proc{done: make(chan error, 1), logs: &proctest.LogBuffer{}}
		p.cmd = exec.Command("ip", "netns", "exec", lab.spaces[i], "sh", "-c", "exec "+strings.TrimSpace(command))
		p.cmd.Dir, p.cmd.Env, p.cmd.Stdout, p.cmd.Stderr = dirs[i], env, p.logs, p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.done <- p.cmd.Wait() }()
		t.Cleanup(func() {
			p.cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("n%d log tail:\n%s", i+1, tail(p.logs.String(), 2000))
			}
		})
		testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("n%d ready", i+1), func() error {
			select {
			case err := <-p.done:
				p.done <- err
				t.Fatalf("n%d exited: %v\n%s", i+1, err, p.logs.String())
			default:
			}
			resp, err := http.Get("http://" + lab.ip(i) + ":8080/readyz")
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return fmt.Errorf("readyz %d", resp.StatusCode)
			}
			return nil
		})
		return p
	}
	procs := make([]*proc, 3)
	for i := range 3 {
		procs[i] = start(i)
	}
	nodes := make([]*node, 3)
	for i := range 3 {
		nodes[i] = &node{t: t, addr: lab.ip(i) + ":8080"}
	}
	// One round of chat: a socket on every node joins the room, and a
	// message sent through each node reaches all three. A freshly formed
	// cluster still moves partitions to their places (sockets are closed
	// 1012 and clients reconnect), so rounds are tried until one passes.
	round := func(room string) error {
		if code := nodes[0].doWith("POST", "/api/lobby/rooms", nil, map[string]any{"roomId": room, "name": room}, nil); code != 201 && code != 409 {
			return fmt.Errorf("create room through n1: HTTP %d", code)
		}
		var conns []*websocket.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		read := func(c *websocket.Conn, typ, content string) error {
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				var f map[string]any
				if err := c.ReadJSON(&f); err != nil {
					return fmt.Errorf("waiting for %s %q: %w", typ, content, err)
				}
				m, _ := f["message"].(map[string]any)
				if f["type"] == typ && (content == "" || m["content"] == content) {
					return nil
				}
			}
		}
		for i, n := range nodes {
			c, _, err := websocket.DefaultDialer.Dial(n.wsURL("/api/lobby/websocket"), nil)
			if err != nil {
				return fmt.Errorf("dial n%d: %w", i+1, err)
			}
			conns = append(conns, c)
			c.WriteJSON(map[string]any{"type": "join_room", "roomId": room, "playerId": fmt.Sprint("p", i), "playerName": fmt.Sprint("P", i)})
			if err := read(c, "room_joined", ""); err != nil {
				return fmt.Errorf("n%d: %w", i+1, err)
			}
		}
		for i, c := range conns {
			content := fmt.Sprintf("via n%d at %s", i+1, time.Now().Format(time.RFC3339Nano))
			c.WriteJSON(map[string]any{"type": "send_message", "roomId": room, "playerId": fmt.Sprint("p", i), "content": content})
			for j, other := range conns {
				if err := read(other, "new_message", content); err != nil {
					return fmt.Errorf("socket on n%d: %w", j+1, err)
				}
			}
		}
		return nil
	}
	chat := func(room string) {
		t.Helper()
		testenv.WaitFor(t, 90*time.Second, "a round of chat through every node", func() error { return round(room) })
	}
	chat("secured")
	procs[1].cmd.Process.Signal(syscall.SIGKILL)
	<-procs[1].done
	procs[1].done <- nil
	procs[1] = start(1)
	chat("after-restart")
}
