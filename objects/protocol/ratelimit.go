package protocol

import (
	"time"

	"golang.org/x/time/rate"
)

// RateBucket is the per-socket token bucket behind PROTOCOL.md's rate limit
// (rate_limited): burst tokens, refilled at rate per second, one per frame.
// It wraps golang.org/x/time/rate with the caller's clock, so objects stay
// deterministic under a test clock. It is kept by object code, in memory,
// per socket.
type RateBucket struct {
	lim *rate.Limiter
}

// NewRateBucket returns a full bucket.
func NewRateBucket(burst int, now time.Time) RateBucket {
	lim := rate.NewLimiter(0, burst)
	lim.SetBurstAt(now, burst)
	return RateBucket{lim: lim}
}

// Allow takes one token if there is one. A negative rate means no limit.
func (b *RateBucket) Allow(now time.Time, perSecond float64, burst int) bool {
	if perSecond < 0 {
		return true
	}
	if b.lim == nil {
		*b = NewRateBucket(burst, now)
	}
	if b.lim.Limit() != rate.Limit(perSecond) {
		b.lim.SetLimitAt(now, rate.Limit(perSecond))
	}
	if b.lim.Burst() != burst {
		b.lim.SetBurstAt(now, burst)
	}
	return b.lim.AllowN(now, 1)
}
