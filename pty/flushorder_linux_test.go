//go:build linux

package pty

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cpty "github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// TestFlushReadStatusFirst: the flush handler is called as soon as Read
// reads the flush's status byte, which the kernel delivers ahead of the
// bytes still queued on the master, those the application wrote before
// its tcflush(TCIFLUSH) included (SetFlushHandler says why).
func TestFlushReadStatusFirst(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	var l orderLog
	p.SetFlushHandler(func(k EventKind) { l.data([]byte("<" + k.String() + ">")) })
	a := openApp(t, p.Name())
	if _, err := a.f.Write([]byte("12345678")); err != nil {
		t.Fatal(err)
	}
	a.f.Close()
	a = openApp(t, p.Name())
	a.ctl(t, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH) })
	testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return p.masterQueued() == 8 })
	readInto(t, p, &l, 256)
	testenv.Eventually(t, waitTimeout, "flush handler and the bytes before it", func() bool { return strings.HasSuffix(l.String(), "8") })
	if _, err := a.f.Write([]byte("1\n")); err != nil {
		t.Fatal(err)
	}
	want := "<flush-read>123456781\n"
	testenv.Eventually(t, waitTimeout, "all data", func() bool { return len(l.String()) >= len(want) })
	if got := l.String(); got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
}

// flushCycle is one cycle of the serial-library scenario (issue 18): the
// application writes 8 bytes, closes the port, reopens it, flushes its
// input (tcflush TCIFLUSH, pyserial's reset_input_buffer) and writes 2
// bytes, spending pace between the steps (an interpreted language's
// serial library takes tens of microseconds per call). It returns the time
// of the tcflush.
func flushCycle(t testing.TB, path string, pace time.Duration) time.Time {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY, 0)
	must(t, err)
	if _, err := unix.Write(fd, []byte("ABCDEFGH")); err != nil {
		t.Fatal(err)
	}
	must(t, unix.Close(fd))
	pause(pace)
	fd, err = unix.Open(path, unix.O_RDWR|unix.O_NOCTTY, 0)
	must(t, err)
	defer unix.Close(fd)
	pause(pace)
	at := time.Now()
	must(t, unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH))
	pause(pace)
	if _, err := unix.Write(fd, []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	return at
}

// flushTally counts, over cycles of flushCycle, where the flush fell in
// the data: after all 8 bytes written before it, before the 2 written
// after it (both: the order the application wrote), and the time from
// tcflush to the flush being passed on.
type flushTally struct {
	name            string
	cycles, before8 int
	after2, exact   int
	lat             []time.Duration
}

// add counts a flush passed on after `pos` bytes of the cycle's 10.
func (f *flushTally) add(pos int, lat time.Duration) {
	f.cycles++
	b8, a2 := pos >= 8, pos <= 8
	if b8 {
		f.before8++
	}
	if a2 {
		f.after2++
	}
	if b8 && a2 {
		f.exact++
	}
	f.lat = append(f.lat, lat)
}

func (f *flushTally) String() string {
	slices.Sort(f.lat)
	return fmt.Sprintf("%s: %d cycles: 8 bytes before the flush %d, 2 bytes after it %d, both (the order written) %d; tcflush to handler p50 %v p99 %v",
		f.name, f.cycles, f.before8, f.after2, f.exact, f.lat[len(f.lat)/2], f.lat[len(f.lat)*99/100])
}

// pause sleeps for d (if any), as an application between two calls.
func pause(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}

// spin keeps the CPU busy for d, as a bridge forwarding a message does.
func spin(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
	}
}

// TestFlushOrdering measures where the flush handler falls in the data,
// over 1000 cycles of flushCycle, for the two possible orderings, on a
// plain packet-mode pty read as Port.Read reads it (status first: the
// flush passed on when its status byte is read; drain first: after the
// bytes queued then), and on a Port (status first, as chosen), with a
// reader that forwards at once and one that spends 100 µs per read. The
// figures are logged (SetFlushHandler and LIMITS.md have them); the
// ordering the Port uses must keep the application's order at least as
// often as the other.
func TestFlushOrdering(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 cycles per case")
	}
	const cycles = 1000
	for _, c := range []struct{ delay, pace time.Duration }{
		{0, 0}, {100 * time.Microsecond, 0}, {0, 50 * time.Microsecond}, {100 * time.Microsecond, 50 * time.Microsecond},
	} {
		sf, df := flushPlain(t, cycles, c.delay, c.pace)
		pt := flushPort(t, cycles, c.delay, c.pace)
		for _, f := range []*flushTally{sf, df, pt} {
			t.Logf("reader delay %v, application pace %v: %v", c.delay, c.pace, f)
		}
		if sf.exact < df.exact {
			t.Errorf("reader delay %v, application pace %v: status first right %d times, drain first %d", c.delay, c.pace, sf.exact, df.exact)
		}
	}
}

