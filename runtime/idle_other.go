//go:build !linux

package runtime

import (
	"log/slog"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// idlePoller parks idle sockets on Linux (epoll); elsewhere each socket
// keeps its reader goroutine, as it would without one.
type idlePoller struct{}

func newIdlePoller(*slog.Logger, prometheus.Gauge) *idlePoller { return &idlePoller{} }

func (p *idlePoller) count() int { return 0 }

func (p *idlePoller) park(*socketConn) bool   { return false }
func (p *idlePoller) unpark(*socketConn) bool { return false }
func (p *idlePoller) shutdown()               {}

// waitReadable does not wait here: the reader blocks in its read instead.
func waitReadable(syscall.RawConn, func(time.Time) error, time.Duration) readiness {
	return readReady
}
