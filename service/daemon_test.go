//go:build linux

package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// startDaemon runs a daemon on a fresh directory with the real file
// loader; links go to a private directory.
func startDaemon(t *testing.T) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	d, _ := runDaemon(t, dir, t.TempDir())
	return d, dir
}

// runDaemon runs a daemon on dir whose bare link names go to linkDir, until
// stop (or the end of the test).
func runDaemon(t *testing.T, dir, linkDir string) (d *Daemon, stop func()) {
	t.Helper()
	d, err := NewDaemon(DaemonConfig{
		ConfigDir: dir,
		Debounce:  20 * time.Millisecond,
		Load:      FileLoader(config.Paths{LinkDir: linkDir, KnownDevices: filepath.Join(t.TempDir(), "known")}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d, start(t, d)
}

// start runs d until stop (or the end of the test); stop waits for Run and
// reports its error. It may be called more than once.
func start(t *testing.T, d *Daemon) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func waitDaemon(t *testing.T, d *Daemon, what string, ok func(map[string]PortState) bool) map[string]PortState {
	t.Helper()
	states := func() map[string]PortState {
		m := map[string]PortState{}
		for _, s := range d.States() {
			m[s.Name] = s
			if s.Name == "" { // a file that never ran has no Status
				m[strings.TrimSuffix(filepath.Base(s.File), ".toml")] = s
			}
		}
		return m
	}
	return testenv.Await(t, 10*time.Second, "daemon: "+what, states, ok)
}

func writePortFile(t *testing.T, dir, name, body string) {
	t.Helper()
	// Atomically, as vsp create does: the daemon must not see a
	// half-written file.
	tmp := filepath.Join(dir, "."+name+".toml.tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name+".toml")); err != nil {
		t.Fatal(err)
	}
}

// conflictCase is two port files that cannot run side by side; the
// second, the intruder, dials a device of its own (when it dials at all).
type conflictCase struct {
	name   string
	a, b   func(linkDir, devA, devB string) string // port file bodies
	key    string                                  // the key both errors are at
	line   int                                     // its line, in both files
	reason string                                  // a part of b's error
}

func conflictCases(t *testing.T) []conflictCase {
	dial := func(link, dev string) string {
		return fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev)
	}
	listenAt := freeLoopbackPort(t)
	return []conflictCase{
		{name: "same link",
			a:   func(ld, da, db string) string { return dial(filepath.Join(ld, "ttySAME"), da) },
			b:   func(ld, da, db string) string { return dial(filepath.Join(ld, "ttySAME"), db) },
			key: "link", line: 1, reason: "is also the link of port"},
		// SpecFromConfig puts a bare name into the link directory: it is
		// the same link as the absolute path there.
		{name: "bare name and absolute path",
			a:   func(ld, da, db string) string { return dial(filepath.Join(ld, "ttyBARE"), da) },
			b:   func(ld, da, db string) string { return dial("ttyBARE", db) },
			key: "link", line: 1, reason: "is also the link of port"},
		{name: "overlapping listen addresses",
			a: func(ld, da, db string) string {
				return fmt.Sprintf("link = %q\ntls = \"off\"\nlisten = \"127.0.0.1:%d\"\n", filepath.Join(ld, "ttyLA"), listenAt)
			},
			b: func(ld, da, db string) string {
				return fmt.Sprintf("link = %q\ntls = \"off\"\nlisten = \":%d\"\n", filepath.Join(ld, "ttyLB"), listenAt)
			},
			key: "listen", line: 3, reason: "overlaps the listen address"},
	}
}

// freeLoopbackPort returns a TCP port nobody listens on now.
func freeLoopbackPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// checkNames fails unless err names file's key at line and the other file
// at the same line.
func checkNames(t *testing.T, got, file, other, key string, line int, reason string) {
	t.Helper()
	if want := fmt.Sprintf("%s:%d:1: %s: ", file, line, key); !strings.HasPrefix(got, want) {
		t.Errorf("error %q does not start with %q", got, want)
	}
	if want := fmt.Sprintf("(%s:%d:1)", other, line); !strings.Contains(got, want) || !strings.Contains(got, reason) {
		t.Errorf("error %q does not say %q naming %s", got, reason, want)
	}
}

// A running port keeps its link and listen address: a file that claims
// either is refused with an error naming both files, and starts by itself
// once the running port is deleted.
func TestDaemonConflictKeepsRunningPort(t *testing.T) {
	for _, tc := range conflictCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			devA, devB := testenv.NewDevice(t), testenv.NewDevice(t)
			dir, linkDir := t.TempDir(), t.TempDir()
			d, _ := runDaemon(t, dir, linkDir)
			writePortFile(t, dir, "a", tc.a(linkDir, devA.Addr(), devB.Addr()))
			m := waitDaemon(t, d, "a running", func(m map[string]PortState) bool { return m["a"].Running })
			tty := m["a"].TTY
			writePortFile(t, dir, "b", tc.b(linkDir, devA.Addr(), devB.Addr()))
			m = waitDaemon(t, d, "b refused", func(m map[string]PortState) bool { return m["b"].ConfigError != "" })
			checkNames(t, m["b"].ConfigError, filepath.Join(dir, "b.toml"), filepath.Join(dir, "a.toml"), tc.key, tc.line, tc.reason)
			if m["b"].Running || !m["a"].Running || m["a"].ConfigError != "" || m["a"].TTY != tty {
				t.Fatalf("after the intruder: a running %v (error %q, tty %s, was %s), b running %v; want a untouched, b not running",
					m["a"].Running, m["a"].ConfigError, m["a"].TTY, tty, m["b"].Running)
			}
			if n := devB.Sessions(); n != 0 {
				t.Errorf("the refused file's device accepted %d connections", n)
			}

			// The running port goes: the refused file is tried again and
			// starts, with no change to it.
			if err := os.Remove(filepath.Join(dir, "a.toml")); err != nil {
				t.Fatal(err)
			}
			waitDaemon(t, d, "b running after a was deleted", func(m map[string]PortState) bool {
				_, a := m["a"]
				return !a && m["b"].Running && m["b"].ConfigError == ""
			})
		})
	}
}

