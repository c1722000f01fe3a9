//go:build linux

package device

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/rfc2217"
	"golang.org/x/sys/unix"
)

// queued is f's input queue (TIOCINQ).
func queued(t *testing.T, f *os.File) int {
	var n int
	var ierr error
	if err := control(f, func(fd int) error { n, ierr = unix.IoctlGetInt(fd, unix.TIOCINQ); return nil }); err != nil || ierr != nil {
		t.Fatal(err, ierr)
	}
	return n
}

// The pty backend's flush drops what the equipment sent and the device has
// not read (the master's input queue), counted.
func TestPTYBackendFlush(t *testing.T) {
	b, err := openPTY(filepath.Join(t.TempDir(), "line"))
	if err != nil {
		t.Fatalf("pty backend: %v", err) // Linux has ptys: the device's pty backend must open
	}
	defer b.Close()
	if _, err := b.slave.Write([]byte("stale")); err != nil { // the equipment
		t.Fatal(err)
	}
	// TIOCINQ counts what the line discipline holds, not what is still
	// in the pty's flip buffer: wait for all of it.
	testenv.Await(t, 5*time.Second, "5 bytes in the master's input queue", func() int { return queued(t, b.f) }, func(n int) bool { return n >= 5 })
	in, _, err := b.flush(true, false)
	if err != nil {
		t.Fatal(err)
	}
	if in != 5 || b.inputEpoch() != 1 {
		t.Fatalf("flushed %d bytes (epoch %d), want 5", in, b.inputEpoch())
	}
	if _, err := b.slave.Write([]byte("X")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, _, err := b.read(buf)
	if err != nil || string(buf[:n]) != "X" {
		t.Fatalf("read %q, %v after the flush; want \"X\"", buf[:n], err)
	}
}

// A receive purge from a client that does not read while the equipment
// sends (the device's writes to it block) does not stop the client's data
// to the line: the purge waits for the bytes on their way to the client
// only for a while (Port.purge), and the session goes on reading.
func TestRFC2217PurgeWhileClientNotReading(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyEQ")
	d := startDevice(t, Config{Console: "off", RFC2217: true, Serial: "pty:" + link})
	eq, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open equipment side: %v", err)
	}
	defer eq.Close()
	testenv.Termios(t, eq, testenv.Raw)
	cl := dialRFC2217(t, d.Port("COM1"))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer eq.Close() // ends the chatter
	wg.Go(func() {   // chatty equipment; the client reads none of it
		chunk := bytes.Repeat([]byte("chatter "), 512)
		for {
			if _, err := eq.Write(chunk); err != nil {
				return
			}
		}
	})
	testenv.Blocked(t, 30*time.Second, "IO wait", "device.(*session).send")
	if err := cl.Purge(rfc2217.PurgeReceive); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write([]byte("after\n")); err != nil {
		t.Fatal(err)
	}
	_ = eq.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len("after\n"))
	if _, err := io.ReadFull(eq, got); err != nil || string(got) != "after\n" {
		t.Fatalf("equipment read %q, %v after the purge; want \"after\\n\"", got, err)
	}
}
