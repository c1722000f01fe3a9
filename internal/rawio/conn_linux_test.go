package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// rawPair returns a Conn-wrapped client and the server side of a loopback
// TCP connection.
func rawPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	rc := Conn(c)
	if _, ok := rc.(*conn); !ok {
		t.Fatalf("Conn returned %T", rc)
	}
	t.Cleanup(func() { rc.Close(); s.Close() })
	return rc, s
}

// TestConn: the raw system-call path keeps net.TCPConn's contract:
// data both ways (more than the socket buffers hold, so Write waits in the
// poller), read deadlines as timeouts, EOF, reset and use after Close.
func TestConn(t *testing.T) {
	t.Run("data", func(t *testing.T) {
		c, s := rawPair(t)
		// 16 MiB, more than loopback socket buffers hold: Write must wait
		// in the poller (EAGAIN) while the server is not reading yet.
		want := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
		errc := make(chan error, 1)
		go func() {
			_, err := c.Write(want)
			errc <- err
		}()
		testenv.Blocked(t, 5*time.Second, "IO wait", "rawio.(*conn).Write")
		got := make([]byte, len(want))
		if _, err := io.ReadFull(s, got); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatalf("Write: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("server received different bytes")
		}
		if _, err := s.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := c.Read(buf)
		if err != nil || string(buf[:n]) != "pong" {
			t.Fatalf("Read = %q, %v", buf[:n], err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		c, _ := rawPair(t)
		c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		var ne net.Error
		if !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("Read past the deadline: %v, want a timeout net.Error wrapping os.ErrDeadlineExceeded", err)
		}
		// Shaped like net.TCPConn's: one read OpError around the sentinel.
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "read" || oe.Err != os.ErrDeadlineExceeded || strings.Contains(err.Error(), "raw-read") {
			t.Fatalf("Read past the deadline: %q (%#v), want a read *net.OpError whose Err is os.ErrDeadlineExceeded", err, oe)
		}
	})
	t.Run("eof", func(t *testing.T) {
		c, s := rawPair(t)
		s.Close()
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("Read after the peer closed: %v, want io.EOF", err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		c, s := rawPair(t)
		s.(*net.TCPConn).SetLinger(0) // close sends RST
		s.Close()
		// The reset may still be on its way: Read waits for it (bounded).
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("Read after a reset: %v, want ECONNRESET", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "read" {
			t.Fatalf("Read error %v is not a read *net.OpError", err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		c, _ := rawPair(t)
		c.Close()
		if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
		}
		if _, err := c.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Write after Close: %v, want net.ErrClosed", err)
		}
	})
}
