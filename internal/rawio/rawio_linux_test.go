package rawio

import (
	"bytes"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// pipe returns both ends of an os.Pipe (non-blocking, in the poller) with
// an IO on each.
func pipe(t *testing.T) (r, w *os.File, rio, wio *IO) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	rrc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	wrc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return r, w, New(rrc), New(wrc)
}

func TestIO(t *testing.T) {
	t.Run("more than the pipe holds", func(t *testing.T) {
		_, _, rio, wio := pipe(t)
		want := bytes.Repeat([]byte("rawio!"), 200_000) // 1.2 MB: the pipe holds 64 KiB, so Write waits
		done := make(chan error, 1)
		go func() {
			n, errno, err := wio.Write(want)
			if err == nil && errno != 0 {
				err = errno
			}
			if err == nil && n != len(want) {
				err = errors.New("short write")
			}
			done <- err
		}()
		got := make([]byte, 0, len(want))
		buf := make([]byte, 10_000)
		for len(got) < len(want) {
			n, errno, err := rio.Read(buf)
			if err != nil || errno != 0 || n == 0 {
				t.Fatalf("Read = %d, %v, %v after %d bytes", n, errno, err, len(got))
			}
			got = append(got, buf[:n]...)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("read different bytes")
		}
	})
	t.Run("end of file", func(t *testing.T) {
		_, w, rio, _ := pipe(t)
		w.Close()
		n, errno, err := rio.Read(make([]byte, 8))
		if n != 0 || errno != 0 || err != nil {
			t.Fatalf("Read after the writer closed = %d, %v, %v; want 0, 0, nil", n, errno, err)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		r, _, rio, _ := pipe(t)
		r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, _, err := rio.Read(make([]byte, 8)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read past the deadline: %v", err)
		}
	})
	t.Run("errno", func(t *testing.T) {
		r, _, _, wio := pipe(t)
		r.Close() // no reader left: write fails with EPIPE (the runtime ignores SIGPIPE off fds 1 and 2)
		if _, errno, err := wio.Write([]byte("x")); err != nil || errno != syscall.EPIPE {
			t.Fatalf("Write with no reader = %v, %v; want EPIPE", errno, err)
		}
	})
	t.Run("closed", func(t *testing.T) {
		r, _, rio, _ := pipe(t)
		done := make(chan error, 1)
		go func() {
			_, _, err := rio.Read(make([]byte, 8))
			done <- err
		}()
		testenv.Blocked(t, 5*time.Second, "IO wait", "rawio.(*IO).Read") // the Read is blocked, not yet to start
		r.Close()
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("Read blocked across Close returned no error")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not interrupt a blocked Read")
		}
	})
}

// TestNoAllocations: a message costs no allocation (a closure handed to
// RawConn per call would cost two).
func TestNoAllocations(t *testing.T) {
	_, _, rio, wio := pipe(t)
	msg, buf := []byte("ping"), make([]byte, 16)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, _, err := wio.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, _, err := rio.Read(buf); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per write+read, want 0", allocs)
	}
}

// TestReadWriteFD: ReadFD returns EAGAIN at once on an empty
// non-blocking descriptor, what WriteFD wrote otherwise, without
// allocating.
func TestReadWriteFD(t *testing.T) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_NONBLOCK|syscall.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(p[0]); syscall.Close(p[1]) })
	buf := make([]byte, 16)
	if n, errno := ReadFD(p[0], buf); n != 0 || errno != syscall.EAGAIN {
		t.Fatalf("ReadFD of an empty pipe = %d, %v; want 0, EAGAIN", n, errno)
	}
	if n, errno := WriteFD(p[1], []byte("more")); n != 4 || errno != 0 {
		t.Fatalf("WriteFD = %d, %v; want 4, 0", n, errno)
	}
	if n, errno := ReadFD(p[0], buf); string(buf[:n]) != "more" || errno != 0 {
		t.Fatalf("ReadFD = %q, %v; want %q", buf[:n], errno, "more")
	}
	msg := []byte("x")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, errno := WriteFD(p[1], msg); errno != 0 {
			t.Fatalf("WriteFD: %v", errno)
		}
		if _, errno := ReadFD(p[0], buf); errno != 0 {
			t.Fatalf("ReadFD: %v", errno)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per WriteFD+ReadFD, want 0", allocs)
	}
}
