//go:build linux

package pty

import (
	"bytes"
	"errors"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cpty "github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// makeRawTio is testenv.Raw plus IUCLC: every input processing flag off.
func makeRawTio(t *unix.Termios) {
	makeRaw(t)
	t.Iflag &^= unix.IUCLC
}

// inputRows: what the application sets (on top of raw), what the device
// sends, what the application reads up to the sentinel. In this order
// they switch raw → non-raw → raw → non-raw → non-raw ...
var inputRows = []struct {
	name     string
	set      func(*unix.Termios)
	send     string
	want     string
	sentinel byte
}{
	{"raw", func(*unix.Termios) {}, "A\r\n\x13\x11\x03\xff#", "A\r\n\x13\x11\x03\xff#", '#'},
	{"ICRNL", func(t *unix.Termios) { t.Iflag |= unix.ICRNL }, "AB\rCD#", "AB\nCD#", '#'},
	{"raw again", func(*unix.Termios) {}, "AB\rCD#", "AB\rCD#", '#'},
	{"IXON", func(t *unix.Termios) { t.Iflag |= unix.IXON }, "a\x11b#", "ab#", '#'},
	{"raw after IXON", func(*unix.Termios) {}, "a\x11b#", "a\x11b#", '#'},
	{"INLCR", func(t *unix.Termios) { t.Iflag |= unix.INLCR }, "AB\nCD#", "AB\rCD#", '#'},
	{"IGNCR (non-raw to non-raw)", func(t *unix.Termios) { t.Iflag |= unix.IGNCR }, "AB\rCD#", "ABCD#", '#'},
	{"ICANON VERASE", func(t *unix.Termios) { t.Lflag |= unix.ICANON; t.Cc[unix.VERASE] = 0x7f }, "ab\x7fc\n", "ac\n", '\n'},
	{"raw after ICANON", func(*unix.Termios) {}, "ab\x7fc#", "ab\x7fc#", '#'},
	{"ISTRIP", func(t *unix.Termios) { t.Iflag |= unix.ISTRIP }, "A\xc1B#", "AAB#", '#'},
	{"IUCLC+IEXTEN", func(t *unix.Termios) { t.Iflag |= unix.IUCLC; t.Lflag |= unix.IEXTEN }, "AbC#", "abc#", '#'},
	{"ISIG VINTR", func(t *unix.Termios) { t.Lflag |= unix.ISIG; t.Cc[unix.VINTR] = 0x03 }, "ab\x03cd#", "cd#", '#'},
	{"PARMRK", func(t *unix.Termios) { t.Iflag |= unix.PARMRK }, "a\xffb#", "a\xff\xffb#", '#'},
	{"raw at last", func(*unix.Termios) {}, "a\xffb\r#", "a\xffb\r#", '#'},
}

// echoPort makes p's master echo what the application writes, as a device
// with an echo backend does through the bridge.
func echoPort(t testing.TB, p *Port) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, 256)
		for {
			n, err := p.Read(b)
			if err != nil {
				return
			}
			if _, err := p.Write(b[:n]); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { p.Close(); wg.Wait() })
}

// appReadUntil reads from the application side until sentinel or
// waitTimeout.
func appReadUntil(t testing.TB, f *os.File, sentinel byte) []byte {
	t.Helper()
	f.SetReadDeadline(time.Now().Add(waitTimeout))
	defer f.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 256)
	for bytes.IndexByte(got, sentinel) < 0 {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Logf("read %q, then %v", got, err)
			break
		}
	}
	return got
}

// TestInputModeSequenceLikePlainPty switches the application's input
// between raw and processed modes, in sequence, on a vsp port (EXTPROC
// while raw, the termios watch otherwise) and on a plain pty, both
// echoing: every row reads the same. The echo answers the application's
// own write, so it reaches the line discipline after the port followed
// the change (Read processes the status byte before the data written
// after it): no waiting is needed.
func TestInputModeSequenceLikePlainPty(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	echoPort(t, p)
	master, slave, err := cpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	go func() { _, _ = io.Copy(master, master) }()
	apps := []struct {
		name string
		a    *app
	}{{"plain pty", openApp(t, slave.Name())}, {"vsp", openApp(t, p.Name())}}
	for round := 0; round < 3; round++ {
		for _, row := range inputRows {
			for _, x := range apps {
				x.a.modify(t, func(tio *unix.Termios) { makeRawTio(tio); row.set(tio) })
				if _, err := x.a.f.Write([]byte(row.send)); err != nil {
					t.Fatal(err)
				}
				if got := appReadUntil(t, x.a.f, row.sentinel); string(got) != row.want {
					t.Errorf("round %d, %s, %s: sent %q, read %q, want %q", round, row.name, x.name, row.send, got, row.want)
				}
			}
		}
	}
	waitFollowed(t, apps[1].a)
	if tio := apps[1].a.termios(t); tio.Lflag&unix.EXTPROC == 0 {
		t.Errorf("raw at the end, but no EXTPROC: lflag %#o", tio.Lflag)
	}
}

