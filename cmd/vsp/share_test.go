//go:build linux

package main

import (
	"net"
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
	// vsp counts a session before any byte goes on it.
	if st := d.waitState(t, "shared", 5*time.Second, func(service.PortState) bool { return true }); st.Connects != 1 || st.Releases != 0 {
		t.Fatalf("connects %d, releases %d after the reopen; want the first session reused", st.Connects, st.Releases)
	}
	if time.Since(closed) >= 2*time.Second {
		t.Fatalf("the reopen took %v: not within release_after, the test proves nothing", time.Since(closed))
	}
	app.Close()
	closed = time.Now()
	// The device's first session ends 2 s after the second close: had the
	// reopen not reused it, it would have ended at the first close.
	_, first := sim.waitLine("TLS session up", 0, 10*time.Second)
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
	sim.waitLine("TLS session up", first+1, 10*time.Second)
	if st := d.waitState(t, "shared", 5*time.Second, func(service.PortState) bool { return true }); st.Connects != 2 {
		t.Fatalf("connects %d, want 2", st.Connects)
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

// What cannot work is refused with the reason, naming the flags:
// on-open in listen mode (the device dials), TLS and RFC 2217 over UDP
// (an ezTCP cannot use SSL in U2S mode; RFC 2217 is Telnet over TCP).
func TestShareRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--listen", "127.0.0.1:0", "--tls", "off", "--connect", "on-open"},
			`--connect: "on-open" cannot be used with listen`},
		{[]string{"--device", "127.0.0.1:1470", "--transport", "udp", "--tls", "legacy", "--insecure-no-verify"},
			`--tls: "legacy" cannot be used with --transport "udp": the ezTCP cannot use SSL in U2S (UDP) mode`},
		{[]string{"--device", "127.0.0.1:1470", "--transport", "udp", "--rfc2217"},
			`--rfc2217: cannot be used with --transport "udp": RFC 2217 is a Telnet option on a TCP session`},
		{[]string{"--device", "127.0.0.1:1470", "--release-after", "2s"},
			`--release-after: only with --connect "on-open"`},
	} {
		cmd := exec.Command(bins.Build(t, "vsp"), append([]string{"run", "--link", tempLink(t)}, tc.args...)...)
		errOut := runRefused(t, cmd)
		if code := cmd.ProcessState.ExitCode(); code != exitUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("vsp run %s: exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errOut, exitUsage, tc.want)
		}
	}
}

// Acceptance 4: U2S. `vsp run --transport udp` against ezsim in U2S mode
// (replying to the source of the last datagram) round-trips a 1-byte and
// a 1000-byte message.
func TestU2SRoundTrip(t *testing.T) {
	sim := startEzsim(t, "--mode", "U2S", "--listen", "127.0.0.1:0", "--peer", "0.0.0.0:0", "--serial", "echo", "--console", "off")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--transport", "udp")
	app := openApp(t, link)
	expectEcho(t, app, []byte{0x5a})
	expectEcho(t, app, pattern(1000, 3))
	expectEcho(t, app, []byte{0xa5})
}

// Acceptance 4, continued, through the daemon where status and metrics
// show the datagram counts: a datagram from another address than the
// device's is dropped (the application never sees it) and counted.
func TestU2SForeignDatagramDropped(t *testing.T) {
	sim := startEzsim(t, "--mode", "U2S", "--listen", "127.0.0.1:0", "--peer", "0.0.0.0:0", "--serial", "echo", "--console", "off")
	d := startDaemon(t)
	link := tempLink(t)
	d.vsp(t, "create", "u2s", "--device", sim.addr, "--transport", "udp", "--datagram-size", "512", "--link", link)
	st := d.waitState(t, "u2s", 20*time.Second, func(s service.PortState) bool {
		return s.State == bridge.StateUp && s.UDP != nil && s.UDP.Local != ""
	})
	if st.TLSProfile != "off" || st.UDP.MaxDatagram != 512 {
		t.Fatalf("tls profile %q, max datagram %d; want off and 512", st.TLSProfile, st.UDP.MaxDatagram)
	}
	app := openApp(t, link)
	expectEcho(t, app, []byte("ping"))
	expectEcho(t, app, pattern(1000, 5)) // two datagrams of at most 512 bytes

	_, port, err := net.SplitHostPort(st.UDP.Local)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := net.Dial("udp4", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if _, err := stranger.Write([]byte("intruder")); err != nil {
		t.Fatal(err)
	}
	st = d.waitState(t, "u2s", 10*time.Second, func(s service.PortState) bool { return s.UDP != nil && s.UDP.DroppedFromDevice == 1 })
	if st.UDP.LastDroppedFrom != stranger.LocalAddr().String() {
		t.Errorf("last dropped from %q, want %q", st.UDP.LastDroppedFrom, stranger.LocalAddr())
	}
	// The next bytes the application reads are the echo, not the intruder's.
	expectEcho(t, app, []byte("pong"))
	st = d.waitState(t, "u2s", 10*time.Second, func(s service.PortState) bool { return s.UDP.FromDevice >= 3 })
	if st.UDP.ToDevice != 4 || st.UDP.DroppedToDevice != 0 {
		t.Errorf("datagrams to device %d (dropped %d); want 4 (ping, 512 + 488, pong) and 0", st.UDP.ToDevice, st.UDP.DroppedToDevice)
	}
	metrics := d.get(t, "/metrics")
	for _, want := range []string{
		`vsp_port_datagrams_dropped_from_device_total{port="u2s"} 1`,
		`vsp_port_datagrams_to_device_total{port="u2s"} 4`,
		`vsp_port_datagrams_dropped_to_device_total{port="u2s"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	out := d.vsp(t, "status", "u2s")
	for _, want := range []string{"udp (U2S), local ", "1 dropped from other addresses (last " + stranger.LocalAddr().String() + ")"} {
		if !strings.Contains(out, want) {
			t.Errorf("vsp status lacks %q:\n%s", want, out)
		}
	}
}
