//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service"
)

// Logs are text by default, also when stderr is not a terminal (a pipe
// here, as under a service manager), and a dead device's warning is written
// once, not at every redial.
func TestLogTextByDefaultAndRepeatsLimited(t *testing.T) {
	tmp := t.TempDir()
	d := &daemon{dir: filepath.Join(tmp, "ports.d"), socket: filepath.Join(tmp, "vsp.sock")}
	d.proc = startProc(t, "vsp", "run", "--config-dir", d.dir, "--socket", d.socket,
		"--known-devices", filepath.Join(tmp, "known_devices"), "--link-dir", tmp)
	l, _ := d.waitLine("daemon running", 0, 20*time.Second)
	if strings.HasPrefix(l, "{") || !strings.Contains(l, "level=INFO") {
		t.Fatalf("default log format is not text with levels: %q", l)
	}
	dead := freeAddr(t)
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprintf("device = %q\ntls = \"off\"\nlink = \"ttyDEAD\"\n[net]\nbackoff_min = \"20ms\"\nbackoff_max = \"50ms\"\n", dead)
	if err := os.WriteFile(filepath.Join(d.dir, "dead.toml"), []byte(port), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitLine(`level=WARN msg="link down"`, 0, 20*time.Second)
	// Several more failed redials, seen in the port's last error time.
	seen := map[time.Time]bool{}
	d.waitState(t, "dead", 20*time.Second, func(st service.PortState) bool {
		if !st.LastErrorAt.IsZero() {
			seen[st.LastErrorAt] = true
		}
		return len(seen) >= 4
	})
	if n := strings.Count(d.output(), `msg="link down"`); n != 1 {
		t.Errorf("%d identical \"link down\" warnings within the repeat window, want 1:\n%s", n, d.output())
	}
}

// On the systemd journal (stderr is $JOURNAL_STREAM) each text line starts
// with its sd-daemon priority, so `journalctl -p warning` selects warnings.
func TestLogJournalPriorities(t *testing.T) {
	tmp := t.TempDir()
	logf, err := os.Create(filepath.Join(tmp, "journal"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(logf.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.Build(t, "vsp"), "run", "--device", freeAddr(t), "--tls", "off",
		"--link", filepath.Join(tmp, "ttyJ"), "--backoff-min", "20ms")
	cmd.Env = append(os.Environ(), fmt.Sprintf("JOURNAL_STREAM=%d:%d", st.Dev, st.Ino))
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	testenv.Eventually(t, 20*time.Second, "a warning in the journal", func() bool {
		b, _ := os.ReadFile(logf.Name())
		return strings.Contains(string(b), `<4>time=`)
	})
	b, _ := os.ReadFile(logf.Name())
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		want := map[string]string{"level=WARN": "<4>", "level=INFO": "<6>", "level=ERROR": "<3>"}
		for lvl, prefix := range want {
			if strings.Contains(line, lvl) && !strings.HasPrefix(line, prefix) {
				t.Errorf("journal line without priority %s: %q", prefix, line)
			}
		}
	}
	if !strings.Contains(string(b), `<4>time=`) || !strings.Contains(string(b), `level=WARN msg="link down"`) {
		t.Errorf("journal output:\n%s", b)
	}
}
