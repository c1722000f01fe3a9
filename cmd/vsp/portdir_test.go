//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
)

// Tests of the port directory through the binary: what the daemon reads
// (regular files only), conflicts between files, and counters across a
// reload.

// startDaemonAt runs `vsp run` on tmp/ports.d with the control socket
// tmp/vsp.sock, so that a test can stop it and start another on the same
// files.
func startDaemonAt(t *testing.T, tmp string) *daemon {
	t.Helper()
	d := &daemon{dir: filepath.Join(tmp, "ports.d"), socket: filepath.Join(tmp, "vsp.sock")}
	d.proc = startProc(t, "vsp", "run", "--log-format", "json", "--config-dir", d.dir, "--socket", d.socket,
		"--known-devices", filepath.Join(tmp, "known_devices"))
	d.waitLine(`"daemon running"`, 0, 20*time.Second)
	return d
}

// waitStates polls `vsp list --json` until ok accepts the states.
func (d *daemon) waitStates(t *testing.T, what string, ok func(map[string]service.PortState) bool) map[string]service.PortState {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := d.states(t)
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 15s; vsp list:\n%s", what, d.vsp(t, "list"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeFileAtomic puts data at path by rename, as an editor or vsp create
// does, so the daemon never reads half a file.
func writeFileAtomic(t *testing.T, path, data string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// lineOf returns the 1-based line of path that starts with prefix.
func lineOf(t *testing.T, path, prefix string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, prefix) {
			return i + 1
		}
	}
	t.Fatalf("%s has no line starting with %q:\n%s", path, prefix, data)
	return 0
}

