package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
)

// Tests of issue 17: one device shared by several hosts (connect =
// "on-open", release_after) and U2S (transport = "udp").

// startOnOpen runs `vsp run` for an on-open port to sim and waits until
// its tty is there (no link: nobody has it open).
func startOnOpen(t *testing.T, sim *ezsim, link string, args ...string) *proc {
	t.Helper()
	p := startProc(t, "vsp", append([]string{"run", "--log-format", "json", "--log-level", "debug", "--link", link,
		"--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint, "--connect", "on-open"}, args...)...)
	p.waitLine(`"port ready"`, 0, 20*time.Second)
	return p
}

// Acceptance 1: two hosts (two `vsp run`s), each with an on-open port to
// one ezsim with SSL that refuses a second client, take turns: each
// application round-trips through its own tty within a few seconds of
// opening it. An application that opens while the other host holds the
// device sees an outage: its bytes wait, the port says "device busy", and
// they arrive in order once the other host has released the device.
func TestOnOpenTwoHostsShareOneDevice(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	link1, link2 := tempLink(t), filepath.Join(t.TempDir(), "ttyVSP1")
	host1 := startOnOpen(t, sim, link1)
	host2 := startOnOpen(t, sim, link2)
	if strings.Contains(sim.output(), "session up") {
		t.Fatalf("a session was opened before any application opened a tty:\n%s", sim.output())
	}

	// Each turn ends when the host has released the device: the next
	// open of the same tty is then a new one for the pty's open tracking
	// too (an open racing the previous close is that tracking's business,
	// not this test's).
	turn := func(host *proc, link string, seed byte) {
		t.Helper()
		from := host.lineCount()
		start := time.Now()
		app := openApp(t, link)
		expectEcho(t, app, pattern(200, seed))
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: round trip took %v after open", link, d)
		}
		app.Close()
		host.waitLine(`"device session released"`, from, 10*time.Second)
	}
	turn(host1, link1, 1)
	turn(host2, link2, 2)
	turn(host1, link1, 3)

	// Host 1 holds the device; host 2's application must wait.
	app1 := openApp(t, link1)
	expectEcho(t, app1, []byte("host 1 holds the device"))
	from := host2.lineCount()
	app2 := openApp(t, link2)
	msg := pattern(3000, 9)
	if _, err := app2.Write(msg); err != nil {
		t.Fatal(err)
	}
	host2.waitLine(`"state":"device busy"`, from, 10*time.Second)
	from = host1.lineCount()
	app1.Close()
	expectRead(t, app2, msg, 10*time.Second)
	host1.waitLine(`"device session released"`, from, 10*time.Second)
}

// Acceptance 2: with release_after = "2s", an application that reopens
// the port within 2 s finds the session still up (the device sees one
// connection); 2 s after the last close the session is closed. Through the
// daemon, so the states and counters are checked where users see them.
func TestOnOpenReleaseAfter(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	d := startDaemon(t)
	link := tempLink(t)
	d.vsp(t, "create", "shared", "--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint, "--link", link,
		"--connect", "on-open", "--release-after", "2s")
	d.waitState(t, "shared", 20*time.Second, func(s service.PortState) bool { return s.State == bridge.StateIdle })

	app := openApp(t, link)
	expectEcho(t, app, []byte("first"))
	d.waitState(t, "shared", 5*time.Second, func(s service.PortState) bool { return s.State == bridge.StateUp && s.AppOpen })
	app.Close()
	d.waitState(t, "shared", 5*time.Second, func(s service.PortState) bool { return !s.AppOpen })
	closed := time.Now()
	app = openApp(t, link) // well within 2 s
	expectEcho(t, app, []byte("second"))
	if n := strings.Count(sim.output(), "TLS session up"); n != 1 {
		t.Fatalf("the device saw %d sessions, want 1 (the reopen within release_after must reuse it):\n%s", n, sim.output())
	}
	if time.Since(closed) >= 2*time.Second {
		t.Fatalf("the reopen took %v: not within release_after, the test proves nothing", time.Since(closed))
	}
	app.Close()
	closed = time.Now()
	sim.waitLine("session closed", 0, 10*time.Second)
	if held := time.Since(closed); held < 2*time.Second {
		t.Fatalf("session closed %v after the last close, before release_after (2s)", held)
	}
	st := d.waitState(t, "shared", 5*time.Second, func(s service.PortState) bool { return s.State == bridge.StateIdle })
	if st.Connects != 1 || st.Releases != 1 {
		t.Fatalf("connects %d, releases %d; want 1 and 1", st.Connects, st.Releases)
	}
	metrics := d.get(t, "/metrics")
	for _, want := range []string{`vsp_port_sessions_total{port="shared"} 1`, `vsp_port_sessions_released_total{port="shared"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// The next open dials again.
	app = openApp(t, link)
	expectEcho(t, app, []byte("third"))
	if n := strings.Count(sim.output(), "TLS session up"); n != 2 {
		t.Fatalf("the device saw %d sessions, want 2", n)
	}
}

// Acceptance 3: an application that writes the moment it has opened the
// port (before the link is up) gets its bytes delivered in order once the
// link is up, and the device's replies are not discarded as stale data.
func TestOnOpenWriteAtOnce(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	link := tempLink(t)
	vsp := startOnOpen(t, sim, link)
	from := 0
	for i := range 3 {
		app := openApp(t, link)
		msg := pattern(5000, byte(i))
		if _, err := app.Write(msg); err != nil {
			t.Fatal(err)
		}
		expectRead(t, app, msg, 10*time.Second)
		app.Close()
		_, from = vsp.waitLine(`"device session released"`, from, 10*time.Second)
		from++
		testenv.Eventually(t, 10*time.Second, "the device session to close", func() bool {
			return strings.Count(sim.output(), "session closed") == i+1
		})
	}
}

// connect = "on-open" in listen mode, where the device dials, is refused
// with the reason.
func TestOnOpenListenRefused(t *testing.T) {
	errOut, code := runRefused(t, "run", "--listen", "127.0.0.1:0", "--tls", "off", "--connect", "on-open", "--link", tempLink(t))
	if code != exitUsage || !strings.Contains(errOut, `--connect: "on-open" cannot be used with listen`) {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

// runRefused runs the built vsp binary to its end and returns its stderr and
// exit code.
func runRefused(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bins.Build(t, "vsp"), args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("vsp %s did not exit:\n%s", strings.Join(args, " "), errOut.String())
	}
	return errOut.String(), cmd.ProcessState.ExitCode()
}
