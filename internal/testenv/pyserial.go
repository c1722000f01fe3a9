package testenv

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Python is Debian's interpreter, the one python3-serial installs for (the
// python3 on PATH may be another build without pyserial).
const Python = "/usr/bin/python3"

// Pyserial returns Python when it can import serial and serial.rfc2217,
// and otherwise skips the test with the reason (fails it in strict mode).
func Pyserial(t testing.TB) string {
	t.Helper()
	if _, err := os.Stat(Python); err != nil {
		Missing(t, Python+" is not installed (apt-get install python3-serial)")
	}
	out, err := exec.Command(Python, "-I", "-c", "import serial, serial.rfc2217; print(serial.__version__)").CombinedOutput()
	if err != nil {
		Missing(t, "pyserial is not importable by "+Python+" (apt-get install python3-serial): "+strings.TrimSpace(string(out)))
	}
	t.Logf("pyserial %s", strings.TrimSpace(string(out)))
	return Python
}

// portManagerScript serves one TCP connection with pyserial's PortManager
// over a serial.Serial opened on a tty (argv[1]) and prints its port. A PTY
// has no modem lines (TIOCM* ioctls fail with ENOTTY), which PortManager
// does not expect, so the script stubs them: CTS and DSR on, RI and CD off.
const portManagerScript = `
import sys, socket, threading, logging, serial, serial.rfc2217

class PtySerial(serial.Serial):
    def _update_dtr_state(self):
        pass
    def _update_rts_state(self):
        pass
    @property
    def cts(self):
        return True
    @property
    def dsr(self):
        return True
    @property
    def ri(self):
        return False
    @property
    def cd(self):
        return False

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
ser = PtySerial(sys.argv[1], 9600, timeout=0.05)
ln = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ln.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ln.bind(("127.0.0.1", 0))
ln.listen(1)
print(ln.getsockname()[1], flush=True)
conn, _ = ln.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
lock = threading.Lock()

class Writer:
    def write(self, data):
        with lock:
            conn.sendall(data)

pm = serial.rfc2217.PortManager(ser, Writer(), logger=logging.getLogger("portmanager"))
alive = True

def serial_to_net():
    while alive:
        data = ser.read(ser.in_waiting or 1)
        if data:
            with lock:
                conn.sendall(b"".join(pm.escape(data)))

threading.Thread(target=serial_to_net, daemon=True).start()
while True:
    data = conn.recv(4096)
    if not data:
        break
    ser.write(b"".join(pm.filter(data)))
alive = False
print("DONE", flush=True)
`

// PortManager starts pyserial's RFC 2217 server side (serial.rfc2217's
// PortManager) on the tty at path, for one TCP connection on loopback, and
// returns its address ("127.0.0.1:PORT"). It skips the test without
// pyserial (fails it in strict mode). The process is killed when the test
// ends, and its debug log is printed if the test failed.
func PortManager(t testing.TB, tty string) string {
	t.Helper()
	py := Pyserial(t)
	script := filepath.Join(t.TempDir(), "portmanager.py")
	if err := os.WriteFile(script, []byte(portManagerScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-I", script, tty)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	log := &Buffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("PortManager log:\n%s", log.String())
		}
	})
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		t.Fatalf("PortManager script printed no port:\n%s", log.String())
	}
	return "127.0.0.1:" + strings.TrimSpace(sc.Text())
}

// Buffer is a bytes.Buffer that a process or a logger may write while the
// test reads it: the output of a program under test, a slog handler's.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
