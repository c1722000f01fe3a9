//go:build linux

package pty

import (
	"fmt"
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
	testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return inq(t, p) == 8 })
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

// flushTally counts, over cycles of flushCycle or settingsCycle, where the
// flush or change fell in the data: after all 8 bytes written before it,
// before the 2 written after it (both: the order the application wrote),
// and the time from the application's call to its being passed on.
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
	return fmt.Sprintf("%s: %d cycles: 8 bytes before %d, 2 bytes after %d, both (the order written) %d; call to handler p50 %v p99 %v",
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

// orderCase is an application action whose place among its data is
// measured: the cycle the application runs, the status bit it raises on a
// plain packet-mode pty, and how a Port reports it.
type orderCase struct {
	name    string
	cycle   func(t testing.TB, path string, pace time.Duration) time.Time
	status  byte                    // TIOCPKT_FLUSHREAD, TIOCPKT_IOCTL
	mode    func(*unix.Termios)     // the application's input mode, on top of raw
	extproc bool                    // the plain pty needs EXTPROC to raise status
	handle  func(p *Port, f func()) // sets the Port's handler to call f
	port    string                  // the Port's ordering, for the figures
}

var flushCase = orderCase{
	name:   "flush",
	cycle:  flushCycle,
	status: unix.TIOCPKT_FLUSHREAD,
	mode:   func(*unix.Termios) {},
	handle: func(p *Port, f func()) {
		p.SetFlushHandler(func(k EventKind) {
			if k == FlushRead {
				f()
			}
		})
	},
	port: "status first",
}

// settingsCycle is write 8 bytes, tcsetattr (the speed toggles between
// 19200 and 9600), write 2 bytes, spending pace between the calls.
func settingsCycle(t testing.TB, path string, pace time.Duration) time.Time {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY, 0)
	must(t, err)
	defer unix.Close(fd)
	tio, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	must(t, err)
	if outputSpeed(tio) == 9600 {
		setSpeed(tio, 19200)
	} else {
		setSpeed(tio, 9600)
	}
	if _, err := unix.Write(fd, []byte("ABCDEFGH")); err != nil {
		t.Fatal(err)
	}
	pause(pace)
	at := time.Now()
	must(t, unix.IoctlSetTermios(fd, ioctlSetTermios, tio))
	pause(pace)
	if _, err := unix.Write(fd, []byte("1\n")); err != nil {
		t.Fatal(err)
	}
	return at
}

func settingsCase(name string, mode func(*unix.Termios)) orderCase {
	return orderCase{
		name:    name,
		cycle:   settingsCycle,
		status:  unix.TIOCPKT_IOCTL,
		mode:    mode,
		extproc: true,
		handle:  func(p *Port, f func()) { p.SetSettingsHandler(func(Settings) { f() }) },
		port:    "drain first",
	}
}

// BenchmarkFlushOrdering measures where the flush handler falls in the
// data, over b.N cycles of flushCycle, for the two possible orderings, on
// a plain packet-mode pty read as Port.Read reads it (status first: the
// flush passed on when its status byte is read; drain first: after the
// bytes queued then), and on a Port (status first, as chosen), with a
// reader that forwards at once and one that spends 100 µs per read, and an
// application calling back to back or pausing 50 µs between calls. The
// figures are logged (SetFlushHandler and LIMITS.md have them; they were
// taken with -benchtime 1000x):
//
//	go test -run '^$' -bench Ordering -benchtime 1000x ./pty/
//
// A measurement, not a test: which ordering wins depends on timing.
func BenchmarkFlushOrdering(b *testing.B) {
	measureOrder(b, flushCase, b.N)
}

// BenchmarkSettingsOrdering measures the same for a settings change (write
// 8 bytes, tcsetattr, write 2 bytes), raw (EXTPROC, a status byte) and
// with ICRNL (the termios watch); the Port's settings handler is drain
// first (SetSettingsHandler).
func BenchmarkSettingsOrdering(b *testing.B) {
	for _, c := range []orderCase{
		settingsCase("settings, raw", func(*unix.Termios) {}),
		settingsCase("settings, ICRNL", func(t *unix.Termios) { t.Iflag |= unix.ICRNL }),
	} {
		measureOrder(b, c, b.N)
	}
}

