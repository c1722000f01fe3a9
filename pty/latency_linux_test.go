//go:build linux

package pty

import (
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSettingsLatency measures the time from an application's
// tcsetattr (a speed change) to the SettingsChanged event and to the
// settings handler's call in the Read goroutine, with a reader draining
// the master as the bridge does, for raw input (EXTPROC: a status packet)
// and for processed input (ICRNL: the termios watch); p50 and p99 are
// reported (docs/performance.md).
func BenchmarkSettingsLatency(b *testing.B) {
	for _, mode := range []struct {
		name string
		set  func(*unix.Termios)
	}{
		{"raw", func(*unix.Termios) {}},
		{"ICRNL", func(t *unix.Termios) { t.Iflag |= unix.ICRNL }},
	} {
		b.Run(mode.name, func(b *testing.B) {
			p := openPort(b, Config{PollInterval: -1})
			a := openApp(b, p.Name())
			a.modify(b, mode.set)
			waitFollowed(b, a)
			called := make(chan time.Time, 1)
			p.SetSettingsHandler(func(Settings) { called <- time.Now() })
			drain(b, p)
			rates := []uint32{unix.B19200, unix.B9600} // the port starts at 9600
			var ev, hd []time.Duration
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
				ev = append(ev, time.Since(start))
				hd = append(hd, (<-called).Sub(start))
			}
			slices.Sort(ev)
			slices.Sort(hd)
			b.ReportMetric(float64(ev[len(ev)/2].Microseconds()), "event-p50-µs")
			b.ReportMetric(float64(ev[len(ev)*99/100].Microseconds()), "event-p99-µs")
			b.ReportMetric(float64(hd[len(hd)/2].Microseconds()), "handler-p50-µs")
			b.ReportMetric(float64(hd[len(hd)*99/100].Microseconds()), "handler-p99-µs")
		})
	}
}

// BenchmarkInputModeSwitch measures the window in which the device's bytes
// are still processed raw after the application makes its input non-raw:
// from before its tcsetattr (ICRNL on) until vsp has cleared EXTPROC, with a reader draining the
// master (the bridge) and without one (the termios watch's EPOLLPRI alone).
func BenchmarkInputModeSwitch(b *testing.B) {
	for _, reader := range []bool{true, false} {
		name := "reader"
		if !reader {
			name = "no-reader"
		}
		b.Run(name, func(b *testing.B) {
			p := openPort(b, Config{PollInterval: -1})
			a := openApp(b, p.Name())
			if reader {
				drain(b, p)
			}
			var win []time.Duration
			for i := 0; b.Loop(); i++ {
				a.modify(b, func(tio *unix.Termios) { tio.Iflag &^= unix.ICRNL })
				waitFollowed(b, a)
				start := time.Now()
				a.modify(b, func(tio *unix.Termios) { tio.Iflag |= unix.ICRNL })
				waitFollowed(b, a)
				win = append(win, time.Duration(p.extprocAt.Load()-start.UnixNano()))
			}
			slices.Sort(win)
			b.ReportMetric(float64(win[len(win)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(win[len(win)*99/100].Microseconds()), "p99-µs")
		})
	}
}