// TestExtprocIsVsps: vsp's own EXTPROC switches are never reported; an
// application that drops EXTPROC while raw (a termios built from scratch)
// gets it back, one that sets it while not raw has it cleared.
func TestExtprocIsVsps(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	drain(t, p)
	a := openApp(t, p.Name())
	waitEvent(t, p, AppOpened, nil)
	if tio := a.termios(t); tio.Lflag&unix.EXTPROC == 0 {
		t.Fatalf("a new port is raw but has no EXTPROC: lflag %#o", tio.Lflag)
	}
	before := p.extprocSwitches.Load()
	for _, step := range []struct {
		name   string
		modify func(*unix.Termios)
	}{
		{"ICRNL", func(t *unix.Termios) { t.Iflag |= unix.ICRNL }},
		{"raw", func(t *unix.Termios) { t.Iflag &^= unix.ICRNL }},
		{"from scratch, raw", func(t *unix.Termios) { t.Lflag &^= unix.EXTPROC }},
		{"EXTPROC with IXON", func(t *unix.Termios) { t.Iflag |= unix.IXON; t.Lflag |= unix.EXTPROC }},
		{"raw from scratch again", func(t *unix.Termios) { t.Iflag &^= unix.IXON; t.Lflag &^= unix.EXTPROC }},
	} {
		a.modify(t, step.modify)
		waitFollowed(t, a)
		t.Logf("%s: lflag %#o", step.name, a.termios(t).Lflag)
	}
	if n := p.extprocSwitches.Load() - before; n != 5 {
		t.Errorf("%d EXTPROC switches, want 5", n)
	}
	// None of that changed Settings (IXON did: XONXOFF, reported and
	// then back).
	a.modify(t, func(tio *unix.Termios) { setSpeed(tio, 57600) })
	var seen []Settings
	noEventBefore(t, p, AppClosed, func(e Event) bool {
		if e.Kind == SettingsChanged {
			seen = append(seen, e.Settings)
		}
		return e.Kind == SettingsChanged && e.Settings.Baud == 57600
	})
	want := []Settings{
		{Baud: 9600, DataBits: 8, StopBits: 1, XONXOFF: true, Raw: true},
		{Baud: 9600, DataBits: 8, StopBits: 1, Raw: true},
		{Baud: 57600, DataBits: 8, StopBits: 1, Raw: true},
	}
	if !slices.Equal(seen, want) {
		t.Errorf("SettingsChanged events %v, want %v", seen, want)
	}
}

// TestEveryTcsetattrReported: each of many tcsetattr calls (a speed
// change) reaches the settings handler and Events exactly once, with the
// input raw (EXTPROC: status packets) and not raw (the termios watch);
// the latency from tcsetattr to the handler is logged.
func TestEveryTcsetattrReported(t *testing.T) {
	for _, mode := range inputModes {
		t.Run(mode.name, func(t *testing.T) {
			p := openPort(t, Config{PollInterval: -1})
			a := openApp(t, p.Name())
			a.modify(t, mode.set)
			waitFollowed(t, a)
			var base int64 // handler calls before the first speed change
			if want := settingsFromTermios(a.termios(t)); !want.Raw {
				waitEvent(t, p, SettingsChanged, func(e Event) bool { return e.Settings == want })
				base = 1 // that change, made before the handler was set, is passed on once it is (SetSettingsHandler)
			}
			var calls atomic.Int64
			var at atomic.Int64 // time of the last call, UnixNano
			p.SetSettingsHandler(func(Settings) {
				at.Store(time.Now().UnixNano())
				calls.Add(1)
			})
			var events atomic.Int64
			go func() {
				for e := range p.Events() {
					if e.Kind == SettingsChanged {
						events.Add(1)
					}
				}
			}()
			readInto(t, p, &orderLog{}, 256)
			testenv.Eventually(t, waitTimeout, "the mode change's handler call", func() bool { return calls.Load() == base })
			const n = 300
			lat := make([]time.Duration, 0, n)
			for i := 0; i < n; i++ {
				rate := uint32(19200)
				if i%2 == 1 {
					rate = 9600
				}
				start := time.Now()
				a.modify(t, func(tio *unix.Termios) { setSpeed(tio, rate) })
				testenv.Eventually(t, waitTimeout, "handler call", func() bool { return calls.Load() == base+int64(i+1) })
				lat = append(lat, time.Duration(at.Load()-start.UnixNano()))
			}
			testenv.Eventually(t, waitTimeout, "all events", func() bool { return events.Load() >= n })
			if calls.Load() != base+n || events.Load() != n {
				t.Fatalf("%d tcsetattr: %d handler calls (want %d), %d events", n, calls.Load(), base+n, events.Load())
			}
			slices.Sort(lat)
			t.Logf("%s: tcsetattr to handler p50 %v, p99 %v, max %v (%d changes)", mode.name,
				lat[n/2], lat[n*99/100], lat[n-1], n)
		})
	}
}

