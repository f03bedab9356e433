package protocol

import "time"

// RateBucket is the per-socket token bucket behind PROTOCOL.md's rate limit
// (rate_limited): burst tokens, refilled at rate per second, one per frame.
// It is kept by object code, in memory, per socket.
type RateBucket struct {
	tokens float64
	last   time.Time
}

// NewRateBucket returns a full bucket.
func NewRateBucket(burst int, now time.Time) RateBucket {
	return RateBucket{tokens: float64(burst), last: now}
}

// Allow takes one token if there is one. A negative rate means no limit.
func (b *RateBucket) Allow(now time.Time, rate float64, burst int) bool {
	if rate < 0 {
		return true
	}
	if dt := now.Sub(b.last).Seconds(); dt > 0 {
		b.tokens = min(float64(burst), b.tokens+dt*rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
