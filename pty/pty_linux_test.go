//go:build linux

package pty

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

const waitTimeout = 5 * time.Second

// tlog adapts testing.TB to an io.Writer for slog.
type tlog struct{ t testing.TB }

func (w tlog) Write(b []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func openPort(t testing.TB, cfg Config) *Port {
	t.Helper()
	log := slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if _, ok := t.(*testing.B); ok {
		log = nil
	}
	p, err := Open(cfg, log)
	if err != nil {
		t.Fatalf("Open(%+v): %v", cfg, err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return p
}

// app is the application side: the slave opened like a serial program
// does, non-blocking and in Go's poller so reads can time out.
type app struct {
	f  *os.File
	rc syscall.RawConn
}

func openApp(t testing.TB, path string) *app {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("app open %s: %v", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	a := &app{f: f, rc: rc}
	t.Cleanup(func() { a.f.Close() })
	return a
}

func (a *app) ctl(t testing.TB, f func(fd int) error) {
	t.Helper()
	var ferr error
	if err := a.rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		t.Fatal(err)
	}
	if ferr != nil {
		t.Fatal(ferr)
	}
}

// modify applies f to the app's termios with TCGETS2/TCSETS2.
func (a *app) modify(t testing.TB, f func(*unix.Termios)) {
	t.Helper()
	a.ctl(t, func(fd int) error {
		tio, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return err
		}
		f(tio)
		return unix.IoctlSetTermios(fd, ioctlSetTermios, tio)
	})
}

func (a *app) readFull(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	a.f.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(a.f, b); err != nil {
		t.Fatalf("app read: %v", err)
	}
	return b
}

// termios returns the application's termios.
func (a *app) termios(t testing.TB) *unix.Termios {
	t.Helper()
	var tio *unix.Termios
	a.ctl(t, func(fd int) (err error) {
		tio, err = unix.IoctlGetTermios(fd, ioctlGetTermios)
		return err
	})
	return tio
}

// waitFollowed waits until the port has followed the application's last
// tcsetattr: EXTPROC set if and only if the input is raw (see follow).
// Device bytes written before that may be processed raw.
func waitFollowed(t testing.TB, a *app) {
	t.Helper()
	testenv.Eventually(t, waitTimeout, "EXTPROC to follow the input mode", func() bool {
		tio := a.termios(t)
		return (tio.Lflag&unix.EXTPROC != 0) == rawInput(tio)
	})
}

func readPortFull(t testing.TB, p *Port, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	p.SetReadDeadline(time.Now().Add(waitTimeout))
	if _, err := io.ReadFull(p, b); err != nil {
		t.Fatalf("port read: %v", err)
	}
	return b
}

// drain reads the master in the background (packet-mode notifications are
// processed by Read) until the port closes.
func drain(t testing.TB, p *Port) {
	t.Helper()
	t.Cleanup(readPort(t, p, 256, func([]byte) {}))
}

// readPort reads p in the background, size bytes at a time, handing what
// it reads to f, until p is closed; any other read error fails the test.
// The function it returns closes p and waits for the reader.
func readPort(t testing.TB, p *Port, size int, f func([]byte)) (stop func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, size)
		for {
			n, err := p.Read(b)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("read: %v", err)
				}
				return
			}
			f(b[:n])
		}
	}()
	return func() { p.Close(); wg.Wait() }
}

// waitEvent returns the first event of kind k, failing after waitTimeout.
func waitEvent(t testing.TB, p *Port, k EventKind, match func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-p.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %v", k)
			}
			if e.Kind == k && (match == nil || match(e)) {
				return e
			}
		case <-timer.C:
			t.Fatalf("no %v event within %v", k, waitTimeout)
		}
	}
}

