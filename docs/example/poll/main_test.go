package poll_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the tests leave no goroutine behind: every runtime,
// store, socket and alarm scheduler they started was shut down.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
