//go:build linux

package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	cpty "github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// referencePort is a plain pty whose master echoes: what any pty-based
// port can at best be. It returns the slave's path.
func referencePort(t testing.TB) string {
	t.Helper()
	master, slave, err := cpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close(); slave.Close() })
	go func() { _, _ = io.Copy(master, master) }()
	return slave.Name()
}

// readUntil reads from f until sentinel arrives or timeout passes.
func readUntil(f *os.File, sentinel byte, timeout time.Duration) []byte {
	_ = f.SetReadDeadline(time.Now().Add(timeout))
	defer f.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 256)
	for bytes.IndexByte(got, sentinel) < 0 {
		n, err := f.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			break
		}
	}
	return got
}

// writeNB makes one non-blocking write of p to f (which is non-blocking:
// os.OpenFile on a tty) and returns what the kernel accepted.
func writeNB(t testing.TB, f *os.File, p []byte) int {
	t.Helper()
	sc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var werr error
	if err := sc.Control(func(fd uintptr) { n, werr = unix.Write(int(fd), p) }); err != nil {
		t.Fatal(err)
	}
	if werr != nil && !errors.Is(werr, unix.EAGAIN) {
		t.Fatal(werr)
	}
	return max(n, 0)
}

// tcflow runs tcflow(3) on f.
func tcflow(t testing.TB, f *os.File, action int) {
	t.Helper()
	sc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ierr error
	if err := sc.Control(func(fd uintptr) { ierr = unix.IoctlSetInt(int(fd), unix.TCXONC, action) }); err != nil {
		t.Fatal(err)
	}
	if ierr != nil {
		t.Fatal(ierr)
	}
}

// termiosRows are the input flags of issue 18: what the application sets,
// what it writes (the device echoes it: "the device sends"), and what it
// reads, up to and including the sentinel byte.
var termiosRows = []struct {
	name     string
	set      func(*unix.Termios)
	send     string
	want     string
	sentinel byte
}{
	{"ICRNL", func(t *unix.Termios) { t.Iflag |= unix.ICRNL }, "AB\rCD#", "AB\nCD#", '#'},
	{"INLCR", func(t *unix.Termios) { t.Iflag |= unix.INLCR }, "AB\nCD#", "AB\rCD#", '#'},
	{"IGNCR", func(t *unix.Termios) { t.Iflag |= unix.IGNCR }, "AB\rCD#", "ABCD#", '#'},
	{"ISTRIP", func(t *unix.Termios) { t.Iflag |= unix.ISTRIP }, "A\xc1B#", "AAB#", '#'},
	{"IUCLC+IEXTEN", func(t *unix.Termios) { t.Iflag |= unix.IUCLC; t.Lflag |= unix.IEXTEN }, "AbC#", "abc#", '#'},
	{"PARMRK", func(t *unix.Termios) { t.Iflag |= unix.PARMRK }, "a\xffb#", "a\xff\xffb#", '#'},
	{"ICANON VERASE", func(t *unix.Termios) { t.Lflag |= unix.ICANON; t.Cc[unix.VERASE] = 0x7f }, "ab\x7fc\n", "ac\n", '\n'},
	{"ICANON VKILL", func(t *unix.Termios) { t.Lflag |= unix.ICANON; t.Cc[unix.VKILL] = 0x15 }, "abc\x15de\n", "de\n", '\n'},
	{"ICANON+IEXTEN VWERASE", func(t *unix.Termios) { t.Lflag |= unix.ICANON | unix.IEXTEN; t.Cc[unix.VWERASE] = 0x17 },
		"ab cd\x17e\n", "ab e\n", '\n'},
	{"ICANON+IEXTEN VLNEXT", func(t *unix.Termios) {
		t.Lflag |= unix.ICANON | unix.IEXTEN
		t.Cc[unix.VLNEXT], t.Cc[unix.VERASE] = 0x16, 0x7f
	}, "a\x16\x7fb\n", "a\x7fb\n", '\n'},
	{"ICANON VEOL", func(t *unix.Termios) { t.Lflag |= unix.ICANON; t.Cc[unix.VEOL] = ';' }, "ab;", "ab;", ';'},
	{"ISIG VINTR", func(t *unix.Termios) { t.Lflag |= unix.ISIG; t.Cc[unix.VINTR] = 0x03 }, "ab\x03cd#", "cd#", '#'},
	{"ISIG+NOFLSH VQUIT", func(t *unix.Termios) { t.Lflag |= unix.ISIG | unix.NOFLSH; t.Cc[unix.VQUIT] = 0x1c }, "ab\x1ccd#", "abcd#", '#'},
	{"IXON consumes XON/XOFF", func(t *unix.Termios) { t.Iflag |= unix.IXON }, "a\x11b#", "ab#", '#'},
	{"raw", func(*unix.Termios) {}, "AB\r\n\x13\x11\x03\xff#", "AB\r\n\x13\x11\x03\xff#", '#'},
}