// noEventBefore reads events until one matches marker, failing if an
// event of kind k (other than the marker) comes first or no marker comes
// within waitTimeout. The marker is an event the test caused after the
// action that must not report k: events are delivered in order, so its
// arrival shows the port had its chance to report k.
func noEventBefore(t testing.TB, p *Port, k EventKind, marker func(Event) bool) {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		select {
		case e, ok := <-p.Events():
			if !ok {
				t.Fatal("events closed while waiting for the marker event")
			}
			if marker(e) {
				return
			}
			if e.Kind == k {
				t.Fatalf("unexpected %v event: %+v", k, e)
			}
		case <-timer.C:
			t.Fatalf("no marker event within %v", waitTimeout)
		}
	}
}

// waitAnyEvent returns the next event, failing after waitTimeout.
func waitAnyEvent(t testing.TB, p *Port) Event {
	t.Helper()
	select {
	case e := <-p.Events():
		return e
	case <-time.After(waitTimeout):
		t.Fatalf("no event within %v", waitTimeout)
	}
	return Event{}
}

// noEventQueued fails if an event of kind k is waiting in p's queue; for
// checks after a call that would have emitted it synchronously.
func noEventQueued(t testing.TB, p *Port, k EventKind) {
	t.Helper()
	for {
		select {
		case e := <-p.Events():
			if e.Kind == k {
				t.Fatalf("unexpected %v event: %+v", k, e)
			}
		default:
			return
		}
	}
}

func TestOpenLinkDataReopen(t *testing.T) {
	link := filepath.Join(t.TempDir(), "missing-dir", "ttyVSP0")
	p := openPort(t, Config{Link: link})
	if !strings.HasPrefix(p.Name(), "/dev/pts/") {
		t.Fatalf("Name = %q", p.Name())
	}
	if p.Link() != link {
		t.Fatalf("Link = %q, want %q", p.Link(), link)
	}
	if got, err := os.Readlink(link); err != nil || got != p.Name() {
		t.Fatalf("Readlink = %q, %v; want %q", got, err, p.Name())
	}
	s, err := p.Settings()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Settings{Baud: 9600, DataBits: 8, StopBits: 1, Raw: true}); s != want {
		t.Fatalf("initial Settings = %v, want %v", s, want)
	}

	for round := 0; round < 3; round++ {
		a := openApp(t, link)
		a.modify(t, func(tio *unix.Termios) { makeRaw(tio) })
		msg := []byte("hello from app " + string(rune('0'+round)))
		if _, err := a.f.Write(msg); err != nil {
			t.Fatal(err)
		}
		if got := readPortFull(t, p, len(msg)); !bytes.Equal(got, msg) {
			t.Fatalf("port read %q, want %q", got, msg)
		}
		back := []byte("hello from port")
		if _, err := p.Write(back); err != nil {
			t.Fatal(err)
		}
		if got := a.readFull(t, len(back)); !bytes.Equal(got, back) {
			t.Fatalf("app read %q, want %q", got, back)
		}
		a.f.Close()
		// With the app gone the master must neither EOF nor EIO: a read
		// just times out.
		p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		var b [16]byte
		n, err := p.Read(b[:])
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after app close = %d, %v; want deadline exceeded", n, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link still there after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := p.Settings(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Settings after Close: %v", err)
	}
	for range p.Events() { // buffered events, then closed
	}
}

