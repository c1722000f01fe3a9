//go:build linux

package rfc2217

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

func writeScript(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// pyData is the block both interop tests send: every byte value, a run of
// 0xFF and a reversed sequence.
func pyData() []byte {
	var b []byte
	for i := 0; i < 256; i++ {
		b = append(b, byte(i))
	}
	b = append(b, bytes.Repeat([]byte{IAC}, 500)...)
	for r := 0; r < 8; r++ {
		for i := 255; i >= 0; i-- {
			b = append(b, byte(i))
		}
	}
	return b
}

const pyClientScript = `
import sys, serial
port = int(sys.argv[1])
s = serial.serial_for_url("rfc2217://127.0.0.1:%d" % port, baudrate=9600, timeout=5)
s.baudrate = 115200
s.bytesize = 7
s.parity = serial.PARITY_EVEN
s.stopbits = serial.STOPBITS_TWO
s.send_break(0.05)
s.dtr = False
s.rts = True
data = bytes(range(256)) + b"\xff" * 500 + bytes(range(255, -1, -1)) * 8
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

// TestPyserialClientAgainstServer runs pyserial's RFC 2217 client against
// Server: pyserial waits for every acknowledgement (settings, SET-CONTROL,
// PURGE-DATA) and checks that it echoes the requested value.
func TestPyserialClientAgainstServer(t *testing.T) {
	py := testenv.Pyserial(t)
	script := writeScript(t, "client.py", pyClientScript)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	cmd := exec.Command(py, "-I", script, strconv.Itoa(port))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	h := newPortHandler()
	srv, err := NewServer(conn, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	echoed := echo(t, srv)

	select {
	case err := <-exited:
		if err != nil || !strings.Contains(out.String(), "OK") {
			t.Fatalf("pyserial client failed: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("pyserial client hung:\n%s", out.String())
	}
	select {
	case err := <-echoed:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not see the close")
	}
	cur, calls, purges := h.snapshot()
	t.Logf("handler calls: %v", calls)
	want := Settings{BaudRate: 115200, DataSize: 7, Parity: ParityEven, StopBits: StopBits2,
		Flow: FlowNone, InFlow: FlowInNone, Break: SwitchOff, DTR: SwitchOff, RTS: SwitchOn}
	if cur != want {
		t.Errorf("port settings %+v, want %+v", cur, want)
	}
	for _, c := range []string{"baud 9600", "baud 115200", "control break-on", "control break-off", "control dtr-off"} {
		if !slices.Contains(calls, c) {
			t.Errorf("handler never got %q", c)
		}
	}
	if !slices.Contains(purges, PurgeReceive) || !slices.Contains(purges, PurgeTransmit) {
		t.Errorf("purges %v, want receive and transmit (pyserial purges on open)", purges)
	}
}

func ptyTermios(t *testing.T, f *os.File) *unix.Termios {
	t.Helper()
	sc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var tio *unix.Termios
	var ierr error
	if err := sc.Control(func(fd uintptr) { tio, ierr = unix.IoctlGetTermios(int(fd), unix.TCGETS) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
	return tio
}

// TestClientAgainstPyserialPortManager runs Client against pyserial's
// PortManager serving a PTY and checks the settings in the PTY's termios.
func TestClientAgainstPyserialPortManager(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	defer slave.Close()
	addr := testenv.PortManager(t, slave.Name())
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := NewClient(conn, ClientConfig{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	d := startDrain(cl)

	set(t, cl,
		Message{Command: CmdSetBaudRate, BaudRate: 115200},
		// not 7: tcsetattr on the PTY fails with EINVAL for CS7 and the
		// termios.error kills PortManager (it only catches ValueError)
		Message{Command: CmdSetDataSize, DataSize: 8},
		Message{Command: CmdSetParity, Parity: ParityNone},
		Message{Command: CmdSetStopSize, StopBits: StopBits2},
		control(ControlFlowHardware),
		control(ControlDTROn),
		control(ControlRTSOn),
		control(ControlBreakOn),
		control(ControlBreakOff),
	)
	if err := cl.Purge(PurgeBoth); err != nil {
		t.Fatal(err)
	}
	want := Settings{BaudRate: 115200, DataSize: 8, Parity: ParityNone, StopBits: StopBits2,
		Flow: FlowRTSCTS, Break: SwitchOff, DTR: SwitchOn, RTS: SwitchOn}
	testenv.Eventually(t, 5*time.Second, "PortManager acknowledgements", func() bool { return cl.Acked() == want })
	tio := ptyTermios(t, master)
	if got := tio.Cflag & unix.CBAUD; got != unix.B115200 {
		t.Errorf("PTY baud code %#o, want B115200 (%#o)", got, unix.B115200)
	}
	if tio.Cflag&unix.CSTOPB == 0 {
		t.Error("PTY has no CSTOPB after SET-STOPSIZE 2")
	}
	if tio.Cflag&unix.CRTSCTS == 0 {
		t.Error("PTY has no CRTSCTS after SET-CONTROL hardware flow")
	}
	if tio.Cflag&unix.CSIZE != unix.CS8 {
		t.Errorf("PTY CSIZE %#o, want CS8", tio.Cflag&unix.CSIZE)
	}
	// PortManager sent NOTIFY-MODEMSTATE when the client agreed to
	// COM-PORT-OPTION (once per direction, from the stubbed modem lines),
	// before the acknowledgements above: the client ignored it and the
	// session goes on.

	// data both ways through the PTY
	data := pyData()
	if _, err := cl.Write(data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	readDone := make(chan error, 1)
	go func() { _, err := io.ReadFull(master, got); readDone <- err }()
	select {
	case err := <-readDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("data did not reach the PTY")
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("client→PTY data differs")
	}
	if _, err := master.Write(data); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "PTY→client data", func() bool { return len(d.bytes()) >= len(data) })
	if !bytes.Equal(d.bytes(), data) {
		t.Fatalf("PTY→client data differs")
	}
}
