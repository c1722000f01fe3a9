//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exitCode is the exit status of a finished command (0 for success).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	t.Fatal(err)
	return -1
}

// Acceptance 2: `vsp create` exits 0 only when the port is up; a wrong
// --pin against an SSL device stops the wait early with the state and the
// fix (how to see the device's fingerprint, how to pin it in the file).
func TestCreateExitCodes(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "768", "--serial", "echo", "--console", "off")
	d := startDaemon(t)
	wrong := "sha256:" + strings.Repeat("ab", 32)

	start := time.Now()
	out, errOut, err := d.try(t, "create", "bad", "--device", sim.addr, "--tls", "legacy", "--pin", wrong, "--link", tempLink(t), "--wait", "30s")
	if code := exitCode(t, err); code != 1 {
		t.Fatalf("create with a wrong pin: exit %d, want 1\n%s%s", code, out, errOut)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("create waited %v for a port that cannot come up", took)
	}
	for _, want := range []string{"certificate mismatch", "does not match the pin", "vsp trust " + sim.addr, "vsp trust --write bad " + sim.addr} {
		if !strings.Contains(errOut, want) {
			t.Errorf("create with a wrong pin does not say %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "--pin") {
		t.Errorf("the port lives in a file, yet the fix names --pin:\n%s", errOut)
	}
	// status shows the same fix.
	if st, _, _ := d.try(t, "status", "bad"); !strings.Contains(st, "vsp trust --write bad") {
		t.Errorf("vsp status bad gives no fix:\n%s", st)
	}

	// The right pin: up, exit 0.
	out, errOut, err = d.try(t, "create", "good", "--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint, "--link", tempLink(t))
	if code := exitCode(t, err); code != 0 || !strings.Contains(out, ", up") {
		t.Fatalf("create with the right pin: exit %d\n%s%s", code, out, errOut)
	}

	// A plain TCP device under TLS: the fix says tls = "off".
	plain := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	_, errOut, err = d.try(t, "create", "plain", "--device", plain.addr, "--tls", "legacy", "--pin", wrong, "--link", tempLink(t))
	if code := exitCode(t, err); code != 1 || !strings.Contains(errOut, `set tls = "off" in the port file`) {
		t.Errorf("create against a plain TCP device with TLS: exit %d\n%s", code, errOut)
	}

	// delete waits until the daemon closed the port; status of an unknown
	// port exits 1 and names it.
	if _, errOut, err := d.try(t, "delete", "good"); exitCode(t, err) != 0 {
		t.Errorf("delete: %v\n%s", err, errOut)
	}
	if _, ok := d.states(t)["good"]; ok {
		t.Errorf("delete returned while the daemon still runs the port")
	}
	_, errOut, err = d.try(t, "status", "good")
	if code := exitCode(t, err); code != 1 || !strings.Contains(errOut, `"good"`) {
		t.Errorf("status of a deleted port: exit %d\n%s", code, errOut)
	}
}

// `vsp trust` speaks in the administrator's terms: readable certificate
// names, a plain TCP device recognised as such, and a key the chosen
// profile would refuse is refused here too instead of printing a pin
// command that cannot work.
func TestTrustMessages(t *testing.T) {
	ssl := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "1024", "--serial", "echo", "--console", "off")
	plain := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	d := &daemon{dir: t.TempDir(), socket: filepath.Join(t.TempDir(), "vsp.sock")}

	out := d.vsp(t, "trust", ssl.addr)
	if !strings.Contains(out, "emailAddress=") || strings.Contains(out, "1.2.840.113549.1.9.1") {
		t.Errorf("subject not readable:\n%s", out)
	}
	if !strings.Contains(out, "vsp trust --write NAME") {
		t.Errorf("no command to pin it in a port file:\n%s", out)
	}

	out, errOut, err := d.try(t, "trust", "--tls", "modern", ssl.addr)
	if exitCode(t, err) != 1 || !strings.Contains(errOut, "too weak for the modern profile") || !strings.Contains(errOut, "--tls legacy") || strings.Contains(out, "--pin") {
		t.Errorf("trust --tls modern of a 1024-bit device: %v\n%s%s", err, out, errOut)
	}

	_, errOut, err = d.try(t, "trust", plain.addr)
	if exitCode(t, err) != 1 || !strings.Contains(errOut, "did not answer TLS: a plain TCP device?") || !strings.Contains(errOut, "--tls off") {
		t.Errorf("trust of a plain TCP device: %v\n%s", err, errOut)
	}
}

// The help says what each exit status means, and every service action's
// one-line help reads as a sentence.
func TestHelpExitStatusAndServiceUsage(t *testing.T) {
	help := func(args ...string) string {
		var out, errOut bytes.Buffer
		run(context.Background(), append([]string{"vsp"}, args...), nil, &out, &errOut)
		return out.String() + errOut.String()
	}
	for _, cmd := range [][]string{{"--help"}, {"create", "--help"}, {"delete", "--help"}, {"status", "--help"}, {"list", "--help"}} {
		if h := help(cmd...); !strings.Contains(h, "Exit status: 0") {
			t.Errorf("vsp %s documents no exit status:\n%s", strings.Join(cmd, " "), h)
		}
	}
	if h := help("service", "--help"); strings.Contains(h, "status the vsp service") || !strings.Contains(h, "installed and running") {
		t.Errorf("vsp service --help:\n%s", h)
	}
}