// Acceptance 2: a FIFO named x.toml in the port directory, present at
// start-up or made while the daemon runs, is an error row for x in `vsp
// list`; it never blocks the daemon: other ports run and carry bytes, and
// later adds and deletes are applied. So are the other files that are not
// port files (docs/configuration.md, "Port files").
func TestPortDirFIFO(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "ports.d")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "x.toml"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "d.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere.toml", filepath.Join(dir, "s.toml")); err != nil {
		t.Fatal(err)
	}
	big := "link = \"ttyBIG\"\n" + strings.Repeat("# padding\n", 1<<20/10)
	if err := os.WriteFile(filepath.Join(dir, "big.toml"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	links := t.TempDir()
	sim1 := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	sim2 := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	d := &daemon{dir: dir, socket: filepath.Join(tmp, "vsp.sock")}
	link1, link2 := filepath.Join(links, "ttyP1"), filepath.Join(links, "ttyP2")
	d.vsp(t, "create", "p1", "--device", sim1.addr, "--tls", "legacy", "--pin", sim1.fingerprint, "--link", link1, "--wait", "0")

	d = startDaemonAt(t, tmp)
	m := d.waitStates(t, "p1 up, x an error", func(m map[string]service.PortState) bool {
		return m["p1"].State == bridge.StateUp && m["x"].ConfigError != ""
	})
	checkFIFORow(t, m["x"], filepath.Join(dir, "x.toml"))
	for name, want := range map[string]string{
		"d":   "d.toml: a directory, not a regular file",
		"s":   "s.toml: cannot read file: no such file or directory",
		"big": "big.toml: file is larger than 1048576 bytes (1 MiB)",
	} {
		if st := m[name]; st.Running || st.State != "error" || !strings.Contains(st.ConfigError, want) {
			t.Errorf("%s: running %v, state %q, config_error %q; want state error saying %q", name, st.Running, st.State, st.ConfigError, want)
		}
	}
	app1 := openApp(t, link1)
	expectEcho(t, app1, []byte("p1 runs beside a FIFO\n"))
	table := d.vsp(t, "list")
	if !rowHas(table, "x", "error (file error)") {
		t.Errorf("vsp list shows no error row for x:\n%s", table)
	}

	// While the daemon runs: another FIFO, then a port added (create waits
	// until the daemon runs it) and one deleted.
	if err := unix.Mkfifo(filepath.Join(dir, "y.toml"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.vsp(t, "create", "p2", "--device", sim2.addr, "--tls", "legacy", "--pin", sim2.fingerprint, "--link", link2)
	app2 := openApp(t, link2)
	expectEcho(t, app2, []byte("p2 added after a FIFO\n"))
	m = d.waitStates(t, "y an error", func(m map[string]service.PortState) bool { return m["y"].ConfigError != "" })
	checkFIFORow(t, m["y"], filepath.Join(dir, "y.toml"))
	d.vsp(t, "delete", "p1")
	m = d.waitStates(t, "p1 deleted", func(m map[string]service.PortState) bool { _, ok := m["p1"]; return !ok })
	if _, err := os.Lstat(link1); !os.IsNotExist(err) {
		t.Errorf("after delete, %s: %v; want it gone", link1, err)
	}
	expectEcho(t, app2, []byte("p2 still carries bytes\n"))
	if st := m["p2"]; st.State != bridge.StateUp || st.ToDevice == 0 {
		t.Errorf("p2: state %q, %d bytes to the device; want up and counting", st.State, st.ToDevice)
	}
	for _, n := range []string{"x", "y"} {
		if _, ok := m[n]; !ok {
			t.Errorf("vsp list lost the error row of %s", n)
		}
	}
}

// checkFIFORow checks the list row of a port whose file is a FIFO.
func checkFIFORow(t *testing.T, st service.PortState, file string) {
	t.Helper()
	if want := file + ": a FIFO (named pipe), not a regular file"; st.Running || st.State != "error" || !strings.Contains(st.ConfigError, want) {
		t.Errorf("%s: running %v, state %q, config_error %q; want state error saying %q", file, st.Running, st.State, st.ConfigError, want)
	}
}

// rowHas reports whether the table has a row for name containing text.
func rowHas(table, name, text string) bool {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name && strings.Contains(l, text) {
			return true
		}
	}
	return false
}

// plainDevice is a plaintext TCP listener standing in for another device:
// it records every connection it accepts and every byte it receives.
type plainDevice struct {
	ln       net.Listener
	mu       sync.Mutex
	accepted int
	got      []byte
}

func newPlainDevice(t *testing.T) *plainDevice {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &plainDevice{ln: ln}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.accepted++
			p.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				buf := make([]byte, 4096)
				for {
					n, err := r.Read(buf)
					p.mu.Lock()
					p.got = append(p.got, buf[:n]...)
					p.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *plainDevice) counts() (accepted, got int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, len(p.got)
}

// Acceptance 3: a second file claiming a running port's tty is refused,
// naming both files with their lines, and the running port keeps the tty
// and carries bytes. After a daemon restart, when nothing runs yet, both
// files are refused: no tty for either, and the intruder's plaintext
// device never sees a connection. Deleting the intruder lets the first
// port start again.
func TestPortDirConflict(t *testing.T) {
	tmp := t.TempDir()
	d := startDaemonAt(t, tmp)
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	link := filepath.Join(t.TempDir(), "ttyG1")
	d.vsp(t, "create", "g1", "--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint, "--link", link)
	app := openApp(t, link)
	expectEcho(t, app, []byte("before the intruder\n"))

	intruder := newPlainDevice(t)
	g1, dup := filepath.Join(d.dir, "g1.toml"), filepath.Join(d.dir, "a_dup.toml")
	writeFileAtomic(t, dup, fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, intruder.ln.Addr()))
	g1Line := lineOf(t, g1, "link ")
	m := d.waitStates(t, "a_dup refused", func(m map[string]service.PortState) bool { return m["a_dup"].ConfigError != "" })
	wantDup := fmt.Sprintf(`%s:1:1: link: %q is also the link of port "g1" (%s:%d:1)`, dup, link, g1, g1Line)
	if st := m["a_dup"]; st.Running || st.ConfigError != wantDup {
		t.Errorf("a_dup: running %v, config_error %q; want not running, %q", st.Running, st.ConfigError, wantDup)
	}
	if st := m["g1"]; st.State != bridge.StateUp || st.ConfigError != "" || st.TLSProfile != "legacy" {
		t.Errorf("g1: state %q, config_error %q, tls %q; want it untouched", st.State, st.ConfigError, st.TLSProfile)
	}
	expectEcho(t, app, []byte("g1 keeps the tty\n"))
	if a, n := intruder.counts(); a != 0 || n != 0 {
		t.Fatalf("the intruder's device accepted %d connections and got %d bytes", a, n)
	}
	app.Close()

	// Across a restart: both files are refused.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("after the daemon stopped, %s: %v; want it gone", link, err)
	}
	d = startDaemonAt(t, tmp)
	// The start-up scan is over when the daemon says it runs: every file
	// was decided then.
	m = d.waitStates(t, "both refused", func(m map[string]service.PortState) bool {
		return m["g1"].ConfigError != "" && m["a_dup"].ConfigError != ""
	})
	wantG1 := fmt.Sprintf(`%s:%d:1: link: %q is also the link of port "a_dup" (%s:1:1)`, g1, g1Line, link, dup)
	if st := m["g1"]; st.Running || st.ConfigError != wantG1 {
		t.Errorf("g1 after the restart: running %v, config_error %q; want not running, %q", st.Running, st.ConfigError, wantG1)
	}
	if st := m["a_dup"]; st.Running || !strings.Contains(st.ConfigError, `is also the link of port "g1"`) {
		t.Errorf("a_dup after the restart: running %v, config_error %q; want not running, naming g1", st.Running, st.ConfigError)
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Errorf("after the restart, %s: %v; want no tty for either file", link, err)
	}
	if a, n := intruder.counts(); a != 0 || n != 0 {
		t.Fatalf("the intruder's plaintext device accepted %d connections and got %d bytes", a, n)
	}

	// The intruder goes: g1 is tried again and starts.
	if err := os.Remove(dup); err != nil {
		t.Fatal(err)
	}
	d.waitStates(t, "g1 up again", func(m map[string]service.PortState) bool {
		_, dupRow := m["a_dup"]
		return !dupRow && m["g1"].State == bridge.StateUp && m["g1"].ConfigError == ""
	})
	app = openApp(t, link)
	expectEcho(t, app, []byte("g1 back\n"))
	if a, n := intruder.counts(); a != 0 || n != 0 {
		t.Fatalf("the intruder's device accepted %d connections and got %d bytes", a, n)
	}
}

// Counters belong to the port: an edit of its file that restarts it (here
// a new backoff_max) keeps the bytes counted each way; the link comes back
// as one more connect.
func TestPortDirCountersSurviveReload(t *testing.T) {
	d := startDaemonAt(t, t.TempDir())
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	link := filepath.Join(t.TempDir(), "ttyC")
	d.vsp(t, "create", "c", "--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint, "--link", link, "--backoff-max", "5s")
	app := openApp(t, link)
	msg := []byte("counted before the edit\n")
	expectEcho(t, app, msg)
	n := uint64(len(msg))
	before := d.waitState(t, "c", 10*time.Second, func(s service.PortState) bool { return s.ToDevice == n && s.ToApp == n })

	file := filepath.Join(d.dir, "c.toml")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), `backoff_max = "5s"`, `backoff_max = "7s"`, 1)
	if edited == string(data) {
		t.Fatalf("no backoff_max = \"5s\" in the port file:\n%s", data)
	}
	writeFileAtomic(t, file, edited)
	after := d.waitState(t, "c", 10*time.Second, func(s service.PortState) bool {
		return s.Started.After(before.Started) && s.State == bridge.StateUp
	})
	if after.ToDevice != n || after.ToApp != n || after.Connects != before.Connects+1 {
		t.Errorf("after the restart: to device %d, to app %d, connects %d; want %d, %d, %d",
			after.ToDevice, after.ToApp, after.Connects, n, n, before.Connects+1)
	}
	expectEcho(t, app, msg) // the tty stayed open through the restart
	d.waitState(t, "c", 10*time.Second, func(s service.PortState) bool { return s.ToDevice == 2*n && s.ToApp == 2*n })
}