func TestCloseUnblocks(t *testing.T) {
	p := openPort(t, Config{})
	errc := make(chan error, 2)
	go func() {
		var b [64]byte
		_, err := p.Read(b[:])
		errc <- err
	}()
	go func() {
		// Nobody reads the slave: the queue fills and Write blocks.
		_, err := p.Write(make([]byte, 1<<20))
		errc <- err
	}()
	// Close only once both calls are known to wait in the poller.
	testenv.Blocked(t, waitTimeout, "IO wait", "pty.(*Port).Read")
	testenv.Blocked(t, waitTimeout, "IO wait", "pty.(*Port).Write")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		select {
		case err := <-errc:
			if !errors.Is(err, os.ErrClosed) {
				t.Fatalf("blocked call returned %v, want os.ErrClosed", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Close did not unblock Read/Write")
		}
	}
	var b [1]byte
	if _, err := p.Read(b[:]); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close: %v", err)
	}
	if _, err := p.Write(b[:]); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestDeadlines(t *testing.T) {
	p := openPort(t, Config{})
	p.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	var b [8]byte
	if _, err := p.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read: %v", err)
	}
	// A deadline set while Write waits (the slave's queue full) ends it,
	// with the bytes written so far.
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := p.Write(make([]byte, 1<<20))
		done <- result{n, err}
	}()
	testenv.Blocked(t, waitTimeout, "IO wait", "pty.(*Port).Write")
	p.SetWriteDeadline(time.Now())
	var r result
	select {
	case r = <-done:
	case <-time.After(waitTimeout):
		t.Fatal("a deadline in the past did not end the waiting Write")
	}
	if !errors.Is(r.err, os.ErrDeadlineExceeded) || r.n == 0 {
		t.Fatalf("Write = %d, %v; want some bytes then deadline exceeded", r.n, r.err)
	}
	t.Logf("slave input queue held %d bytes", r.n)
}

// TestLinkExisting: whatever is at the link path and was not made by vsp
// is refused, named, and left exactly as it was.
func TestLinkExisting(t *testing.T) {
	tests := []struct {
		name string
		make func(t *testing.T, path string)
		want error
	}{
		{"dangling symlink", func(t *testing.T, path string) {
			must(t, os.Symlink("/dev/pts/does-not-exist", path))
		}, ErrNotOurs},
		{"symlink to file", func(t *testing.T, path string) {
			must(t, os.Symlink("/etc/hostname", path))
		}, ErrNotOurs},
		{"regular file", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, []byte("precious"), 0o644))
		}, ErrNotSymlink},
		{"character device", func(t *testing.T, path string) {
			if err := unix.Mknod(path, unix.S_IFCHR|0o600, int(unix.Mkdev(1, 3))); err != nil {
				testenv.Missing(t, "mknod needs CAP_MKNOD: "+err.Error())
			}
		}, ErrNotSymlink},
		{"directory", func(t *testing.T, path string) {
			must(t, os.Mkdir(path, 0o755))
		}, ErrNotSymlink},
	}
	for _, tt := range tests {
		for _, lockDir := range []string{"", "locks"} {
			t.Run(tt.name+"/lockdir="+lockDir, func(t *testing.T) {
				dir := t.TempDir()
				link := filepath.Join(dir, "ttyVSP0")
				tt.make(t, link)
				before, _ := os.Lstat(link)
				beforeTarget, _ := os.Readlink(link)
				cfg := Config{Link: link}
				if lockDir != "" {
					cfg.LockDir = filepath.Join(dir, lockDir)
				}
				p, err := Open(cfg, nil)
				if err == nil {
					p.Close()
					t.Fatal("Open took over a path vsp did not make")
				}
				if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), link) {
					t.Fatalf("error %q does not wrap %v or name the path", err, tt.want)
				}
				t.Log(err)
				after, err := os.Lstat(link)
				afterTarget, _ := os.Readlink(link)
				if err != nil || after.Mode() != before.Mode() || after.Size() != before.Size() || afterTarget != beforeTarget {
					t.Fatalf("file changed: %v %v -> %v", err, before.Mode(), after.Mode())
				}
				if lockDir != "" {
					if ents, _ := os.ReadDir(cfg.LockDir); len(ents) != 0 {
						t.Fatalf("refused claim left %v in the lock directory", ents)
					}
				}
			})
		}
	}
}

func TestCloseKeepsForeignLink(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyVSP0")
	p := openPort(t, Config{Link: link})
	// Someone else took the name over: Close must leave it alone.
	must(t, os.Remove(link))
	must(t, os.Symlink("/dev/null", link))
	must(t, p.Close())
	if got, _ := os.Readlink(link); got != "/dev/null" {
		t.Fatalf("foreign link removed or changed: %q", got)
	}
}