// When no port holds what two files claim — at start-up, and so across a
// daemon restart — both are refused and neither gets the tty; deleting one
// lets the other start.
func TestDaemonConflictAtStartup(t *testing.T) {
	for _, tc := range conflictCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			devA, devB := testenv.NewDevice(t), testenv.NewDevice(t)
			dir, linkDir := t.TempDir(), t.TempDir()
			d, stop := runDaemon(t, dir, linkDir)
			writePortFile(t, dir, "a", tc.a(linkDir, devA.Addr(), devB.Addr()))
			waitDaemon(t, d, "a running", func(m map[string]PortState) bool { return m["a"].Running })
			stop()
			writePortFile(t, dir, "b", tc.b(linkDir, devA.Addr(), devB.Addr()))
			before := devA.Sessions()

			d, _ = runDaemon(t, dir, linkDir)
			m := waitDaemon(t, d, "both refused", func(m map[string]PortState) bool {
				return m["a"].ConfigError != "" && m["b"].ConfigError != ""
			})
			pa, pb := filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")
			checkNames(t, m["a"].ConfigError, pa, pb, tc.key, tc.line, tc.reason)
			checkNames(t, m["b"].ConfigError, pb, pa, tc.key, tc.line, tc.reason)
			if m["a"].Running || m["b"].Running {
				t.Fatalf("a running %v, b running %v; want neither", m["a"].Running, m["b"].Running)
			}
			ents, err := os.ReadDir(linkDir)
			if err != nil || len(ents) != 0 {
				t.Errorf("link directory holds %v (%v); want no link for either file", ents, err)
			}
			if n := devB.Sessions(); n != 0 {
				t.Errorf("the intruder's device accepted %d connections", n)
			}
			if n := devA.Sessions(); n != before {
				t.Errorf("a's device accepted %d new connections while a was refused", n-before)
			}

			if err := os.Remove(pb); err != nil {
				t.Fatal(err)
			}
			waitDaemon(t, d, "a running after b was deleted", func(m map[string]PortState) bool {
				_, b := m["b"]
				return !b && m["a"].Running && m["a"].ConfigError == ""
			})
		})
	}
}

