package service

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := map[string]PortState{}
		for _, s := range d.States() {
			m[s.Name] = s
			if s.Name == "" { // a file that never ran has no Status
				m[strings.TrimSuffix(filepath.Base(s.File), ".toml")] = s
			}
		}
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("daemon: %s: not after 10s; states %+v", what, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	dev := newDevice(t)
	d, dir := startDaemon(t)
	body := fmt.Sprintf("link = \"ttyDUP\"\ndevice = %q\ntls = \"off\"\n", dev.addr)
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
	dev := newDevice(t)
	d, dir := startDaemon(t)
	writePortFile(t, dir, "bad", fmt.Sprintf("link = \"ttyBAD\"\ndevice = %q\ntls = \"off\"\nbuffer = \"lots\"\n", dev.addr))
	for _, junk := range []string{".bad.toml.swp", "bad.toml~", "notes.txt"} {
		if err := os.WriteFile(filepath.Join(dir, junk), []byte("garbage ="), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m := waitDaemon(t, d, "bad rejected", func(m map[string]PortState) bool { return m["bad"].ConfigError != "" })
	if bad := m["bad"]; bad.Running || !strings.Contains(bad.ConfigError, "bad.toml:4") || !strings.Contains(bad.ConfigError, "buffer") {
		t.Fatalf("bad: running %v, error %q; want not running, error at bad.toml:4 naming buffer", bad.Running, bad.ConfigError)
	}
	time.Sleep(100 * time.Millisecond) // several debounce periods
	if n := len(d.States()); n != 1 {
		t.Fatalf("daemon tracks %d ports, want 1 (junk files must be ignored): %+v", n, d.States())
	}
}