func TestOwnerGroupMode(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "chown to other users needs root")
	}
	tests := []struct {
		cfg       Config
		uid, gid  int
		mode      os.FileMode
		checkMode bool
	}{
		{Config{Group: "4242", Mode: 0o660}, 0, 4242, 0o660, true},
		{Config{Owner: "4243", Group: "4244", Mode: 0o600}, 4243, 4244, 0o600, true},
		{Config{Owner: "root", Group: "root"}, 0, 0, 0, false}, // mode: devpts default
	}
	for _, tt := range tests {
		p := openPort(t, tt.cfg)
		fi, err := os.Stat(p.Name())
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != tt.uid || int(st.Gid) != tt.gid || (tt.checkMode && fi.Mode().Perm() != tt.mode) {
			t.Errorf("%+v: got uid %d gid %d mode %v; want %d %d %v",
				tt.cfg, st.Uid, st.Gid, fi.Mode().Perm(), tt.uid, tt.gid, tt.mode)
		}
		p.Close()
	}
}

func TestBadConfig(t *testing.T) {
	tests := []Config{
		{Mode: os.ModeSetuid | 0o600},
		{Owner: "no-such-user-vsp"},
		{Group: "no-such-group-vsp"},
	}
	for _, cfg := range tests {
		if p, err := Open(cfg, nil); err == nil {
			p.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		} else if !errors.Is(err, ErrBadConfig) {
			t.Errorf("Open(%+v) = %v, want ErrBadConfig", cfg, err)
		}
	}
}

// settingSteps is what an application does to the port, one tcsetattr at
// a time, and the Settings that must follow.
var settingSteps = []struct {
	name   string
	modify func(*unix.Termios)
	want   Settings
}{
	{"9600", func(t *unix.Termios) { setSpeed(t, 9600); t.Cflag |= unix.CRTSCTS },
		Settings{Baud: 9600, DataBits: 8, StopBits: 1, RTSCTS: true, Raw: true}},
	{"57600", func(t *unix.Termios) { setSpeed(t, 57600) },
		Settings{Baud: 57600, DataBits: 8, StopBits: 1, RTSCTS: true, Raw: true}},
	{"250000 BOTHER", func(t *unix.Termios) { setSpeed(t, 250000); t.Cflag &^= unix.CRTSCTS },
		Settings{Baud: 250000, DataBits: 8, StopBits: 1, Raw: true}},
	{"2 stop bits", func(t *unix.Termios) { t.Cflag |= unix.CSTOPB },
		Settings{Baud: 250000, DataBits: 8, StopBits: 2, Raw: true}},
	{"crtscts", func(t *unix.Termios) { t.Cflag |= unix.CRTSCTS },
		Settings{Baud: 250000, DataBits: 8, StopBits: 2, RTSCTS: true, Raw: true}},
	{"ixon", func(t *unix.Termios) { t.Iflag |= unix.IXON },
		Settings{Baud: 250000, DataBits: 8, StopBits: 2, RTSCTS: true, XONXOFF: true, Raw: true}},
	{"7E1 forced to 8N1", func(t *unix.Termios) {
		t.Cflag = t.Cflag&^(unix.CSIZE|unix.CSTOPB) | unix.CS7 | unix.PARENB
		t.Iflag &^= unix.IXON
		setSpeed(t, 115200)
	}, Settings{Baud: 115200, DataBits: 8, StopBits: 1, RTSCTS: true, Raw: true}},
	{"cooked", func(t *unix.Termios) { t.Lflag |= unix.ICANON | unix.ECHO },
		Settings{Baud: 115200, DataBits: 8, StopBits: 1, RTSCTS: true}},
}