// flushPlain runs the cycles on a plain pty in packet mode and judges both
// orderings from the same reads.
func flushPlain(t *testing.T, cycles int, delay, pace time.Duration) (statusFirst, drainFirst *flushTally) {
	master, slave, err := cpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	mfd := int(master.Fd())
	must(t, unix.IoctlSetPointerInt(mfd, unix.TIOCPKT, 1))
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), ioctlGetTermios)
	must(t, err)
	makeRawTio(tio)
	must(t, unix.IoctlSetTermios(int(slave.Fd()), ioctlSetTermios, tio))
	type flushSeen struct {
		total, queued int64
		at            time.Time
	}
	var total atomic.Int64
	flushes := make(chan flushSeen, cycles)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, 256)
		for {
			n, err := unix.Read(mfd, b)
			if err != nil || n == 0 {
				return
			}
			if b[0] != unix.TIOCPKT_DATA {
				if b[0]&unix.TIOCPKT_FLUSHREAD != 0 {
					fds := [1]unix.PollFd{{Fd: int32(mfd), Events: unix.POLLIN}}
					_, _ = unix.Poll(fds[:], 0)
					q, _ := unix.IoctlGetInt(mfd, unix.TIOCINQ)
					flushes <- flushSeen{total.Load(), int64(q), time.Now()}
				}
				continue
			}
			total.Add(int64(n - 1))
			spin(delay)
		}
	}()
	// The reader's blocking read ends with EIO once no slave fd is open.
	defer func() { slave.Close(); wg.Wait(); master.Close() }()
	statusFirst, drainFirst = &flushTally{name: "plain pty, status first"}, &flushTally{name: "plain pty, drain first"}
	for i := 0; i < cycles; i++ {
		base := int64(10 * i)
		at := flushCycle(t, slave.Name(), pace)
		var f flushSeen
		select {
		case f = <-flushes:
		case <-time.After(waitTimeout):
			t.Fatalf("cycle %d: no flush status byte", i)
		}
		testenv.Eventually(t, waitTimeout, "the cycle's bytes", func() bool { return total.Load() == base+10 })
		statusFirst.add(int(f.total-base), f.at.Sub(at))
		drainFirst.add(int(f.total+f.queued-base), f.at.Sub(at))
	}
	return statusFirst, drainFirst
}

// flushPort runs the cycles on a Port and tallies where its flush handler
// fell.
func flushPort(t *testing.T, cycles int, delay, pace time.Duration) *flushTally {
	p := openPort(t, Config{PollInterval: -1})
	type flushSeen struct {
		total int64
		at    time.Time
	}
	var total atomic.Int64
	flushes := make(chan flushSeen, cycles)
	p.SetFlushHandler(func(k EventKind) {
		if k == FlushRead {
			flushes <- flushSeen{total.Load(), time.Now()}
		}
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, 256)
		for {
			n, err := p.Read(b)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("read: %v", err)
				}
				return
			}
			total.Add(int64(n))
			spin(delay)
		}
	}()
	defer func() { p.Close(); wg.Wait() }()
	tally := &flushTally{name: "Port (status first)"}
	for i := 0; i < cycles; i++ {
		base := int64(10 * i)
		at := flushCycle(t, p.Name(), pace)
		var f flushSeen
		select {
		case f = <-flushes:
		case <-time.After(waitTimeout):
			t.Fatalf("cycle %d: no flush handler call", i)
		}
		testenv.Eventually(t, waitTimeout, "the cycle's bytes", func() bool { return total.Load() == base+10 })
		tally.add(int(f.total-base), f.at.Sub(at))
	}
	return tally
}
