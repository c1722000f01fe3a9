//go:build linux

package main

import (
	"math"
	"slices"
	"time"
)

// quantile returns the q-quantile (0..1) of ds by the nearest-rank method.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// spread is the median and range of one figure over the runs.
type spread struct{ med, lo, hi float64 }

// durSpread is spreadOf for durations.
func durSpread(ds []time.Duration) (med, lo, hi time.Duration) {
	xs := make([]float64, len(ds))
	for i, d := range ds {
		xs[i] = float64(d)
	}
	s := spreadOf(xs)
	return time.Duration(s.med), time.Duration(s.lo), time.Duration(s.hi)
}

func spreadOf(xs []float64) spread {
	if len(xs) == 0 {
		return spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return spread{med: m, lo: s[0], hi: s[len(s)-1]}
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// pathResult is everything measured on one path, per run.
type pathResult struct {
	name     string
	desc     string
	skipped  string          // why the path was not measured
	p50, p99 []float64       // µs, one per run
	mbps     []float64       // MB/s (10^6 bytes), one per run
	samples  []time.Duration // every RTT sample of every run
}