func TestSettingsEvents(t *testing.T) {
	modes := []struct {
		name       string
		cfg        Config
		setExtproc bool
	}{
		{"termios watch only", Config{PollInterval: -1}, false},
		{"app sets EXTPROC itself", Config{PollInterval: -1}, true},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			p := openPort(t, m.cfg)
			drain(t, p)
			a := openApp(t, p.Name())
			waitEvent(t, p, AppOpened, nil)
			if m.setExtproc {
				a.modify(t, func(tio *unix.Termios) { tio.Lflag |= unix.EXTPROC })
			}
			for _, st := range settingSteps {
				a.modify(t, st.modify)
				e := waitEvent(t, p, SettingsChanged, func(e Event) bool { return e.Settings == st.want })
				got, err := p.Settings()
				if err != nil {
					t.Fatal(err)
				}
				if got != st.want {
					t.Fatalf("%s: Settings() = %v, want %v", st.name, got, st.want)
				}
				t.Logf("%s: %v", st.name, e.Settings)
			}
		})
	}
}

func TestSettingsUnchangedNoEvent(t *testing.T) {
	p := openPort(t, Config{PollInterval: 10 * time.Millisecond})
	drain(t, p)
	a := openApp(t, p.Name())
	// Same settings again: a TIOCPKT_IOCTL packet arrives but nothing changed.
	a.modify(t, func(*unix.Termios) {})
	// Then a real change, reported after anything the first one caused.
	a.modify(t, func(tio *unix.Termios) { setSpeed(tio, 57600) })
	noEventBefore(t, p, SettingsChanged, func(e Event) bool { return e.Kind == SettingsChanged && e.Settings.Baud == 57600 })
}

func TestFlushEvents(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	drain(t, p)
	a := openApp(t, p.Name())
	tests := []struct {
		queue int
		kinds []EventKind
	}{
		{unix.TCIFLUSH, []EventKind{FlushRead}},
		{unix.TCOFLUSH, []EventKind{FlushWrite}},
		{unix.TCIOFLUSH, []EventKind{FlushRead, FlushWrite}},
	}
	for _, tt := range tests {
		a.ctl(t, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCFLSH, tt.queue) })
		for _, k := range tt.kinds {
			waitEvent(t, p, k, nil)
		}
	}
	// Our own DiscardInput is not reported.
	must(t, p.DiscardInput())
	// The application's output flush comes after it in the event order.
	a.ctl(t, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCOFLUSH) })
	noEventBefore(t, p, FlushRead, func(e Event) bool { return e.Kind == FlushWrite })
}

func TestBreakInvisible(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	drain(t, p)
	a := openApp(t, p.Name())
	waitEvent(t, p, AppOpened, nil)
	// tcsendbreak: TCSBRK with 0 succeeds and the master sees nothing.
	a.ctl(t, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCSBRK, 0) })
	a.ctl(t, func(fd int) error {
		if _, err := unix.IoctlGetInt(fd, unix.TIOCMGET); !errors.Is(err, unix.ENOTTY) {
			return errors.New("TIOCMGET on a pty did not fail with ENOTTY")
		}
		return nil
	})
	// Output stopped by the application is reported, after anything the
	// break caused.
	a.ctl(t, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCXONC, unix.TCOOFF) })
	if e := waitAnyEvent(t, p); e.Kind != OutputStopped {
		t.Fatalf("break produced event %+v", e)
	}
}

func TestOutputStopStart(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	drain(t, p)
	a := openApp(t, p.Name())
	a.ctl(t, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCXONC, unix.TCOOFF) })
	waitEvent(t, p, OutputStopped, nil)
	a.ctl(t, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCXONC, unix.TCOON) })
	waitEvent(t, p, OutputStarted, nil)
}

