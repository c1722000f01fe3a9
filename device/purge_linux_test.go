//go:build linux

package device

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
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