// TestRawBurstNoReread: while the input is raw, a burst of application
// writes causes no termios re-read (the termios watch is disarmed); with
// input processing on, the re-reads stay bounded by termiosWatchGap.
func TestRawBurstNoReread(t *testing.T) {
	for _, mode := range inputModes {
		t.Run(mode.name, func(t *testing.T) {
			p := openPort(t, Config{PollInterval: -1})
			msg := []byte("ping1234")
			got := make(chan struct{}, 1)
			go func() {
				b := make([]byte, 256)
				total := 0
				for {
					n, err := p.Read(b)
					if err != nil {
						return
					}
					if total += n; total%len(msg) == 0 {
						got <- struct{}{}
					}
				}
			}()
			a := openApp(t, p.Name())
			a.modify(t, mode.set)
			waitFollowed(t, a)
			// Let the re-reads the switch itself caused settle.
			testenv.Eventually(t, waitTimeout, "quiet", func() bool {
				r := p.rereads.Load()
				time.Sleep(20 * time.Millisecond)
				return p.rereads.Load() == r
			})
			before := p.rereads.Load()
			start := time.Now()
			const msgs = 2000
			for i := 0; i < msgs; i++ {
				if _, err := a.f.Write(msg); err != nil {
					t.Fatal(err)
				}
				// One message at a time, as a poller does.
				select {
				case <-got:
				case <-time.After(waitTimeout):
					t.Fatalf("message %d not read", i)
				}
			}
			elapsed := time.Since(start)
			n := p.rereads.Load() - before
			bound := uint64(elapsed/termiosWatchGap) + 3
			t.Logf("%s: %d messages in %v: %d termios re-reads (bound %d)", mode.name, msgs, elapsed.Round(time.Millisecond), n, bound)
			switch {
			case mode.raw && n != 0:
				t.Errorf("raw: %d re-reads during the burst, want 0", n)
			case !mode.raw && (n == 0 || n > bound):
				t.Errorf("%s: %d re-reads during the burst, want 1..%d", mode.name, n, bound)
			}
		})
	}
}

// TestReadErrorsUnchanged: the wake-up used for the settings handler never
// leaks out of Read as a deadline error, and Close still ends a Read.
func TestReadErrorsUnchanged(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	p.SetSettingsHandler(func(Settings) {})
	a := openApp(t, p.Name())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 8))
		errc <- err
	}()
	for i := 0; i < 20; i++ {
		a.modify(t, func(tio *unix.Termios) { setSpeed(tio, []uint32{19200, 9600}[i%2]) })
		waitEvent(t, p, SettingsChanged, nil)
	}
	select {
	case err := <-errc:
		t.Fatalf("Read returned %v while waiting", err)
	default:
	}
	p.Close()
	if err := <-errc; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
}

// inputModes are the application settings the notification tests run in:
// raw input (EXTPROC, status packets) and two kinds of processed input
// (the termios watch).
var inputModes = []struct {
	name string
	raw  bool
	set  func(*unix.Termios)
}{
	{"raw", true, func(*unix.Termios) {}},
	{"ICRNL", false, func(t *unix.Termios) { t.Iflag |= unix.ICRNL }},
	{"ICANON", false, func(t *unix.Termios) { t.Lflag |= unix.ICANON }},
}
