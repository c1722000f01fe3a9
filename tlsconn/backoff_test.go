package tlsconn_test

import (
	"testing"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		b    tlsconn.Backoff
		want []time.Duration // base delays before jitter
	}{
		{"zero value: 100ms doubling to 1s", tlsconn.Backoff{},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1000 * ms, 1000 * ms}},
		{"5s cap", tlsconn.Backoff{Max: 5 * time.Second},
			[]time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5000 * ms, 5000 * ms}},
		{"custom factor and cap", tlsconn.Backoff{Min: 10 * ms, Max: 100 * ms, Factor: 3, Jitter: -1},
			[]time.Duration{10 * ms, 30 * ms, 90 * ms, 100 * ms, 100 * ms}},
		{"factor 1 is constant", tlsconn.Backoff{Min: 50 * ms, Factor: 1, Jitter: -1},
			[]time.Duration{50 * ms, 50 * ms, 50 * ms}},
		{"max below min", tlsconn.Backoff{Min: time.Second, Max: 10 * ms, Jitter: -1},
			[]time.Duration{time.Second, time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jitter := tt.b.Jitter
			if jitter == 0 {
				jitter = 0.2
			}
			if jitter < 0 {
				jitter = 0
			}
			limit := tt.b.Max
			if limit == 0 {
				limit = tlsconn.DefaultBackoffMax
			}
			limit = max(limit, tt.b.Min)
			for run := 0; run < 200; run++ {
				b := tt.b
				for i, base := range tt.want {
					got := b.Next()
					lo := time.Duration(float64(base) * (1 - jitter))
					hi := min(time.Duration(float64(base)*(1+jitter)), limit)
					if got < lo || got > hi {
						t.Fatalf("run %d step %d: Next() = %v, want in [%v, %v]", run, i, got, lo, hi)
					}
				}
				b.Reset()
				first := b.Next()
				if lo, hi := time.Duration(float64(tt.want[0])*(1-jitter)), time.Duration(float64(tt.want[0])*(1+jitter)); first < lo || first > hi {
					t.Fatalf("after Reset: %v, want about %v", first, tt.want[0])
				}
			}
		})
	}
}

// TestBackoffJitterSpreads checks that jitter really varies the delay and
// stays within ±20 % by default.
func TestBackoffJitterSpreads(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 100 {
		var b tlsconn.Backoff
		d := b.Next()
		if d < 80*time.Millisecond || d > 120*time.Millisecond {
			t.Fatalf("first delay %v outside 100ms ± 20%%", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Errorf("only %d distinct delays in 100 draws: jitter not applied", len(seen))
	}
}