// Issue 18, acceptance 1: for each input flag, an application on a vsp
// port (ezsim echo behind it) reads what it reads on a plain pty whose
// master echoes.
func TestTermiosInputLikePlainPty(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "off", "--stale-data", "keep")
	ports := []struct{ name, path string }{{"plain pty", referencePort(t)}, {"vsp", link}}
	apps := make([]*os.File, len(ports))
	for i, p := range ports {
		apps[i] = openApp(t, p.path)
	}
	for _, row := range termiosRows {
		t.Run(row.name, func(t *testing.T) {
			for i, p := range ports {
				app := apps[i]
				testenv.Termios(t, app, func(tio *unix.Termios) { testenv.Raw(tio); row.set(tio) })
				if _, err := app.Write([]byte(row.send)); err != nil {
					t.Fatal(err)
				}
				got := readUntil(app, row.sentinel, 5*time.Second)
				if string(got) != row.want {
					t.Errorf("%s: sent %q, read %q, want %q", p.name, row.send, got, row.want)
				}
			}
		})
	}
}

// Issue 18, acceptance 1 (flow control): with IXON, the device's XOFF stops
// the application's output (a non-blocking write accepts nothing) until
// XON arrives (sent by the application with tcflow(TCION), echoed); on a
// vsp port as on the plain pty. (tcflow(TCOON) does not undo a stop by
// XOFF on Linux, on either: it only resumes after TCOOFF.)
func TestTermiosIXONLikePlainPty(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "off", "--stale-data", "keep")
	for _, p := range []struct{ name, path string }{{"plain pty", referencePort(t)}, {"vsp", link}} {
		t.Run(p.name, func(t *testing.T) {
			app := openApp(t, p.path)
			testenv.Termios(t, app, func(tio *unix.Termios) { tio.Iflag |= unix.IXON })
			if _, err := app.Write([]byte("\x13")); err != nil {
				t.Fatal(err)
			}
			// Probes go out (and come back) until the XOFF's echo
			// stops the output.
			testenv.Eventually(t, 5*time.Second, "the output stopped by the device's XOFF", func() bool {
				return writeNB(t, app, []byte("p")) == 0
			})
			if n := writeNB(t, app, make([]byte, 16<<10)); n != 0 {
				t.Fatalf("%d of 16 KiB accepted while stopped", n)
			}
			testenv.Eventually(t, 5*time.Second, "the output resumed", func() bool {
				// A pty sends XON even while stopped (restart, send, stop
				// again): an echo faster than that is lost, so send it
				// again until the output runs.
				tcflow(t, app, unix.TCION)
				return writeNB(t, app, []byte("#")) == 1
			})
			got := readUntil(app, '#', 5*time.Second)
			if want := []byte("#"); !bytes.HasSuffix(got, want) || len(bytes.Trim(got, "p#")) != 0 {
				t.Fatalf("read %q after resuming: want probes, then %q", got, want)
			}
		})
	}
}

// pyserialXOFF is the write-timeout test of a serial library's suite
// (pyserial, python3-serial), in the version that relies on the device's
// flow control: with xonxoff on, an XOFF from the device stops the
// output, so a write times out; XON (sent with tcflow(TCION), echoed back)
// lets a write through again. (The echo of what the application wrote
// before the XOFF took effect fills its input queue, which holds the XON
// back on vsp, whose XOFF takes effect a round trip later than on the
// in-kernel reference: the script drains its input while it waits.)
const pyserialXOFF = `
import sys, time, termios, serial
s = serial.Serial(sys.argv[1], 9600, xonxoff=True, timeout=5, write_timeout=0.2)
deadline = time.time() + 5
try:
    # pyserial waits for the fd to be writable again after each write: on
    # the reference the echoed XOFF can stop the output before that.
    s.write(b"\x13")
except serial.SerialTimeoutException:
    pass
while True:  # probes go out (and come back) until the XOFF's echo stops the output
    try:
        s.write(b"p")
    except serial.SerialTimeoutException:
        break
    if time.time() > deadline:
        print("the output never stopped")
        sys.exit(1)
try:
    s.write(b"x" * 16384)
    print("no write timeout")
    sys.exit(1)
except serial.SerialTimeoutException:
    pass
s.write_timeout = 0.1
deadline = time.time() + 5
while True:
    # tcflow(TCION) restarts the output to send XON and stops it again: an
    # echo faster than that (the in-kernel reference) is lost; send again.
    termios.tcflow(s.fd, termios.TCION)
    s.reset_input_buffer()
    try:
        s.write(b"#")
        break
    except serial.SerialTimeoutException:
        if time.time() > deadline:
            raise
got = s.read_until(b"#")
print("timeout, then", repr(got[-1:]))
`

// Issue 18, acceptance 3: pyserial's write timeout with XOFF behaves on a
// vsp port as on the plain pty.
func TestPyserialXOFFWriteTimeout(t *testing.T) {
	py := testenv.Pyserial(t)
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "off", "--stale-data", "keep")
	for _, p := range []struct{ name, path string }{{"plain pty", referencePort(t)}, {"vsp", link}} {
		out, err := exec.Command(py, "-I", "-c", pyserialXOFF, p.path).CombinedOutput()
		if got, want := strings.TrimSpace(string(out)), "timeout, then b'#'"; err != nil || got != want {
			t.Errorf("%s: pyserial printed %q (%v), want %q", p.name, got, err, want)
		}
	}
}