// A refused file starts when the port it conflicts with moves to another
// link; and two files that claim a link nobody holds are both refused
// while a third port keeps running.
func TestDaemonConflictAfterMove(t *testing.T) {
	dev := testenv.NewDevice(t)
	dir, linkDir := t.TempDir(), t.TempDir()
	d, _ := runDaemon(t, dir, linkDir)
	body := func(link string) string {
		return fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev.Addr())
	}
	writePortFile(t, dir, "a", body("ttyX"))
	waitDaemon(t, d, "a running", func(m map[string]PortState) bool { return m["a"].Running })
	writePortFile(t, dir, "b", body("ttyX"))
	waitDaemon(t, d, "b refused", func(m map[string]PortState) bool { return m["b"].ConfigError != "" })
	writePortFile(t, dir, "a", body("ttyY"))
	m := waitDaemon(t, d, "a moved, b running", func(m map[string]PortState) bool {
		return m["a"].Running && m["b"].Running && m["b"].ConfigError == ""
	})
	if m["a"].Link != filepath.Join(linkDir, "ttyY") || m["b"].Link != filepath.Join(linkDir, "ttyX") {
		t.Fatalf("links: a %s, b %s", m["a"].Link, m["b"].Link)
	}

}

// Files of one batch that claim what no running port holds are all
// refused, also when one of them is a running port moving there; that
// port keeps what it had. (One batch is what the daemon applies after one
// debounce period; the test calls apply itself to be sure both files are
// in it.)
func TestDaemonConflictInOneBatch(t *testing.T) {
	dev := testenv.NewDevice(t)
	dir, linkDir := t.TempDir(), t.TempDir()
	d, err := NewDaemon(DaemonConfig{ConfigDir: dir, Load: FileLoader(config.Paths{LinkDir: linkDir})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.closeAll()
	body := func(link string) string {
		return fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev.Addr())
	}
	writePortFile(t, dir, "a", body("ttyY"))
	d.apply([]string{"a"})
	writePortFile(t, dir, "a", body("ttyZ"))
	writePortFile(t, dir, "c", body("ttyZ"))
	d.apply([]string{"a", "c"})
	m := waitDaemon(t, d, "a and c refused", func(m map[string]PortState) bool {
		return m["a"].ConfigError != "" && m["c"].ConfigError != ""
	})
	if !m["a"].Running || m["a"].Link != filepath.Join(linkDir, "ttyY") || m["c"].Running {
		t.Fatalf("a running %v on %s, c running %v; want a still on ttyY, c not running", m["a"].Running, m["a"].Link, m["c"].Running)
	}
	checkNames(t, m["c"].ConfigError, filepath.Join(dir, "c.toml"), filepath.Join(dir, "a.toml"), "link", 1, "is also the link of port")
	if _, err := os.Lstat(filepath.Join(linkDir, "ttyZ")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ttyZ: %v; want no link", err)
	}
	// c gives up: a moves.
	if err := os.Remove(filepath.Join(dir, "c.toml")); err != nil {
		t.Fatal(err)
	}
	d.apply([]string{"c"})
	waitDaemon(t, d, "a on ttyZ", func(m map[string]PortState) bool {
		return m["a"].Link == filepath.Join(linkDir, "ttyZ") && m["a"].ConfigError == ""
	})
}

// A file that is invalid from the start never runs, and its state says
// where the problem is; files that are not port files are ignored.
func TestDaemonInvalidAndIgnoredFiles(t *testing.T) {
	dev := testenv.NewDevice(t)
	d, dir := startDaemon(t)
	writePortFile(t, dir, "bad", fmt.Sprintf("link = \"ttyBAD\"\ndevice = %q\ntls = \"off\"\nbuffer = \"lots\"\n", dev.Addr()))
	for _, junk := range []string{".bad.toml.swp", "bad.toml~", "notes.txt", "#bad.toml#", ".#bad.toml", "bad.toml.dpkg-new", ".toml"} {
		if err := os.WriteFile(filepath.Join(dir, junk), []byte("garbage ="), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A port file written after the junk: once it runs, the daemon has
	// seen every event before it.
	writePortFile(t, dir, "zz", fmt.Sprintf("link = \"ttyZZ\"\ndevice = %q\ntls = \"off\"\n", dev.Addr()))
	m := waitDaemon(t, d, "bad rejected, zz running", func(m map[string]PortState) bool { return m["bad"].ConfigError != "" && m["zz"].Running })
	if bad := m["bad"]; bad.Running || !strings.Contains(bad.ConfigError, "bad.toml:4") || !strings.Contains(bad.ConfigError, "buffer") {
		t.Fatalf("bad: running %v, error %q; want not running, error at bad.toml:4 naming buffer", bad.Running, bad.ConfigError)
	}
	if n := len(d.States()); n != 2 {
		t.Fatalf("daemon tracks %d ports, want 2 (junk files must be ignored): %+v", n, d.States())
	}
}

// A FIFO, a directory or a dangling symlink called x.toml is an error for
// x, at start-up and at runtime, and never stops the daemon: other ports
// run and later changes are applied. A running port whose file becomes a
// FIFO keeps its last good configuration.
func TestDaemonNonRegularFiles(t *testing.T) {
	dev := testenv.NewDevice(t)
	dir, linkDir := t.TempDir(), t.TempDir()
	body := func(link string) string {
		return fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev.Addr())
	}
	mkfifo := func(name string) {
		t.Helper()
		if err := unix.Mkfifo(filepath.Join(dir, name), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkfifo("fifo.toml")
	if err := os.Mkdir(filepath.Join(dir, "dir.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere.toml", filepath.Join(dir, "dangling.toml")); err != nil {
		t.Fatal(err)
	}
	writePortFile(t, dir, "p1", body("ttyP1"))

	d, _ := runDaemon(t, dir, linkDir)
	m := waitDaemon(t, d, "p1 running", func(m map[string]PortState) bool { return m["p1"].Running })
	for name, want := range map[string]string{
		"fifo":     "fifo.toml: a FIFO (named pipe), not a regular file",
		"dir":      "dir.toml: a directory, not a regular file",
		"dangling": "dangling.toml: cannot read file: no such file or directory",
	} {
		if st := m[name]; st.Running || st.State != "error" || !strings.Contains(st.ConfigError, want) {
			t.Errorf("%s at start-up: running %v, state %q, error %q; want state error saying %q", name, st.Running, st.State, st.ConfigError, want)
		}
	}

	// At runtime: a new FIFO, then a port added and one deleted.
	mkfifo("late.toml")
	writePortFile(t, dir, "p2", body("ttyP2"))
	waitDaemon(t, d, "late refused, p2 running", func(m map[string]PortState) bool {
		return strings.Contains(m["late"].ConfigError, "FIFO") && m["p2"].Running
	})
	if err := os.Remove(filepath.Join(dir, "p1.toml")); err != nil {
		t.Fatal(err)
	}
	waitDaemon(t, d, "p1 deleted", func(m map[string]PortState) bool { _, ok := m["p1"]; return !ok })

	// p2's file replaced by a FIFO: p2 keeps running, with the error.
	tmp := filepath.Join(dir, ".p2.fifo")
	if err := unix.Mkfifo(tmp, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "p2.toml")); err != nil {
		t.Fatal(err)
	}
	m = waitDaemon(t, d, "p2 file refused", func(m map[string]PortState) bool { return strings.Contains(m["p2"].ConfigError, "FIFO") })
	if !m["p2"].Running || m["p2"].Link != filepath.Join(linkDir, "ttyP2") {
		t.Fatalf("p2 running %v on %s; want it still running on its last good configuration", m["p2"].Running, m["p2"].Link)
	}
	// The FIFOs go away: so do their error rows.
	for _, f := range []string{"fifo.toml", "late.toml", "dir.toml", "dangling.toml"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	waitDaemon(t, d, "error rows gone", func(m map[string]PortState) bool { return len(m) == 1 && m["p2"].Running })
}

// A changed port file restarts the port, but when the tty's own settings
// are unchanged the application's open fd keeps working: no hang-up, and
// what it wrote while the link was down is still delivered.
func TestDaemonReloadKeepsTTY(t *testing.T) {
	dev := testenv.NewDevice(t)
	d, dir := startDaemon(t)
	body := fmt.Sprintf("link = \"ttyKEEP\"\ndevice = %q\ntls = \"off\"\n", dev.Addr())
	writePortFile(t, dir, "keep", body)
	m := waitDaemon(t, d, "port up", func(m map[string]PortState) bool { return m["keep"].State == bridge.StateUp })
	tty := m["keep"].TTY
	app, err := os.OpenFile(tty, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := term.MakeRaw(int(app.Fd())); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	dev.WaitGot([]byte("one"), 10*time.Second)

	// The device goes away, the application writes, then the file changes
	// (a bigger buffer): the queued bytes must survive the restart.
	addr := dev.Addr()
	dev.Down()
	waitDaemon(t, d, "link down", func(m map[string]PortState) bool { return m["keep"].State != bridge.StateUp })
	if _, err := app.Write([]byte("two")); err != nil {
		t.Fatal(err)
	}
	waitDaemon(t, d, "bytes queued", func(m map[string]PortState) bool { return m["keep"].Buffered == 3 })
	writePortFile(t, dir, "keep", body+"buffer = \"128KiB\"\n")
	m = waitDaemon(t, d, "restarted", func(m map[string]PortState) bool { return m["keep"].BufferSize == 128<<10 })
	if m["keep"].TTY != tty {
		t.Fatalf("tty changed from %s to %s on a restart that kept the tty settings", tty, m["keep"].TTY)
	}
	dev.Up(addr)
	dev.WaitGot([]byte("onetwo"), 10*time.Second)
	if _, err := app.Write([]byte("three")); err != nil {
		t.Fatalf("application write after the restart: %v", err)
	}
	dev.WaitGot([]byte("onetwothree"), 10*time.Second)
	// And the other way.
	testenv.Eventually(t, 10*time.Second, "a device session", func() bool { return dev.Sessions() > 0 })
	dev.Send([]byte("back"))
	got := make([]byte, 4)
	_ = app.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(app, got); err != nil || string(got) != "back" {
		t.Fatalf("application read %q, %v after the restart; want %q", got, err, "back")
	}
}

// A port's counters belong to the port: an edit of its file that restarts
// it, on the same tty or on a new one, keeps them; deleting the port and
// creating it again starts from zero.
func TestDaemonCountersSurviveReload(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit string // appended to the file, or "link" for a new link
	}{
		{"same tty", "[net]\nbackoff_max = \"7s\"\n"},
		{"new tty", "link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := testenv.NewDevice(t)
			d, dir := startDaemon(t)
			body := func(link string) string {
				return fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev.Addr())
			}
			writePortFile(t, dir, "c", body("ttyC"))
			m := waitDaemon(t, d, "port up", func(m map[string]PortState) bool { return m["c"].State == bridge.StateUp })
			// exchange writes out (the device has then received sent, in
			// all), and reads in back. The device sends only once it has
			// the application's bytes: the bridge drops what comes while
			// it does not know that the application has the port open.
			exchange := func(tty, out, sent, in string) {
				t.Helper()
				app, err := os.OpenFile(tty, os.O_RDWR|unix.O_NOCTTY, 0)
				if err != nil {
					t.Fatal(err)
				}
				defer app.Close()
				testenv.Termios(t, app, testenv.Raw)
				if _, err := app.Write([]byte(out)); err != nil {
					t.Fatal(err)
				}
				dev.WaitGot([]byte(sent), 10*time.Second)
				dev.Send([]byte(in))
				got := make([]byte, len(in))
				_ = app.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.ReadFull(app, got); err != nil || string(got) != in {
					t.Fatalf("application read %q, %v; want %q", got, err, in)
				}
			}
			exchange(m["c"].TTY, "hello", "hello", "world!")
			m = waitDaemon(t, d, "counted", func(m map[string]PortState) bool { return m["c"].ToDevice == 5 && m["c"].ToApp == 6 })
			started := m["c"].Started

			edited := body("ttyC") + tc.edit
			if tc.edit == "link" {
				edited = body("ttyC2")
			}
			writePortFile(t, dir, "c", edited)
			m = waitDaemon(t, d, "restarted and up again", func(m map[string]PortState) bool {
				return m["c"].Started.After(started) && m["c"].State == bridge.StateUp && dev.Sessions() == 2
			})
			if st := m["c"]; st.ToDevice != 5 || st.ToApp != 6 || st.Connects != 2 {
				t.Fatalf("after the restart: to device %d, to app %d, connects %d; want 5, 6, 2 (counted on)", st.ToDevice, st.ToApp, st.Connects)
			}
			exchange(m["c"].TTY, "again", "helloagain", "more")
			waitDaemon(t, d, "counted on", func(m map[string]PortState) bool { return m["c"].ToDevice == 10 && m["c"].ToApp == 10 })

			// Deleted and created again: a new port, new counts.
			if err := os.Remove(filepath.Join(dir, "c.toml")); err != nil {
				t.Fatal(err)
			}
			waitDaemon(t, d, "deleted", func(m map[string]PortState) bool { _, ok := m["c"]; return !ok })
			writePortFile(t, dir, "c", edited)
			m = waitDaemon(t, d, "up again", func(m map[string]PortState) bool { return m["c"].State == bridge.StateUp })
			if st := m["c"]; st.ToDevice != 0 || st.ToApp != 0 || st.Connects != 1 {
				t.Fatalf("a new port: to device %d, to app %d, connects %d; want 0, 0, 1", st.ToDevice, st.ToApp, st.Connects)
			}
		})
	}
}
