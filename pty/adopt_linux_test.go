//go:build linux

package pty

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func adoptPort(t testing.TB, cfg Config, master, slave *os.File) *Port {
	t.Helper()
	p, err := Adopt(cfg, master, slave, slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("Adopt: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// noHangup fails if the application's fd reports a hang-up or an error.
func noHangup(t testing.TB, a *app) {
	t.Helper()
	a.ctl(t, func(fd int) error {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		if _, err := unix.Poll(pfd, 0); err != nil {
			return err
		}
		if pfd[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
			t.Fatalf("application fd polls %#x (hang-up or error)", pfd[0].Revents)
		}
		return nil
	})
}

// TestAdoptKeepsTheTTY hands a port from one Port to the next as a daemon
// restart through systemd's fd store does: same /dev/pts/N, same link, the
// application's fd never hangs up, its settings stay, and what it wrote
// while no Port ran is read by the new one.
func TestAdoptKeepsTheTTY(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "ttyVSP0")
	cfg := Config{Link: link, Mode: 0o660, LockDir: filepath.Join(dir, "run"), Name: "VSP0"}
	p1, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := openApp(t, link)
	waitEvent(t, p1, AppOpened, nil)
	a.modify(t, func(tio *unix.Termios) { setSpeed(tio, 19200) })
	if _, err := a.f.Write([]byte("before ")); err != nil {
		t.Fatal(err)
	}
	m, s, err := p1.Files()
	if err != nil {
		t.Fatal(err)
	}
	name := p1.Name()
	if err := p1.Release(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(link); err != nil || got != name {
		t.Fatalf("after Release the link is %q, %v; want %s", got, err, name)
	}
	noHangup(t, a)
	if _, err := a.f.Write([]byte("gap")); err != nil { // no Port runs
		t.Fatalf("app write with no Port: %v", err)
	}

	p2 := adoptPort(t, cfg, m, s)
	if p2.Name() != name {
		t.Fatalf("adopted %s, want %s", p2.Name(), name)
	}
	if got, _ := os.Readlink(link); got != name {
		t.Fatalf("link points at %q, want %s", got, name)
	}
	// The adopted port holds the link's lock again.
	if p3, err := Open(cfg, nil); !errors.Is(err, ErrLinkBusy) {
		if err == nil {
			p3.Close()
		}
		t.Fatalf("a second Port on the adopted port's link: %v, want ErrLinkBusy", err)
	}
	if st, _ := p2.Settings(); st.Baud != 19200 {
		t.Fatalf("settings after adoption %v, want the application's 19200", st)
	}
	if got := readPortFull(t, p2, len("before gap")); string(got) != "before gap" {
		t.Fatalf("read %q", got)
	}
	if _, err := p2.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	if got := a.readFull(t, 5); string(got) != "reply" {
		t.Fatalf("app read %q", got)
	}
	// Packet mode is on again: a settings change is an event.
	a.modify(t, func(tio *unix.Termios) { setSpeed(tio, 38400) })
	drainOnce := make([]byte, 16)
	go func() { _, _ = p2.Read(drainOnce) }()
	waitEvent(t, p2, SettingsChanged, func(e Event) bool { return e.Settings.Baud == 38400 })
	// Open tracking works on the adopted port (closes, and opens that
	// were there before, are seen for applications in other processes:
	// TestKeeperNotAnApplication).
	a.f.Close()
	noHangupAfter := openApp(t, link)
	waitEvent(t, p2, AppOpened, nil)
	noHangup(t, noHangupAfter)
	if err := p2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the link: %v", err)
	}
}

// TestAdoptRefusesMismatch: a slave fd of another pair is refused, and the
// files given are closed.
func TestAdoptRefusesMismatch(t *testing.T) {
	p1 := openPort(t, Config{})
	p2 := openPort(t, Config{})
	m1, _, err := p1.Files()
	if err != nil {
		t.Fatal(err)
	}
	_, s2, err := p2.Files()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Adopt(Config{}, m1, s2, nil); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("Adopt of a mismatched pair: %v", err)
	}
	if _, err := m1.Stat(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Adopt left its master open: %v", err)
	}
	// Neither a regular file.
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	_, s1, _ := p1.Files()
	if _, err := Adopt(Config{}, f, s1, nil); err == nil {
		t.Fatal("adopted a regular file as master")
	}
}

// TestKeeperNotAnApplication: an adopted port counts the applications
// that already have it open, and the process that keeps the Port's fds
// (the service manager) is not one of them.
func TestKeeperNotAnApplication(t *testing.T) {
	p1, err := Open(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hold := func(files ...*os.File) *exec.Cmd {
		c := exec.Command("sleep", "60")
		c.ExtraFiles = files
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill(); c.Wait() })
		return c
	}
	m, ks, err := p1.Files()
	if err != nil {
		t.Fatal(err)
	}
	keeper := hold(m, ks)
	m.Close()
	ks.Close()
	af, err := os.OpenFile(p1.Name(), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	app := hold(af) // an application in another process
	af.Close()
	m2, s2, err := p1.Files()
	if err != nil {
		t.Fatal(err)
	}
	_ = p1.Release()
	p := adoptPort(t, Config{Keeper: keeper.Process.Pid}, m2, s2)
	if !p.AppOpen() {
		t.Fatal("AppOpen false while another process has the port open")
	}
	app.Process.Kill()
	app.Wait()
	waitEvent(t, p, AppClosed, nil)
	if p.AppOpen() {
		t.Fatal("the keeper's slave fd counted as an application")
	}
}

// TestAdoptClearsExtproc: a pty kept by an older vsp has EXTPROC set (it
// used it to hear tcsetattr) even with input processing on; Adopt clears
// it, so the application's input processing works again (LIMITS.md), and
// keeps the rest of its termios; the adopted Port hears the application's
// changes, and sets EXTPROC when the input becomes raw.
func TestAdoptClearsExtproc(t *testing.T) {
	p1 := openPort(t, Config{PollInterval: -1})
	a := openApp(t, p1.Name())
	a.modify(t, func(tio *unix.Termios) { tio.Lflag |= unix.EXTPROC; tio.Iflag |= unix.ICRNL; setSpeed(tio, 19200) })
	m, s, err := p1.Files()
	if err != nil {
		t.Fatal(err)
	}
	must(t, p1.Release())
	p2 := adoptPort(t, Config{PollInterval: -1}, m, s)
	var tio *unix.Termios
	a.ctl(t, func(fd int) (err error) {
		tio, err = unix.IoctlGetTermios(fd, ioctlGetTermios)
		return err
	})
	if tio.Lflag&unix.EXTPROC != 0 || tio.Iflag&unix.ICRNL == 0 || outputSpeed(tio) != 19200 {
		t.Fatalf("after Adopt: lflag %#o iflag %#o speed %d; want EXTPROC cleared, ICRNL and 19200 kept", tio.Lflag, tio.Iflag, outputSpeed(tio))
	}
	a.modify(t, func(tio *unix.Termios) { setSpeed(tio, 57600) })
	waitEvent(t, p2, SettingsChanged, func(e Event) bool { return e.Settings.Baud == 57600 })
	a.modify(t, func(tio *unix.Termios) { tio.Iflag &^= unix.ICRNL })
	waitFollowed(t, a)
	if tio := a.termios(t); tio.Lflag&unix.EXTPROC == 0 {
		t.Fatalf("raw after Adopt, but no EXTPROC: lflag %#o", tio.Lflag)
	}
}
