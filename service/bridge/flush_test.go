//go:build linux

package bridge

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/tlsconn"
)

// An application's tcflush(TCOFLUSH) during an outage drops what the
// outage buffer holds for the device (counted), so none of it reaches the
// device when the link is back; what the application writes after the
// flush does.
func TestPortWriteFlushDropsOutageBuffer(t *testing.T) {
	dev := testenv.NewDevice(t)
	link := filepath.Join(t.TempDir(), "ttyFL")
	p, err := StartPort(PortSpec{
		Name:    "fl",
		PTY:     pty.Config{Link: link},
		Devices: []string{dev.Addr()},
		Link:    tlsconn.Config{Profile: tlsconn.ProfileOff},
		Bridge:  BridgeConfig{StaleData: StaleKeep},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	app, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	testenv.Termios(t, app, testenv.Raw)
	status := func() Stats { return p.Status().Stats }
	testenv.Await(t, 10*time.Second, "link up", status, func(s Stats) bool { return s.State == StateUp })
	if _, err := app.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	dev.WaitGot([]byte("a"), 10*time.Second)

	addr := dev.Addr()
	dev.Down()
	testenv.Await(t, 10*time.Second, "link down", status, func(s Stats) bool { return s.State != StateUp })
	old := make([]byte, 1000)
	if _, err := app.Write(old); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, 10*time.Second, "outage data buffered", status, func(s Stats) bool { return s.Buffered == len(old) })
	sc, err := app.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) { ferr = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCOFLUSH) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	testenv.Await(t, 10*time.Second, "the buffer flushed and counted", status, func(s Stats) bool {
		return s.Buffered == 0 && s.Flushed == uint64(len(old))
	})
	dev.Up(addr)
	testenv.Await(t, 10*time.Second, "link up again", status, func(s Stats) bool { return s.State == StateUp })
	if _, err := app.Write([]byte("new")); err != nil {
		t.Fatal(err)
	}
	dev.WaitGot([]byte("anew"), 10*time.Second)
}
