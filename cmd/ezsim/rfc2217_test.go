package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/device"
	"github.com/vsp-dev/vsp/internal/testenv"
)

// rfcPyClient is pyserial's rfc2217:// client: it opens the port at 9600,
// changes to 57600 and a custom 250000, sends a break, round-trips every
// byte value (0xFF runs included) through the echo plug, and prints OK.
const rfcPyClient = `
import sys, serial
s = serial.serial_for_url("rfc2217://%s" % sys.argv[1], baudrate=9600, timeout=5)
s.baudrate = 57600
s.baudrate = 250000
s.send_break(0.05)
data = bytes(range(256)) + b"\xff" * 700 + b"a\xffb\xff\xff" + bytes(range(255, -1, -1)) * 8
s.write(data)
got = b""
while len(got) < len(data):
    chunk = s.read(len(data) - len(got))
    if not chunk:
        break
    got += chunk
if got != data:
    print("MISMATCH %d of %d" % (len(got), len(data)), flush=True)
    sys.exit(1)
print("OK", flush=True)
s.close()
`

// Acceptance 2 (first half): pyserial's RFC 2217 client drives ezsim in
// plain-TCP mode with --rfc2217: baud changes (a custom speed included)
// reach the serial side in order, the break is seen, and data round-trips
// unchanged.
func TestPyserialDrivesEzsimRFC2217(t *testing.T) {
	py := testenv.Pyserial(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "status.sock")
	s := startSim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo", "--rfc2217", "--status-socket", sock)
	script := filepath.Join(dir, "client.py")
	if err := os.WriteFile(script, []byte(rfcPyClient), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-I", script, s.listen)
	var out testenv.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil || !strings.Contains(out.String(), "OK") {
			t.Fatalf("pyserial client failed: %v\n%s", err, out.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("pyserial client hung:\n%s", out.String())
	}

	// the serial side's speed now, as the status screen reports it
	var st bytes.Buffer
	if err := statusCmd(t.Context(), sock, false, &st); err != nil {
		t.Fatal(err)
	}
	var sts []device.Status
	if err := json.Unmarshal(st.Bytes(), &sts); err != nil || len(sts) == 0 || len(sts[0].Ports) == 0 {
		t.Fatalf("status: %v\n%s", err, st.String())
	}
	if got := sts[0].Ports[0].Serial.Baud; got != 250000 {
		t.Errorf("status: COM1 runs at %d bit/s, want 250000", got)
	}
	s.stop(t)

	// the log shows each applied speed in order, and the break
	var speeds []string
	var breaks []string
	for _, l := range strings.Split(s.stderr.String(), "\n") {
		if strings.Contains(l, `msg="rfc2217: serial speed applied"`) {
			_, v, _ := strings.Cut(l, " baud=")
			v, _, _ = strings.Cut(v, " ")
			speeds = append(speeds, v)
		}
		if strings.Contains(l, `msg="rfc2217: break"`) {
			_, v, _ := strings.Cut(l, " on=")
			breaks = append(breaks, v)
		}
	}
	if got := strings.Join(speeds, ","); got != "9600,57600,250000" {
		t.Errorf("speeds applied: %s, want 9600,57600,250000\n%s", got, s.stderr)
	}
	if got := strings.Join(breaks, ","); got != "true,false" {
		t.Errorf("break states: %q, want true,false", got)
	}
}

// RFC 2217 is refused with SSL on, as the device's settings check does.
func TestEzsimRFC2217RefusedWithSSL(t *testing.T) {
	bin := builder.Build(t, "ezsim")
	out, err := exec.Command(bin, "--listen", "127.0.0.1:0", "--console", "off", "--ssl", "--key-bits", "512", "--rfc2217").CombinedOutput()
	if err == nil {
		t.Fatalf("ezsim --ssl --rfc2217 started:\n%s", out)
	}
	if !strings.Contains(string(out), "RFC 2217") {
		t.Fatalf("the refusal does not name RFC 2217:\n%s", out)
	}
}
