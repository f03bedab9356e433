// Package history records what the clients of a cluster saw — each
// operation's call and return times and its result — and checks the
// record with Porcupine (github.com/anishathalye/porcupine) against a
// sequential model of each object: the history is linearizable per object,
// or the checker shows where it is not. It is the robustness suite's net,
// as etcd's tests/robustness is etcd's.
//
// The model here is a register per object: a write sets it, a read returns
// the last value written. Each write writes a value no other write writes,
// so a read names the write it saw.
package history

import (
	"fmt"
	"math"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Input is one register operation: a read, or a write of Value.
type Input struct {
	Key   string
	Write bool
	Value int64
}

// Output is what a read returned (a write's output is not looked at).
type Output struct {
	Value int64
}

// Recorder collects the operations of a run; its methods may be called from
// any goroutine.
type Recorder struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

// NewRecorder starts a record; times are relative to now.
func NewRecorder() *Recorder { return &Recorder{start: time.Now()} }

func (r *Recorder) since(t time.Time) int64 { return int64(t.Sub(r.start)) }

// Done records an operation that returned: for a read, the value it read.
func (r *Recorder) Done(client int, in Input, call, ret time.Time, out Output) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: r.since(call), Output: out, Return: r.since(ret)})
}

// Unknown records a write whose outcome the client could not learn (its
// connection broke, it timed out): it may have taken effect at any time
// after its call, or never, so it is kept with no return time. A read
// without an answer tells nothing and is not recorded.
func (r *Recorder) Unknown(client int, in Input, call time.Time) {
	if !in.Write {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops = append(r.ops, porcupine.Operation{ClientId: client, Input: in, Call: r.since(call), Return: math.MaxInt64})
}

// Operations returns the number of operations recorded, and how many of
// them are reads and writes that returned.
func (r *Recorder) Operations() (all, reads, writes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, op := range r.ops {
		in := op.Input.(Input)
		switch {
		case op.Return == math.MaxInt64:
		case in.Write:
			writes++
		default:
			reads++
		}
	}
	return len(r.ops), reads, writes
}

// Check checks the history against the register model, within timeout
// (porcupine.Unknown if it ran out).
func (r *Recorder) Check(timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	return porcupine.CheckOperationsVerbose(RegisterModel, ops, timeout)
}

// WriteJSON writes the recorded operations to path, one JSON object per
// line (client, key, write, value, call and return in ns from the start,
// return -1 for an unknown outcome), for reading a violation by hand.
func (r *Recorder) WriteJSON(path string) error {
	r.mu.Lock()
	ops := append([]porcupine.Operation(nil), r.ops...)
	r.mu.Unlock()
	var b []byte
	for _, op := range ops {
		in := op.Input.(Input)
		out, _ := op.Output.(Output)
		v := in.Value
		if !in.Write {
			v = out.Value
		}
		ret := op.Return
		if ret == math.MaxInt64 {
			ret = -1
		}
		b = fmt.Appendf(b, `{"client":%d,"key":%q,"write":%t,"value":%d,"call":%d,"return":%d}`+"\n", op.ClientId, in.Key, in.Write, v, op.Call, ret)
	}
	return os.WriteFile(path, b, 0o644)
}

// Visualize writes Porcupine's HTML visualization of a check to path.
func Visualize(info porcupine.LinearizationInfo, path string) error {
	return porcupine.VisualizePath(RegisterModel, info, path)
}

// RegisterModel is a register per key, 0 before the first write.
var RegisterModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(Input).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]string, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return int64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(Input)
		if in.Write {
			return true, in.Value
		}
		out, _ := output.(Output)
		return out.Value == state.(int64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(Input)
		if in.Write {
			return fmt.Sprintf("write %s = %d", in.Key, in.Value)
		}
		out, _ := output.(Output)
		return fmt.Sprintf("read %s -> %d", in.Key, out.Value)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state) },
}