func TestAppOpen(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyVSP0")
	p := openPort(t, Config{Link: link})
	if p.AppOpen() {
		t.Fatal("AppOpen before any app")
	}
	a1 := openApp(t, link)
	waitEvent(t, p, AppOpened, nil)
	if !p.AppOpen() {
		t.Fatal("AppOpen false with an app")
	}
	a2 := openApp(t, p.Name())
	testenv.Eventually(t, waitTimeout, "the second open counted", func() bool { return p.opens.Load() == 2 })
	a1.f.Close()
	testenv.Eventually(t, waitTimeout, "the first close counted", func() bool { return p.opens.Load() == 1 })
	noEventQueued(t, p, AppClosed)
	if !p.AppOpen() {
		t.Fatal("AppOpen false with one app left")
	}
	a2.f.Close()
	waitEvent(t, p, AppClosed, nil)
	if p.AppOpen() {
		t.Fatal("AppOpen true after all apps closed")
	}
	openApp(t, link)
	waitEvent(t, p, AppOpened, nil)
}

func TestDiscardInput(t *testing.T) {
	p := openPort(t, Config{})
	stale := bytes.Repeat([]byte("stale"), 8000) // 40 kB: beyond n_tty's 4 KiB
	p.SetWriteDeadline(time.Now().Add(200 * time.Millisecond))
	n, _ := p.Write(stale)
	p.SetWriteDeadline(time.Time{})
	if n == 0 {
		t.Fatal("nothing queued: the test would prove nothing")
	}
	t.Logf("queued %d stale bytes", n)
	must(t, p.DiscardInput())
	a := openApp(t, p.Name())
	if _, err := p.Write([]byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if got := a.readFull(t, 5); string(got) != "fresh" {
		t.Fatalf("app read %q after DiscardInput, want fresh", got)
	}
}

func TestAllByteValues(t *testing.T) {
	// Bytes equal to packet-mode status values must pass as data, through
	// both the normal and the 1-byte Read path.
	p := openPort(t, Config{})
	a := openApp(t, p.Name())
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if _, err := a.f.Write(all); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, 256)
	p.SetReadDeadline(time.Now().Add(waitTimeout))
	for len(got) < 256 {
		var b [1]byte
		n, err := p.Read(b[:])
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b[:n]...)
	}
	if !bytes.Equal(got, all) {
		t.Fatalf("1-byte reads: got % x", got)
	}
}

func TestIntegrity1MiB(t *testing.T) {
	const size = 1 << 20
	p := openPort(t, Config{})
	a := openApp(t, p.Name())
	pattern := func(seed byte) []byte {
		b := make([]byte, size)
		x := uint32(seed) + 1
		for i := range b {
			x = x*1664525 + 1013904223
			b[i] = byte(x >> 24)
		}
		return b
	}
	down, up := pattern(1), pattern(2)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	deadline := time.Now().Add(30 * time.Second)
	p.SetReadDeadline(deadline)
	p.SetWriteDeadline(deadline)
	a.f.SetDeadline(deadline)
	copyCheck := func(name string, w io.Writer, r io.Reader, data []byte) {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := w.Write(data); err != nil {
				errc <- errors.New(name + " write: " + err.Error())
			}
		}()
		go func() {
			defer wg.Done()
			got := make([]byte, size)
			if _, err := io.ReadFull(r, got); err != nil {
				errc <- errors.New(name + " read: " + err.Error())
				return
			}
			if !bytes.Equal(got, data) {
				errc <- errors.New(name + ": data corrupted")
			}
		}()
	}
	copyCheck("port->app", p, a.f, down)
	copyCheck("app->port", a.f, p, up)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
}

