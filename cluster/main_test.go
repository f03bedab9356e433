package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when they leave a goroutine behind:
// every goroutine this package starts is someone's to stop. One of
// memberlist's is not ours to stop: a probe in flight when Shutdown is
// called finishes on its own, after its probe timeout (upstream behaviour;
// matrixorigin/matrixone#4992 met the same stack).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/hashicorp/memberlist.(*Memberlist).probeNode"))
}
