package node_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/holocron-run/holocron/internal/history"
	"github.com/holocron-run/holocron/internal/proctest"
	"github.com/holocron-run/holocron/runtime"
)

// kvNode is testdata/kvnode built once (see TestMain): a node whose one
// type is a register.
var kvNode string

// registers is how many registers the clients use; each is an object,
// so each is its own partition of the history.
const registers = 4

// historyRun is one recorded run: clients through every live node of c
// reading and writing the registers while faults hit the cluster.
type historyRun struct {
	t   *testing.T
	c   *proctest.Cluster
	rec *history.Recorder
	mu  sync.Mutex // guards c.Nodes against a restart
}

// liveNode picks a live node at random.
func (h *historyRun) liveNode(rng *rand.Rand) *proctest.Proc {
	h.mu.Lock()
	defer h.mu.Unlock()
	live := h.c.Live()
	if len(live) == 0 {
		return nil
	}
	return live[rng.IntN(len(live))]
}

// client runs one client until ctx ends: each operation a read or a write
// of a value no other write writes, through a random live node, recorded
// with its call and return times. An answer the client cannot read leaves
// a write's outcome unknown; a request turned away as not served (503 with
// runtime.HeaderNotServed) left no trace and is not recorded.
func (h *historyRun) client(ctx context.Context, id int, seed uint64, wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	hc := &http.Client{Timeout: 3 * time.Second}
	defer hc.CloseIdleConnections()
	for seq := int64(1); ctx.Err() == nil; seq++ {
		n := h.liveNode(rng)
		if n == nil {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		in := history.Input{Key: fmt.Sprint("r", rng.IntN(registers))}
		method, url := http.MethodGet, n.URL("/objects/Register/"+in.Key+"/")
		if rng.IntN(2) == 0 {
			in.Write, in.Value = true, int64(id)<<32|seq
			method, url = http.MethodPut, url+"?v="+strconv.FormatInt(in.Value, 10)
		}
		req, _ := http.NewRequest(method, url, nil)
		call := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			var op *net.OpError
			if errors.As(err, &op) && op.Op == "dial" {
				continue // nothing was sent
			}
			h.rec.Unknown(id, in, call)
			continue
		}
		var out struct{ V int64 }
		decodeErr := json.NewDecoder(resp.Body).Decode(&out)
		ret := time.Now()
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && decodeErr == nil:
			h.rec.Done(id, in, call, ret, history.Output{Value: out.V})
		case resp.Header.Get(runtime.HeaderNotServed) != "":
			// Not served: no object saw it.
		default:
			h.rec.Unknown(id, in, call)
		}
	}
}

// startClients runs n clients until the returned stop, which waits for
// them.
func (h *historyRun) startClients(n int, seed uint64) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for id := range n {
		wg.Add(1)
		go h.client(ctx, id, seed, &wg)
	}
	return func() { cancel(); wg.Wait() }
}

// move asks the cluster to move register key's object to another node.
func (h *historyRun) move(rng *rand.Rand, key string) {
	n := h.liveNode(rng)
	if n == nil {
		return
	}
	req, _ := http.NewRequest(http.MethodPost, n.URL("/admin/objects/Register/"+key+"/move"), nil)
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req); err == nil {
		resp.Body.Close()
	}
}

