package node_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/internal/testenv"
)

// edgeNode is testdata/edgenode built once: a node whose type, Room,
// broadcasts to the sockets of one object.
var edgeNode string

// edgeClient is one test client's socket and what it has received.
type edgeClient struct {
	conn *websocket.Conn
	mu   sync.Mutex
	got  []string
	// closed is the close the client read (0 while open).
	closed int
	done   chan struct{}
}

func dialEdge(t *testing.T, n *proctest.Proc, path string) *edgeClient {
	t.Helper()
	conn, resp, err := websocket.DefaultDialer.Dial(n.WSURL(path), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s through %s: %v (%d)", path, n.Addr, err, status)
	}
	c := &edgeClient{conn: conn, done: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go func() {
		defer close(c.done)
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				c.mu.Lock()
				c.closed = websocket.CloseAbnormalClosure
				if ce, ok := err.(*websocket.CloseError); ok {
					c.closed = ce.Code
				}
				c.mu.Unlock()
				return
			}
			c.mu.Lock()
			c.got = append(c.got, string(msg))
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *edgeClient) received() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.got)
}

// roomState is what a Room answers at /state.
type roomState struct {
	Open   int
	Closes []int
}

// A 3-node cluster; one Room owned by one node, its sockets connected
// through all three. The sockets stay on the nodes they reached (edge
// sockets): the owner keeps every socket's record and no other node
// relays; a broadcast costs the owner one message per edge node, not one
// per socket; frames reach every socket in commit order; a client's
// messages, too-large messages, refusals and closes cross in both
// directions.
func TestEdgeSocketsFanOutOncePerNode(t *testing.T) {
	c := proctest.StartCluster(t, edgeNode, 3)
	owner := c.LeaderOf("Room", "r")
	const perNode = 10
	var clients []*edgeClient
	for i := range 3 {
		for range perNode {
			clients = append(clients, dialEdge(t, c.Nodes[i], "/objects/Room/r/ws"))
		}
	}
	testenv.WaitFor(t, 30*time.Second, "every socket on the owner's room", func() error {
		var st roomState
		if code := ask(t, c.Nodes[owner], "GET", "/objects/Room/r/state", &st); code != http.StatusOK || st.Open != 3*perNode {
			return fmt.Errorf("%d: %d open", code, st.Open)
		}
		return nil
	})
	for i, n := range c.Nodes {
		want := float64(perNode)
		if i == owner {
			want = 0
		}
		if got, _ := n.Metric("holocron_websockets_edge"); got != want {
			t.Errorf("node %d (owner %d) holds %v edge sockets, want %v", i, owner, got, want)
		}
	}
	if got, _ := c.Nodes[owner].Metric("holocron_websockets_open"); got != 3*perNode {
		t.Errorf("the owner has %v socket records, want %d", got, 3*perNode)
	}

	messagesBefore, _ := c.Nodes[owner].Metric("holocron_edge_frame_messages_sent_total")
	framesBefore, _ := c.Nodes[owner].Metric("holocron_edge_socket_frames_sent_total")
	const broadcasts = 50
	var res struct{ Sent int }
	if code := ask(t, c.Nodes[(owner+1)%3], "POST", fmt.Sprintf("/objects/Room/r/broadcast?n=%d", broadcasts), &res); code != http.StatusOK || res.Sent != broadcasts {
		t.Fatalf("broadcast: %d %+v", code, res)
	}
	var want []string
	for i := range broadcasts {
		want = append(want, fmt.Sprintf("%d:b%d", i+1, i))
	}
	for i, cl := range clients {
		testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("client %d's broadcasts", i), func() error {
			if got := cl.received(); len(got) < broadcasts {
				return fmt.Errorf("%d of %d", len(got), broadcasts)
			}
			return nil
		})
		if got := cl.received(); !slices.Equal(got, want) {
			t.Fatalf("client %d (through node %d) received %v, want the broadcasts once each, in order: %v", i, i/perNode, got, want)
		}
	}
	messages, _ := c.Nodes[owner].Metric("holocron_edge_frame_messages_sent_total")
	frames, _ := c.Nodes[owner].Metric("holocron_edge_socket_frames_sent_total")
	if got := messages - messagesBefore; got != 2*broadcasts {
		t.Errorf("the owner sent %v frame messages to the edges for %d broadcasts, want %d: one per broadcast and edge node", got, broadcasts, 2*broadcasts)
	}
	if got := frames - framesBefore; got != 2*perNode*broadcasts {
		t.Errorf("those messages carried %v socket frames, want %d", got, 2*perNode*broadcasts)
	}

	// A client's message through an edge, to the object and back.
	edge := clients[((owner+1)%3)*perNode]
	if err := edge.conn.WriteMessage(websocket.TextMessage, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := edge.conn.WriteMessage(websocket.TextMessage, []byte(strings.Repeat("x", 70<<10))); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the echo and the too-large error", func() error {
		got := edge.received()
		if len(got) >= broadcasts+2 {
			if tail := got[broadcasts:]; tail[0] != "echo:hello" || tail[1] != `{"error":"too_large"}` {
				t.Fatalf("after the broadcasts the edge client got %q, want the echo, then the too-large error", tail)
			}
			return nil
		}
		return fmt.Errorf("%d frames", len(got))
	})

	// The owner's refusal reaches the client as its HTTP answer.
	_, resp, err := websocket.DefaultDialer.Dial(c.Nodes[(owner+2)%3].WSURL("/objects/Room/r/ws?refuse=1"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("a refused upgrade through an edge: %v, status %d, want 403", err, status)
	}

	// A client that closes through an edge: the object sees its code.
	if err := edge.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4321, "bye")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the room to see the close", func() error {
		var st roomState
		ask(t, c.Nodes[owner], "GET", "/objects/Room/r/state", &st)
		if st.Open != 3*perNode-1 || !slices.Contains(st.Closes, 4321) {
			return fmt.Errorf("%+v", st)
		}
		return nil
	})
	testenv.WaitFor(t, 30*time.Second, "the edge to let the socket go", func() error {
		if got, _ := c.Nodes[(owner+1)%3].Metric("holocron_websockets_edge"); got != perNode-1 {
			return fmt.Errorf("%v edge sockets", got)
		}
		return nil
	})
}

