package storage

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests when they leave a goroutine behind:
// every goroutine this package starts is someone's to stop.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
