package tlsconn

import (
	"math/rand/v2"
	"time"
)

// Backoff computes redial delays: Min, Min×Factor, … capped at Max, each
// spread by ±Jitter so that many ports do not redial in lock-step. The zero
// value starts at 100 ms and doubles to a 1 s cap with ±20 % jitter. A
// Backoff is not safe for concurrent use: it belongs to one redial loop.
type Backoff struct {
	Min    time.Duration // first delay; 0 = 100 ms
	Max    time.Duration // cap, never exceeded; 0 = 1 s
	Factor float64       // growth per attempt; 0 = 2; values in (0, 1) mean 1
	Jitter float64       // relative spread; 0 = 0.2; negative = none; capped at 1

	cur time.Duration // next base delay; 0 = not started
}

// Backoff defaults.
const (
	DefaultBackoffMin    = 100 * time.Millisecond
	DefaultBackoffMax    = time.Second
	DefaultBackoffFactor = 2.0
	DefaultBackoffJitter = 0.2
)

func (b *Backoff) params() (lo, hi time.Duration, factor, jitter float64) {
	lo, hi, factor, jitter = b.Min, b.Max, b.Factor, b.Jitter
	if lo <= 0 {
		lo = DefaultBackoffMin
	}
	if hi <= 0 {
		hi = DefaultBackoffMax
	}
	if hi < lo {
		hi = lo
	}
	switch {
	case factor <= 0:
		factor = DefaultBackoffFactor
	case factor < 1:
		factor = 1
	}
	switch {
	case jitter == 0:
		jitter = DefaultBackoffJitter
	case jitter < 0:
		jitter = 0
	case jitter > 1:
		jitter = 1
	}
	return lo, hi, factor, jitter
}

// Next returns the delay to wait before the next attempt and advances.
func (b *Backoff) Next() time.Duration {
	lo, hi, factor, jitter := b.params()
	base := b.cur
	if base < lo {
		base = lo
	}
	if base > hi {
		base = hi
	}
	next := float64(base) * factor
	if next >= float64(hi) {
		b.cur = hi
	} else {
		b.cur = time.Duration(next)
	}
	d := float64(base)
	if jitter > 0 {
		d *= 1 + jitter*(2*rand.Float64()-1)
	}
	if d > float64(hi) {
		d = float64(hi)
	}
	return time.Duration(d)
}

// Reset starts the sequence again at Min; call it after a link has stayed up.
func (b *Backoff) Reset() { b.cur = 0 }
