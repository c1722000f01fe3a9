package service

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service/bridge"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// startDaemon runs a daemon on a fresh directory with the real file
// loader; links go to a private directory.
func startDaemon(t *testing.T) (*Daemon, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := NewDaemon(DaemonConfig{
		ConfigDir: dir,
		Debounce:  20 * time.Millisecond,
		Load:      FileLoader(Paths{LinkDir: t.TempDir(), KnownDevices: filepath.Join(t.TempDir(), "known")}),
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("daemon Run: %v", err)
		}
	})
	return d, dir
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

// Two files may not claim the same tty link: the second is rejected with
// an error naming the first, and the first keeps running.
func TestDaemonDuplicateLink(t *testing.T) {
	dev := testenv.NewDevice(t)
	d, dir := startDaemon(t)
	body := fmt.Sprintf("link = \"ttyDUP\"\ndevice = %q\ntls = \"off\"\n", dev.Addr())
	writePortFile(t, dir, "a", body)
	waitDaemon(t, d, "port a running", func(m map[string]PortState) bool { return m["a"].Running })
	writePortFile(t, dir, "b", body)
	m := waitDaemon(t, d, "port b rejected", func(m map[string]PortState) bool { return m["b"].ConfigError != "" })
	if b := m["b"]; b.Running || !strings.Contains(b.ConfigError, "already used by port a") {
		t.Fatalf("port b: running %v, error %q; want not running, error naming port a", b.Running, b.ConfigError)
	}
	if !m["a"].Running {
		t.Fatal("port a stopped when b was rejected")
	}
	// Removing a's file frees the link: b's file is then accepted on its
	// next change.
	if err := os.Remove(filepath.Join(dir, "a.toml")); err != nil {
		t.Fatal(err)
	}
	waitDaemon(t, d, "port a removed", func(m map[string]PortState) bool { _, ok := m["a"]; return !ok })
	writePortFile(t, dir, "b", body+"\n# touched\n")
	waitDaemon(t, d, "port b running", func(m map[string]PortState) bool { return m["b"].Running && m["b"].ConfigError == "" })
}

// A file that is invalid from the start never runs, and its state says
// where the problem is; files that are not port files are ignored.
func TestDaemonInvalidAndIgnoredFiles(t *testing.T) {
	dev := testenv.NewDevice(t)
	d, dir := startDaemon(t)
	writePortFile(t, dir, "bad", fmt.Sprintf("link = \"ttyBAD\"\ndevice = %q\ntls = \"off\"\nbuffer = \"lots\"\n", dev.Addr()))
	for _, junk := range []string{".bad.toml.swp", "bad.toml~", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, junk), []byte("garbage ="), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := waitDaemon(t, d, "bad rejected", func(m map[string]PortState) bool { return m["bad"].ConfigError != "" })
	if bad := m["bad"]; bad.Running || !strings.Contains(bad.ConfigError, "bad.toml:4") || !strings.Contains(bad.ConfigError, "buffer") {
		t.Fatalf("bad: running %v, error %q; want not running, error at bad.toml:4 naming buffer", bad.Running, bad.ConfigError)
	}
	// A port file written after the junk runs: the daemon has seen the
	// junk by then.
	writePortFile(t, dir, "later", fmt.Sprintf("link = \"ttyLATER\"\ndevice = %q\ntls = \"off\"\n", dev.Addr()))
	waitDaemon(t, d, "port later running", func(m map[string]PortState) bool { return m["later"].Running })
	if n := len(d.States()); n != 2 {
		t.Fatalf("daemon tracks %d ports, want 2 (junk files must be ignored): %+v", n, d.States())
	}
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
