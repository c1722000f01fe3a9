package bridge

import (
	"testing"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

// The possibly-lost estimate of a dead link: unacknowledged bytes, plus
// bytes handed from lossWindow before the last acknowledgement on; never
// more than was handed; everything when the kernel cannot tell.
func TestLinkMeterFinish(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type hand struct {
		at time.Duration // after t0
		n  int
	}
	tests := []struct {
		name  string
		hands []hand
		q     tlsconn.SendQueue
		at    time.Duration
		want  uint64
	}{
		{"nothing handed", nil, tlsconn.SendQueue{OK: true}, 5 * time.Second, 0},
		{"old bytes acknowledged long ago", []hand{{0, 1000}}, tlsconn.SendQueue{OK: true, SinceAck: time.Second}, 10 * time.Second, 0},
		{"recent bytes count although acknowledged", []hand{{0, 1000}, {9 * time.Second, 300}}, tlsconn.SendQueue{OK: true, SinceAck: 500 * time.Millisecond}, 10 * time.Second, 300},
		{"window reaches back from the last ack", []hand{{0, 1000}, {2 * time.Second, 200}, {4 * time.Second, 30}}, tlsconn.SendQueue{OK: true, Unacked: 30, SinceAck: 7500 * time.Millisecond}, 10 * time.Second, 230},
		{"unacknowledged bytes beyond the window", []hand{{0, 1000}}, tlsconn.SendQueue{OK: true, Unacked: 700, SinceAck: 0}, 10 * time.Second, 700},
		{"TLS overhead never counts more than handed", []hand{{0, 100}}, tlsconn.SendQueue{OK: true, Unacked: 500}, 10 * time.Second, 100},
		{"kernel cannot tell: everything", []hand{{0, 1000}, {time.Second, 24}}, tlsconn.SendQueue{}, 10 * time.Second, 1024},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m linkMeter
			for _, h := range tt.hands {
				if !m.add(h.n, t0.Add(h.at)) {
					t.Fatal("add refused on a live link")
				}
			}
			if got := m.finish(tt.q, t0.Add(tt.at)); got != tt.want {
				t.Errorf("possibly lost = %d, want %d", got, tt.want)
			}
			if got := m.finish(tt.q, t0.Add(tt.at)); got != 0 {
				t.Errorf("second finish = %d, want 0", got)
			}
			if m.add(5, t0.Add(tt.at)) {
				t.Errorf("add accepted on a dead link")
			}
		})
	}
}