// TestControllingTerminalHangup: an application that is a session leader
// and opens the port without O_NOCTTY makes it its controlling terminal.
// When it exits the kernel does not hang a pty up (disassociate_ctty skips
// TTY_DRIVER_TYPE_PTY), but whatever happens the master must survive, keep
// its settings, and the next application must work.
func TestControllingTerminalHangup(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh (an essential package) is missing: %v", err)
	}
	p := openPort(t, Config{PollInterval: 20 * time.Millisecond})
	before, err := p.Settings()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "-c", `exec 3<>"$1"; printf ctty >&3; cut -d' ' -f7 /proc/$$/stat`, "sh", p.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if strings.TrimSpace(string(out)) == "0" {
		t.Fatal("the shell did not get the port as controlling terminal")
	}
	if got := readPortFull(t, p, 4); string(got) != "ctty" {
		t.Fatalf("read %q", got)
	}
	p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	var b [8]byte
	if _, err := p.Read(b[:]); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("master read after hangup: %v", err)
	}
	if s, err := p.Settings(); err != nil || s != before {
		t.Errorf("settings after hangup: %v, %v; want %v as before", s, err, before)
	}
	a := openApp(t, p.Name())
	a.modify(t, func(tio *unix.Termios) { makeRaw(tio) })
	if _, err := a.f.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if got := readPortFull(t, p, 5); string(got) != "again" {
		t.Fatalf("read %q", got)
	}
	if _, err := p.Write([]byte("back")); err != nil {
		t.Fatal(err)
	}
	if got := a.readFull(t, 4); string(got) != "back" {
		t.Fatalf("app read %q", got)
	}
	if err := p.DiscardInput(); err != nil {
		t.Errorf("DiscardInput after hangup: %v", err)
	}
}

