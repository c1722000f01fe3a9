//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	cpty "github.com/creack/pty"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
)

// setAppSerial changes the application side's termios like a serial
// program: speed (a standard Bnnn code when there is one, BOTHER with
// TCSETS2 otherwise), stop bits and RTS/CTS.
func setAppSerial(t testing.TB, f *os.File, baud uint32, stop2, rtscts bool) {
	t.Helper()
	codes := map[uint32]uint32{9600: unix.B9600, 19200: unix.B19200, 38400: unix.B38400,
		57600: unix.B57600, 115200: unix.B115200, 230400: unix.B230400}
	testenv.Termios(t, f, func(tio *unix.Termios) {
		code, ok := codes[baud]
		if !ok {
			code = unix.BOTHER
		}
		tio.Cflag = tio.Cflag&^(unix.CBAUD|unix.CIBAUD|unix.CSTOPB|unix.CRTSCTS) | code
		tio.Ispeed, tio.Ospeed = baud, baud
		if stop2 {
			tio.Cflag |= unix.CSTOPB
		}
		if rtscts {
			tio.Cflag |= unix.CRTSCTS
		}
	})
}

// echoRate writes n bytes through the port to an echoing device, reads them
// back and returns the bytes per second of the round trip.
func echoRate(t testing.TB, app *os.File, n int) float64 {
	t.Helper()
	data := pattern(n, byte(n))
	start := time.Now()
	errc := make(chan error, 1)
	go func() { _, err := app.Write(data); errc <- err }()
	expectRead(t, app, data, 60*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

// Acceptance 1: an application on a vsp port with --rfc2217 sets 9600,
// 57600, then a custom 250000 bit/s; ezsim (plain TCP, RFC 2217, pacing)
// applies each speed in order and its pacing follows.
func TestRFC2217SpeedsReachEzsim(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo", "--rfc2217", "--pacing", "--baud", "115200")
	link := tempLink(t)
	vsp := startVsp(t, link, "--device", sim.addr, "--tls", "off", "--rfc2217", "--baud", "115200", "--stale-data", "keep")
	// at connect vsp sends the configured speed
	_, from := sim.waitLine(`msg="rfc2217: serial speed applied"`, 0, 20*time.Second)
	app := openApp(t, link)

	rates := map[uint32]float64{}
	for _, baud := range []uint32{9600, 57600, 250000} {
		setAppSerial(t, app, baud, false, false)
		var l string
		l, from = sim.waitLine(`msg="rfc2217: serial speed applied"`, from+1, 20*time.Second)
		if !strings.Contains(l, fmt.Sprintf("baud=%d ", baud)) {
			t.Fatalf("after setting %d bit/s the next speed ezsim applied is: %s", baud, l)
		}
		// about half a second of line time each way at the new speed
		rates[baud] = echoRate(t, app, int(baud/10/2))
		t.Logf("%d bit/s: echo at %.0f bytes/s (line max %d bytes/s)", baud, rates[baud], baud/10)
	}
	// Pacing can only slow the bytes down (a loaded machine slows them
	// further), so the upper bounds are firm; the lower bounds only ask for
	// the order of magnitude.
	if r := rates[9600]; r > 1.5*960 {
		t.Errorf("at 9600 bit/s the echo ran at %.0f bytes/s: not paced (max 960)", r)
	}
	if r := rates[57600]; r > 1.5*5760 || r < 1.5*rates[9600] {
		t.Errorf("at 57600 bit/s the echo ran at %.0f bytes/s (9600: %.0f)", r, rates[9600])
	}
	if r := rates[250000]; r > 1.5*25000 || r < 3*rates[9600] {
		t.Errorf("at 250000 bit/s the echo ran at %.0f bytes/s (9600: %.0f)", r, rates[9600])
	}
	if strings.Contains(vsp.output(), "serial settings mismatch") {
		t.Error("vsp warned about a mismatch with RFC 2217 on")
	}
}

// allBytes returns every byte value, runs of 0xFF (single, double, long)
// and the values in reverse.
func allBytes() []byte {
	var b []byte
	for i := range 256 {
		b = append(b, byte(i))
	}
	b = append(b, 0xff, 'a', 0xff, 0xff, 'b')
	b = append(b, bytes.Repeat([]byte{0xff}, 1000)...)
	for r := 0; r < 16; r++ {
		for i := 255; i >= 0; i-- {
			b = append(b, byte(i), 0xff)
		}
	}
	return b
}

// Acceptance 3: every byte value, 0xFF runs included, crosses an RFC 2217
// session both ways unchanged (vsp's client escapes, ezsim's server
// unescapes and echoes, escapes again, vsp unescapes).
func TestRFC2217AllByteValues(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo", "--rfc2217")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "off", "--rfc2217", "--stale-data", "keep")
	app := openApp(t, link)
	data := allBytes()
	for range 3 {
		errc := make(chan error, 1)
		go func() { _, err := app.Write(data); errc <- err }()
		expectRead(t, app, data, 30*time.Second)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

// serialDaemon is a `vsp run` daemon over a config directory, with its socket.
type serialDaemon struct {
	*proc
	dir, socket string
}

// startSerialDaemon writes one port file and runs the daemon.
func startSerialDaemon(t testing.TB, name, portFile string) *serialDaemon {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, name+".toml"), []byte(portFile), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "vsp.sock")
	p := startProc(t, "vsp", "run", "--log-format", "json", "--config-dir", dir, "--socket", sock,
		"--known-devices", filepath.Join(t.TempDir(), "known"))
	p.waitLine(`"link up"`, 0, 20*time.Second)
	return &serialDaemon{proc: p, dir: dir, socket: sock}
}

// status runs `vsp status NAME` (text and JSON).
func (d *serialDaemon) status(t testing.TB, name string) (string, service.PortState) {
	t.Helper()
	bin := bins.Build(t, "vsp")
	text, err := exec.Command(bin, "status", "--socket", d.socket, name).CombinedOutput()
	if err != nil {
		t.Fatalf("vsp status: %v\n%s", err, text)
	}
	js, err := exec.Command(bin, "status", "--socket", d.socket, "--json", name).Output()
	if err != nil {
		t.Fatalf("vsp status --json: %v", err)
	}
	var st service.PortState
	if err := json.Unmarshal(js, &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, js)
	}
	return string(text), st
}

func (d *serialDaemon) waitStatus(t testing.TB, name, what string, ok func(string, service.PortState) bool) (string, service.PortState) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		text, st := d.status(t, name)
		if ok(text, st) {
			return text, st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s:\n%s", what, text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Acceptance 4: with SSL on (no RFC 2217), the application setting 9600
// against a device configured at 115200 gives the mismatch warning (logged
// once, shown by `vsp status`); with strict_serial the data is held until
// the speeds agree.
func TestSerialMismatchStatusAndStrictHold(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off", "--baud", "115200")
	link := tempLink(t)
	d := startSerialDaemon(t, "com1", fmt.Sprintf(`link = %q
device = %q
tls = "legacy"
strict_serial = true
stale_data = "keep" # independent of inotify (application open/close)

[trust]
pin = %q

[serial]
baud = 115200
`, link, sim.addr, sim.fingerprint))
	app := openApp(t, link)
	expectEcho(t, app, []byte("at 115200\n")) // the tty starts at the device's speed: no hold

	setAppSerial(t, app, 9600, false, false)
	text, st := d.waitStatus(t, "com1", "the mismatch", func(_ string, st service.PortState) bool { return st.Mismatch != "" && st.Held != "" })
	if !strings.Contains(text, "serial mismatch:") || !strings.Contains(st.Mismatch, "9600") || !strings.Contains(st.Mismatch, "115200") {
		t.Fatalf("status does not name both speeds:\n%s", text)
	}
	if st.State != bridge.StateHeld {
		t.Errorf("state %q, want %q", st.State, bridge.StateHeld)
	}
	// the same settings again are no new change: still one warning
	setAppSerial(t, app, 9600, false, false)
	msg := []byte("held until the speeds agree\n")
	before := st.ToDevice
	if _, err := app.Write(msg); err != nil {
		t.Fatal(err)
	}
	// The port has read the data and holds it (in its buffer): nothing went
	// to the device, and nothing came back.
	_, st = d.waitStatus(t, "com1", "the data held in the buffer", func(_ string, st service.PortState) bool {
		return st.Buffered == len(msg) || st.ToDevice != before
	})
	_ = app.SetReadDeadline(time.Now())
	buf := make([]byte, 64)
	if n, err := app.Read(buf); n > 0 {
		t.Fatalf("got %q while the data should be held", buf[:n])
	} else if !os.IsTimeout(err) {
		t.Fatalf("read while held: %v", err)
	}
	_ = app.SetReadDeadline(time.Time{})
	if st.ToDevice != before {
		t.Fatalf("%d bytes reached the device while held", st.ToDevice-before)
	}
	if n := strings.Count(d.output(), "serial settings mismatch"); n != 1 {
		t.Errorf("mismatch warning logged %d times, want once", n)
	}

	setAppSerial(t, app, 115200, false, false)
	expectRead(t, app, msg, 20*time.Second)
	_, st = d.waitStatus(t, "com1", "the mismatch cleared", func(_ string, st service.PortState) bool { return st.Mismatch == "" && st.Held == "" })
	d.waitLine("serial settings match again", 0, 10*time.Second)
}

// Acceptance 2 (second half): vsp's RFC 2217 client against a server no one
// here wrote: pyserial's PortManager over a PTY. The application's speed,
// stop bits and RTS/CTS land in that PTY's termios; data crosses both ways;
// `vsp status` shows what the server acknowledged.
func TestRFC2217AgainstPyserialPortManager(t *testing.T) {
	master, slave, err := cpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	addr := testenv.PortManager(t, slave.Name())

	link := tempLink(t)
	d := startSerialDaemon(t, "pm", fmt.Sprintf(`link = %q
device = %q
tls = "off"
rfc2217 = true
stale_data = "keep"

[serial]
baud = 19200
data_bits = 8
parity = "none"
`, link, addr))
	app := openApp(t, link)
	setAppSerial(t, app, 57600, true, true)
	want := "57600 8N2 flow=rtscts"
	_, st := d.waitStatus(t, "pm", "the acknowledged settings", func(_ string, st service.PortState) bool {
		return st.RFC2217 != nil && st.RFC2217.Acked == want && len(st.RFC2217.Pending) == 0
	})
	t.Logf("vsp status rfc2217: %+v", *st.RFC2217)
	if st.RFC2217.State != bridge.RFC2217Up || st.RFC2217.Requested != want {
		t.Errorf("rfc2217 status %+v", *st.RFC2217)
	}
	tio, err := unix.IoctlGetTermios(int(master.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Cflag&unix.CBAUD != unix.B57600 || tio.Cflag&unix.CSTOPB == 0 || tio.Cflag&unix.CRTSCTS == 0 {
		t.Errorf("PortManager's PTY cflag %#o: want B57600|CSTOPB|CRTSCTS", tio.Cflag)
	}

	// data both ways through the PortManager's PTY
	data := allBytes()
	if _, err := app.Write(data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	done := make(chan error, 1)
	go func() { _, err := io.ReadFull(master, got); done <- err }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("app data did not reach the PortManager's serial side")
	}
	if i := firstDiff(got, data); i >= 0 {
		t.Fatalf("app→serial: byte %d differs", i)
	}
	if _, err := master.Write(data); err != nil {
		t.Fatal(err)
	}
	expectRead(t, app, data, 20*time.Second)
}
