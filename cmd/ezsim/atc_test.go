package main

import (
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// atcScript is the equipment: a pyserial program that drives the device
// through the device-side pty with AT commands, dials the test's server,
// exchanges data, escapes with +++ and hangs up. It prints what it saw.
const atcScript = `
import serial, sys, time
port, peer = sys.argv[1], sys.argv[2]
s = serial.Serial(port, 19200, timeout=10)
def expect(want):
    buf = b""
    deadline = time.time() + 15
    while want not in buf:
        if time.time() > deadline:
            sys.exit("timeout waiting for %r, got %r" % (want, buf))
        buf += s.read(1)
    return buf
s.write(b"ATE0\r"); expect(b"\r\nOK\r\n")
s.write(b"ATI3\r"); print("ATI3", expect(b"\r\nOK\r\n").decode().split())
s.write(("ATD" + peer + "\r").encode()); expect(b"\r\nCONNECT\r\n")
s.write(b"hello from equipment"); expect(b"hello from network")
time.sleep(0.7); s.write(b"+++"); expect(b"\r\nOK\r\n")
s.write(b"ATH\r"); expect(b"\r\nOK\r\n")
print("DONE")
`

// TestATCWithPyserial is acceptance item 3 for ATC: a real serial program
// (pyserial) drives the ezsim binary through its device-side pty.
func TestATCWithPyserial(t *testing.T) {
	py := testenv.Pyserial(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	link := filepath.Join(t.TempDir(), "ttyEQ")
	s := startSim(t, "--mode", "atc", "--serial", "pty:"+link, "--listen", "127.0.0.1:0", "--console", "off")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", atcScript, link, ln.Addr().String())
	outc := make(chan string, 1)
	go func() {
		out, err := cmd.CombinedOutput()
		if err != nil {
			out = append(out, []byte("\nexit: "+err.Error())...)
		}
		outc <- string(out)
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, len("hello from equipment"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "hello from equipment" {
		t.Fatalf("server got %q, %v", got, err)
	}
	c.Write([]byte("hello from network"))
	plus := make([]byte, 3)
	if _, err := io.ReadFull(c, plus); err != nil || string(plus) != "+++" {
		t.Fatalf("server got %q, %v (the +++ is passed on)", plus, err)
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("ATH did not close the session")
	}
	out := <-outc
	if !strings.Contains(out, "DONE") || !strings.Contains(out, "'CSE-H25', '/', '2.0', 'Rev.A'") {
		t.Fatalf("equipment script:\n%s\nezsim: %s", out, s.stderr)
	}
	s.stop(t)
}