// measureOrder runs the cycles of c for each reader delay and application
// pace, on a plain pty (both orderings) and on a Port, and logs the
// figures.
func measureOrder(t testing.TB, c orderCase, cycles int) {
	for _, x := range []struct{ delay, pace time.Duration }{
		{0, 0}, {100 * time.Microsecond, 0}, {0, 50 * time.Microsecond}, {100 * time.Microsecond, 50 * time.Microsecond},
	} {
		sf, df := orderPlain(t, c, cycles, x.delay, x.pace)
		pt := orderPort(t, c, cycles, x.delay, x.pace)
		for _, f := range []*flushTally{sf, df, pt} {
			t.Logf("%s, reader delay %v, application pace %v: %v", c.name, x.delay, x.pace, f)
		}
	}
}

// seen is where a flush or change was passed on: the data bytes read
// until then (total), those queued on the master then (queued, plain pty
// only), and when.
type seen struct {
	total, queued int64
	at            time.Time
}

// runCycles runs cycles of c on the tty at path; after each it waits for
// the cycle's event (what names it in a failure) and its 10 bytes, then
// hands the event, the bytes read before the cycle and the latency from
// the application's call to tally.
func runCycles(t testing.TB, c orderCase, path string, cycles int, pace time.Duration, what string,
	events <-chan seen, total *atomic.Int64, tally func(f seen, base int64, lat time.Duration)) {
	t.Helper()
	for i := 0; i < cycles; i++ {
		base := int64(10 * i)
		at := c.cycle(t, path, pace)
		var f seen
		select {
		case f = <-events:
		case <-time.After(waitTimeout):
			t.Fatalf("cycle %d: no %s", i, what)
		}
		testenv.Eventually(t, waitTimeout, "the cycle's bytes", func() bool { return total.Load() == base+10 })
		tally(f, base, f.at.Sub(at))
	}
}

// orderPlain runs the cycles on a plain pty in packet mode and judges both
// orderings from the same reads.
func orderPlain(t testing.TB, c orderCase, cycles int, delay, pace time.Duration) (statusFirst, drainFirst *flushTally) {
	master, slave, err := cpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	mfd := int(master.Fd())
	tio, err := unix.IoctlGetTermios(int(slave.Fd()), ioctlGetTermios)
	must(t, err)
	makeRawTio(tio)
	c.mode(tio)
	if c.extproc {
		tio.Lflag |= unix.EXTPROC
	}
	// Before packet mode, so that this change raises no status byte.
	must(t, unix.IoctlSetTermios(int(slave.Fd()), ioctlSetTermios, tio))
	must(t, unix.IoctlSetPointerInt(mfd, unix.TIOCPKT, 1))
	var total atomic.Int64
	events := make(chan seen, cycles)
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
				if b[0]&c.status != 0 {
					fds := [1]unix.PollFd{{Fd: int32(mfd), Events: unix.POLLIN}}
					_, _ = unix.Poll(fds[:], 0)
					q, _ := unix.IoctlGetInt(mfd, unix.TIOCINQ)
					events <- seen{total.Load(), int64(q), time.Now()}
				}
				continue
			}
			total.Add(int64(n - 1))
			spin(delay)
		}
	}()
	// The reader's blocking read ends with EIO once no slave fd is open.
	defer func() { slave.Close(); wg.Wait(); master.Close() }()
	statusFirst = &flushTally{name: "plain pty, status first"}
	drainFirst = &flushTally{name: "plain pty, drain first"}
	runCycles(t, c, slave.Name(), cycles, pace, "status byte", events, &total, func(f seen, base int64, lat time.Duration) {
		statusFirst.add(int(f.total-base), lat)
		drainFirst.add(int(f.total+f.queued-base), lat)
	})
	return statusFirst, drainFirst
}

// orderPort runs the cycles on a Port and tallies where its handler fell.
func orderPort(t testing.TB, c orderCase, cycles int, delay, pace time.Duration) *flushTally {
	p := openPort(t, Config{PollInterval: -1})
	a := openApp(t, p.Name())
	a.modify(t, c.mode)
	waitFollowed(t, a)
	var total atomic.Int64
	events := make(chan seen, cycles)
	c.handle(p, func() { events <- seen{total: total.Load(), at: time.Now()} })
	defer readPort(t, p, 256, func(b []byte) {
		total.Add(int64(len(b)))
		spin(delay)
	})()
	tally := &flushTally{name: "Port (" + c.port + ")"}
	runCycles(t, c, p.Name(), cycles, pace, "handler call", events, &total, func(f seen, base int64, lat time.Duration) {
		tally.add(int(f.total-base), lat)
	})
	return tally
}
