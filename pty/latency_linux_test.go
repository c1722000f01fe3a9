//go:build linux

package pty

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSettingsLatency measures the time from an application's
// tcsetattr (a speed change) to the SettingsChanged event, with a reader
// draining the master as the bridge does; p50 and p99 are reported
// (docs/performance.md).
func BenchmarkSettingsLatency(b *testing.B) {
	p := openPort(b, Config{PollInterval: -1})
	a := openApp(b, p.Name())
	drain(b, p)
	rates := []uint32{unix.B19200, unix.B9600} // the port starts at 9600
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		code := rates[i%2]
		start := time.Now()
		a.modify(b, func(tio *unix.Termios) {
			tio.Cflag = tio.Cflag&^(unix.CBAUD|unix.CIBAUD) | code
			tio.Ispeed, tio.Ospeed = 0, 0
		})
		for e := range p.Events() {
			if e.Kind == SettingsChanged {
				break
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