// TestEdgeSocketsStayOpenWhenTheOwnerChanges: sockets of one Room
// connected through the two nodes that do not own it, while the room
// broadcasts (HTTP requests through those nodes, one broadcast each, sent
// again when they fail). Then the owner goes away: killed -9, paused
// (SIGSTOP, for longer than an election, then SIGCONT), handed over on
// SIGTERM, or the room moved by an operator. The edge sockets stay
// open: their nodes attach them to the new owner, which catches them up
// from their cursors, and every socket receives every broadcast the room
// committed exactly once, in order — the room's own count says how many.
func TestEdgeSocketsStayOpenWhenTheOwnerChanges(t *testing.T) {
	for _, fault := range []string{"kill9", "pause", "sigterm", "move"} {
		t.Run(fault, func(t *testing.T) {
			c := proctest.StartCluster(t, edgeNode, 3)
			owner := c.LeaderOf("Room", "r")
			edges := []*proctest.Proc{c.Nodes[(owner+1)%3], c.Nodes[(owner+2)%3]}
			var clients []*edgeClient
			for _, n := range edges {
				for range 5 {
					clients = append(clients, dialEdge(t, n, "/objects/Room/r/ws"))
				}
			}
			testenv.WaitFor(t, 30*time.Second, "every socket on the room", func() error {
				var st roomState
				if code := ask(t, c.Nodes[owner], "GET", "/objects/Room/r/state", &st); code != http.StatusOK || st.Open != len(clients) {
					return fmt.Errorf("%d: %d open", code, st.Open)
				}
				return nil
			})
			var acked atomic.Int64
			stop := make(chan struct{})
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				client := &http.Client{Timeout: 5 * time.Second}
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					req, _ := http.NewRequest(http.MethodPost, edges[i%2].URL("/objects/Room/r/broadcast?n=1"), nil)
					if resp, err := client.Do(req); err == nil {
						if resp.StatusCode == http.StatusOK {
							acked.Add(1)
						}
						resp.Body.Close()
					}
					time.Sleep(20 * time.Millisecond) // a chat's pace, not a flood
				}
			}()
			testenv.WaitFor(t, 30*time.Second, "broadcasts before the fault", func() error {
				if n := acked.Load(); n < 20 {
					return fmt.Errorf("%d acknowledged", n)
				}
				return nil
			})
			switch fault {
			case "kill9":
				c.Nodes[owner].Kill9()
			case "pause":
				// Far past an election: the others elect a leader, and the
				// edges move their sockets to it while the owner hangs.
				c.Nodes[owner].Pause(3 * time.Second)
			case "sigterm":
				if code := c.Nodes[owner].Stop(); code != 0 {
					t.Fatalf("SIGTERM: exit %d", code)
				}
			case "move":
				if code := ask(t, c.Nodes[owner], "POST", "/admin/objects/Room/r/move", nil); code/100 != 2 {
					t.Fatalf("move: %d", code)
				}
			}
			before := acked.Load()
			testenv.WaitFor(t, 60*time.Second, "broadcasts after the fault", func() error {
				if n := acked.Load() - before; n < 20 {
					return fmt.Errorf("%d acknowledged since", n)
				}
				return nil
			})
			close(stop)
			<-sent
			var st struct {
				roomState
				N          int
				Reattached int
			}
			testenv.WaitFor(t, 30*time.Second, "the room's count", func() error {
				if code := ask(t, edges[0], "GET", "/objects/Room/r/state", &st); code != http.StatusOK {
					return fmt.Errorf("GET state: %d", code)
				}
				return nil
			})
			if int64(st.N) < acked.Load() {
				t.Fatalf("the room counts %d broadcasts, fewer than the %d acknowledged", st.N, acked.Load())
			}
			var want []string
			for i := 1; i <= st.N; i++ {
				want = append(want, fmt.Sprintf("%d:b0", i))
			}
			for i, cl := range clients {
				testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("client %d's broadcasts", i), func() error {
					if got := cl.received(); len(got) < st.N {
						return fmt.Errorf("%d of %d, the last %q", len(got), st.N, got[max(0, len(got)-3):])
					}
					return nil
				})
				cl.mu.Lock()
				closed := cl.closed
				cl.mu.Unlock()
				if closed != 0 {
					t.Errorf("client %d (through a surviving node) was closed with %d", i, closed)
				}
				if got := cl.received(); !slices.Equal(got, want) {
					t.Fatalf("client %d received %v, want every committed broadcast once, in order: %v", i, got, want)
				}
			}
			// Every edge socket was taken back (more than once when a
			// hand-over is followed by the rebalancer's, or an attempt
			// timed out), and the room holds each once: none left behind.
			if st.Reattached < len(clients) {
				t.Errorf("the room took back %d sockets, want at least the %d edge sockets", st.Reattached, len(clients))
			}
			testenv.WaitFor(t, 30*time.Second, "the room to hold each edge socket once", func() error {
				ask(t, edges[0], "GET", "/objects/Room/r/state", &st)
				if st.Open != len(clients) {
					return fmt.Errorf("%d open", st.Open)
				}
				return nil
			})
			t.Logf("%s: %d broadcasts (%d acknowledged), every edge socket open with all of them", fault, st.N, acked.Load())
		})
	}
}