// check checks the history; on a violation (or a check that ran out of
// time) it writes Porcupine's visualization and the seed beside the test's
// logs and reports false.
func (h *historyRun) check(seed uint64) (porcupine.CheckResult, string) {
	result, info := h.rec.Check(2 * time.Minute)
	all, reads, writes := h.rec.Operations()
	h.t.Logf("seed %d: %d operations (%d reads and %d writes answered, the rest writes of unknown outcome): %v", seed, all, reads, writes, result)
	if result == porcupine.Ok {
		return result, ""
	}
	dir := filepath.Join(os.TempDir(), "holocron-test-logs", h.t.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(dir, "history.html")
	if err := history.Visualize(info, path); err != nil {
		h.t.Logf("visualization: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "seed"), []byte(strconv.FormatUint(seed, 10)+"\n"), 0o644)
	if err := h.rec.WriteJSON(filepath.Join(dir, "history.jsonl")); err != nil {
		h.t.Logf("history: %v", err)
	}
	return result, path
}

// robustnessSeed is HOLOCRON_ROBUSTNESS_SEED, to replay a run, or a fresh
// one, printed.
func robustnessSeed(t *testing.T) uint64 {
	if s := os.Getenv("HOLOCRON_ROBUSTNESS_SEED"); s != "" {
		seed, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HOLOCRON_ROBUSTNESS_SEED: %v", err)
		}
		return seed
	}
	seed := rand.Uint64()
	t.Logf("seed %d (HOLOCRON_ROBUSTNESS_SEED=%d replays this schedule of faults)", seed, seed)
	return seed
}

// TestRegisterHistoryIsLinearizableUnderFaults: six clients read and write
// four registers through every node of a 3-node cluster while the seeded
// schedule of faults, every two seconds, kills a node -9 (restarting it a
// moment later), moves a register's object to another node, or pauses
// one (SIGSTOP for 3 s, far past its leases, then SIGCONT: it must not
// serve or commit on what it believed before). The recorded history,
// checked with Porcupine per register, is linearizable.
func TestRegisterHistoryIsLinearizableUnderFaults(t *testing.T) {
	seed := robustnessSeed(t)
	h := &historyRun{t: t, c: proctest.StartCluster(t, kvNode, 3), rec: history.NewRecorder()}
	stop := h.startClients(6, seed)
	rng := rand.New(rand.NewPCG(seed, 99))
	rounds := cmp.Or(envInt(t, "HOLOCRON_ROBUSTNESS_ROUNDS"), 6)
	for round := range rounds {
		time.Sleep(2 * time.Second) // the clients' traffic between faults
		switch rng.IntN(4) {
		case 1:
			i := rng.IntN(len(h.c.Nodes))
			t.Logf("round %d: node %d paused for 3s", round, i+1)
			h.c.Nodes[i].Pause(3 * time.Second)
		case 0:
			i := rng.IntN(len(h.c.Nodes))
			t.Logf("round %d: kill -9 of node %d, restarted", round, i+1)
			h.c.Nodes[i].Kill9()
			time.Sleep(time.Second) // the cluster without it
			h.mu.Lock()
			h.c.Restart(i)
			h.mu.Unlock()
		default:
			key := fmt.Sprint("r", rng.IntN(registers))
			t.Logf("round %d: move of register %s", round, key)
			h.move(rng, key)
		}
	}
	time.Sleep(2 * time.Second)
	stop()
	if result, path := h.check(seed); result != porcupine.Ok {
		t.Fatalf("the history is not linearizable (%v): Porcupine's visualization in %s", result, path)
	}
}

// TestHistoryCheckerFindsStaleReads: the checker is worth something only
// if it catches a broken read path. With -kv-stale-reads each node answers
// reads from its own memory of the writes it served; moving the registers
// between the nodes makes a node that owned one before answer with its
// earlier term's value, and the check reports the history illegal.
func TestHistoryCheckerFindsStaleReads(t *testing.T) {
	seed := robustnessSeed(t)
	h := &historyRun{t: t, c: proctest.StartCluster(t, kvNode, 3, "-kv-stale-reads"), rec: history.NewRecorder()}
	stop := h.startClients(4, seed)
	rng := rand.New(rand.NewPCG(seed, 99))
	// Moves until the check finds the planted bug (a node must own a
	// register again after another did), for 24 rounds at most.
	found := false
	for round := 0; round < 24 && !found; round++ {
		time.Sleep(500 * time.Millisecond) // writes on the register's owner
		for k := range registers {
			h.move(rng, fmt.Sprint("r", k))
		}
		if round >= 3 {
			result, _ := h.rec.Check(time.Minute)
			found = result == porcupine.Illegal
		}
	}
	stop()
	if result, path := h.check(seed); result != porcupine.Illegal {
		t.Fatalf("with stale reads planted the check says %v, want illegal", result)
	} else {
		t.Logf("planted stale reads found; visualization in %s", path)
	}
}

// envInt reads a positive integer from the environment (0 when unset).
func envInt(t *testing.T, name string) int {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
