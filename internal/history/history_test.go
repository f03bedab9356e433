package history

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The checker accepts what a register can do and refuses what it cannot,
// per key, with writes of unknown outcome placed anywhere after their call
// (or nowhere).
func TestRegisterHistories(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	type op struct {
		client     int
		in         Input
		call, ret  int // ms; ret < 0: unknown outcome
		readResult int64
	}
	w := func(key string, v int64) Input { return Input{Key: key, Write: true, Value: v} }
	r := func(key string) Input { return Input{Key: key} }
	for _, tc := range []struct {
		name string
		ops  []op
		want porcupine.CheckResult
	}{
		{"read after write", []op{{0, w("a", 1), 0, 10, 0}, {1, r("a"), 20, 30, 1}}, porcupine.Ok},
		{"stale read after write", []op{{0, w("a", 1), 0, 10, 0}, {1, r("a"), 20, 30, 0}}, porcupine.Illegal},
		{"concurrent read may see either", []op{{0, w("a", 1), 0, 30, 0}, {1, r("a"), 10, 20, 0}}, porcupine.Ok},
		{"keys are separate", []op{{0, w("a", 1), 0, 10, 0}, {1, r("b"), 20, 30, 0}}, porcupine.Ok},
		{"value read back to an older one", []op{{0, w("a", 1), 0, 10, 0}, {0, w("a", 2), 20, 30, 0}, {1, r("a"), 40, 50, 2}, {1, r("a"), 60, 70, 1}}, porcupine.Illegal},
		{"unknown write seen later", []op{{0, w("a", 1), 0, -1, 0}, {1, r("a"), 20, 30, 0}, {1, r("a"), 40, 50, 1}}, porcupine.Ok},
		{"unknown write never seen", []op{{0, w("a", 1), 0, -1, 0}, {1, r("a"), 20, 30, 0}}, porcupine.Ok},
		{"unknown write seen, then not", []op{{0, w("a", 1), 0, -1, 0}, {1, r("a"), 20, 30, 1}, {1, r("a"), 40, 50, 0}}, porcupine.Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &Recorder{start: at(0)}
			for _, o := range tc.ops {
				if o.ret < 0 {
					rec.Unknown(o.client, o.in, at(o.call))
					continue
				}
				rec.Done(o.client, o.in, at(o.call), at(o.ret), Output{Value: o.readResult})
			}
			if got, _ := rec.Check(10 * time.Second); got != tc.want {
				t.Fatalf("check = %v, want %v", got, tc.want)
			}
		})
	}
}
