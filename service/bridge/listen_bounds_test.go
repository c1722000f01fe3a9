//go:build linux

package bridge

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/tlsconn"
)

// listenPort starts a listen-mode port (plain TCP) that wants mac first.
func listenPort(t *testing.T, mac string) (*Port, string) {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	p, err := StartPort(PortSpec{
		Name:   "cod",
		PTY:    pty.Config{Link: filepath.Join(t.TempDir(), "ttyCOD")},
		Listen: ListenSpec{Addr: "127.0.0.1:0", DeviceMAC: hw, AllowFrom: nil},
		Link:   tlsconn.Config{Profile: tlsconn.ProfileOff},
		Bridge: BridgeConfig{StaleData: StaleKeep},
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	return p, p.listener.ln.Addr().String()
}

// closedWithin reports whether the peer closed c within d (a read returns
// EOF or a reset), as opposed to c still waiting.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [1]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		return !errors.Is(err, os.ErrDeadlineExceeded)
	}
}

// TestListenBounds floods what a listening port reads from a peer before
// it is a session: the MAC prefix (a fixed 14 bytes: a peer sending a
// megabyte of garbage is refused after them) and the number of connections
// in their handshake (maxHandshakes; more are closed at once, and a real
// device gets through once the slots' timeouts free them).
func TestListenBounds(t *testing.T) {
	const mac = "00:30:f9:12:34:56"
	p, addr := listenPort(t, mac)

	t.Run("MAC prefix flood", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() { _, _ = c.Write(make([]byte, 1<<20)) }() // fails once vsp closes
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("a peer flooding garbage instead of its MAC was not refused")
		}
		if st := p.Status().State; st == StateUp {
			t.Fatalf("port state %s after a bad MAC", st)
		}
	})

	t.Run("handshake slots", func(t *testing.T) {
		var idle []net.Conn
		defer func() {
			for _, c := range idle {
				c.Close()
			}
		}()
		for range maxHandshakes {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			idle = append(idle, c) // sends nothing: holds a slot for macTimeout
		}
		for i := range 4 {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			if !closedWithin(c, 2*time.Second) {
				t.Fatalf("connection %d beyond %d pending handshakes was not refused at once", i, maxHandshakes)
			}
			c.Close()
		}
		if closedWithin(idle[0], 10*time.Millisecond) {
			t.Fatal("a connection within the limit was closed before its MAC timeout")
		}
		// The slots free after macTimeout: the device gets in.
		var dev net.Conn
		testenv.Eventually(t, macTimeout+5*time.Second, "a session for the device after the flood", func() bool {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.WriteString(c, "0030F9123456\r\n")
			if closedWithin(c, 200*time.Millisecond) {
				c.Close()
				return false
			}
			dev = c
			return true
		})
		defer dev.Close()
		testenv.Await(t, 5*time.Second, "the port up", func() string { return p.Status().State },
			func(s string) bool { return s == StateUp })
	})
}