func BenchmarkRoundTrip1B(b *testing.B) {
	p := openPort(b, Config{PollInterval: -1})
	a := openApp(b, p.Name())
	a.modify(b, func(tio *unix.Termios) { makeRaw(tio) })
	var ab, pb [1]byte
	ab[0] = 'x'
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := a.f.Write(ab[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Read(pb[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Write(pb[:]); err != nil {
			b.Fatal(err)
		}
		if _, err := a.f.Read(ab[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestCanonical: the slave has no EXTPROC, so an application in canonical
// mode gets a normal cooked tty: line editing, ICRNL, echo (see LIMITS.md).
func TestCanonical(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	a := openApp(t, p.Name())
	a.modify(t, func(tio *unix.Termios) {
		tio.Lflag |= unix.ICANON | unix.ECHO | unix.ECHOE | unix.ISIG | unix.IEXTEN
		tio.Iflag |= unix.ICRNL
		tio.Oflag |= unix.OPOST | unix.ONLCR
		tio.Cc[unix.VERASE] = 0x7f
	})
	waitFollowed(t, a)
	if _, err := p.Write([]byte("ab\x7fc\r")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	a.f.SetReadDeadline(time.Now().Add(waitTimeout))
	n, err := a.f.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(buf[:n]), "ac\n"; got != want {
		t.Errorf("app read %q, want %q", got, want)
	}
	// The application's own output follows the echo on the same path to
	// the master: read up to it.
	if _, err := a.f.Write([]byte("#")); err != nil {
		t.Fatal(err)
	}
	p.SetReadDeadline(time.Now().Add(waitTimeout))
	var echo []byte
	for !bytes.HasSuffix(echo, []byte("#")) {
		n, err := p.Read(buf)
		if err != nil {
			t.Fatalf("master read %q, then %v; want the echo and %q", echo, err, "#")
		}
		echo = append(echo, buf[:n]...)
	}
	echo = bytes.TrimSuffix(echo, []byte("#"))
	if want := "ab\b \bc\r\n"; string(echo) != want {
		t.Errorf("echo %q, want %q", echo, want)
	}
}

// TestIXON: XOFF from the device stops a raw+IXON application's output
// (its non-blocking write accepts nothing; OutputStopped), XON resumes it;
// neither reaches the application as data.
func TestIXON(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	a := openApp(t, p.Name())
	a.modify(t, func(tio *unix.Termios) { tio.Iflag |= unix.IXON })
	waitFollowed(t, a)
	if _, err := p.Write([]byte("\x13x")); err != nil {
		t.Fatal(err)
	}
	if got := a.readFull(t, 1); string(got) != "x" {
		t.Fatalf("app read %q, want %q", got, "x")
	}
	go func() {
		// Packets are only processed while Read is called.
		buf := make([]byte, 64)
		for {
			if _, err := p.Read(buf); err != nil {
				return
			}
		}
	}()
	waitEvent(t, p, OutputStopped, nil)
	fd := int(a.f.Fd())
	must(t, unix.SetNonblock(fd, true))
	if n, err := unix.Write(fd, []byte("y")); n > 0 || err != unix.EAGAIN {
		t.Fatalf("write while stopped = %d, %v; want EAGAIN", n, err)
	}
	if _, err := p.Write([]byte("\x11")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, p, OutputStarted, nil)
	if n, err := unix.Write(fd, []byte("y")); n != 1 || err != nil {
		t.Fatalf("write after XON = %d, %v", n, err)
	}
}

func TestCheckLinkAllowed(t *testing.T) {
	tests := []struct {
		link string
		euid int
		ok   bool
	}{
		{"/dev/ttyVSP0", 0, true},
		{"/dev/ttyVSP0", 1000, false},
		{"/dev/serial/vsp0", 1000, false},
		{"/devices/ttyVSP0", 1000, true},
		{"/run/user/1000/vsp/ttyVSP0", 1000, true},
	}
	for _, tt := range tests {
		err := checkLinkAllowed(tt.link, tt.euid)
		if (err == nil) != tt.ok || (err != nil && (!errors.Is(err, ErrNeedRoot) || !strings.Contains(err.Error(), tt.link))) {
			t.Errorf("checkLinkAllowed(%q, %d) = %v", tt.link, tt.euid, err)
		}
	}
}

// The termios watch's goroutine is also the poll's timer: with the watch
// on and nothing happening on the tty, the settings are still re-read
// every PollInterval, and the Port runs one goroutine of its own for both.
func TestPollWithTermWatch(t *testing.T) {
	w, err := NewOpenWatcher(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	before := runtime.NumGoroutine()
	p := openPort(t, Config{PollInterval: 20 * time.Millisecond, Watcher: w}) // the open/close watch shared, as in the daemon
	if p.tw == nil {
		t.Fatal("no termios watch")
	}
	if n := runtime.NumGoroutine() - before; n != 1 {
		t.Errorf("the Port runs %d goroutines, want 1 (the watch, which also polls)", n)
	}
	r0 := p.rereads.Load()
	testenv.Eventually(t, 5*time.Second, "three polls", func() bool { return p.rereads.Load() >= r0+3 })
}

// Settings changes are reported in the order they happened, even when
// several goroutines re-read the settings at once (the Read goroutine on a
// status byte, the termios watch, the poll): each change's event is queued
// with the re-read that saw it, never after a later one's.
func TestSettingsEventsInOrder(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	drain(t, p)
	a := openApp(t, p.Name())
	var got []uint32
	done := make(chan struct{})
	go func() { // read events as they come: none is dropped
		defer close(done)
		for e := range p.Events() {
			if e.Kind == SettingsChanged {
				got = append(got, e.Settings.Baud)
			}
		}
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 3 { // re-readers racing the termios watch
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					p.refresh(false)
				}
			}
		}()
	}
	// Ever higher speeds (BOTHER takes any): a change missed by the
	// re-reads leaves a gap, a change reported late goes down.
	const first, changes = 10000, 400
	for i := range changes {
		a.modify(t, func(tio *unix.Termios) { setSpeed(tio, first+uint32(i)) })
	}
	close(stop)
	wg.Wait()
	p.refresh(false)
	if err := p.Close(); err != nil { // closes Events: the reader ends
		t.Fatal(err)
	}
	<-done
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("event %d: %d baud reported after %d baud: an earlier change came late", i, got[i], got[i-1])
		}
	}
	if len(got) == 0 || got[len(got)-1] != first+changes-1 {
		t.Fatalf("the last event is not the last change (%d baud): %v", first+changes-1, got)
	}
	t.Logf("%d changes, %d events", changes, len(got))
}
