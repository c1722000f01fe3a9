//go:build linux

package pty

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// masterOutSets counts the epoll sets of this process that have the fd mfd
// registered for EPOLLOUT (from /proc/self/fdinfo).
func masterOutSets(t *testing.T, mfd int) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, fd := range fds {
		if l, err := os.Readlink("/proc/self/fd/" + fd.Name()); err != nil || l != "anon_inode:[eventpoll]" {
			continue
		}
		info, err := os.ReadFile("/proc/self/fdinfo/" + fd.Name())
		if err != nil {
			continue // closed meanwhile
		}
		for _, line := range strings.Split(string(info), "\n") {
			var tfd int
			var events string
			if _, err := fmt.Sscanf(line, "tfd: %d events: %s", &tfd, &events); err != nil || tfd != mfd {
				continue
			}
			ev, err := strconv.ParseUint(events, 16, 32)
			if err != nil {
				t.Fatalf("fdinfo line %q: %v", line, err)
			}
			if ev&unix.EPOLLOUT != 0 {
				n++
			}
		}
	}
	return n
}

// TestMasterOutOfPoller: no epoll set of the process, Go's poller's
// included, has the master for EPOLLOUT, except the Port's write set while
// a Write waits for room. The application's every read of what the Port
// wrote wakes the master's write queue; registered for EPOLLOUT, the
// master woke the runtime once per message for nothing
// (docs/performance.md, change 10).
func TestMasterOutOfPoller(t *testing.T) {
	p := openPort(t, Config{})
	a := openApp(t, p.Name())
	if _, err := p.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got := a.readFull(t, 4); string(got) != "ping" {
		t.Fatalf("app read %q", got)
	}
	if n := masterOutSets(t, p.m.fd); n != 0 {
		t.Fatalf("%d epoll sets have the master for EPOLLOUT; want none", n)
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(make([]byte, 1<<20)) // nobody reads: it waits
		done <- err
	}()
	testenv.Blocked(t, waitTimeout, "IO wait", "pty.(*Port).Write")
	if n := masterOutSets(t, p.m.fd); n != 1 {
		t.Fatalf("while a Write waits, %d epoll sets have the master for EPOLLOUT; want 1", n)
	}
	if err := p.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Write: %v, want a deadline error", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("the deadline did not end the waiting Write")
	}
	if n := masterOutSets(t, p.m.fd); n != 0 {
		t.Fatalf("after the Write, %d epoll sets have the master for EPOLLOUT; want none", n)
	}
}

// TestNoAllocations: a message each way through the Port (Read, Write,
// and a ReadReady that finds nothing) allocates nothing.
func TestNoAllocations(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	a := openApp(t, p.Name())
	a.modify(t, makeRawTio)
	testenv.Eventually(t, waitTimeout, "the application's open counted", p.AppOpen)
	var ab, pb [1]byte
	more := make([]byte, 64)
	ab[0] = 'x'
	trip := func() {
		if _, err := a.f.Write(ab[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Read(pb[:]); err != nil {
			t.Fatal(err)
		}
		if n, err := p.ReadReady(more); n != 0 || err != nil {
			t.Fatalf("ReadReady = %d, %v; want 0, nil", n, err)
		}
		if _, err := p.Write(pb[:]); err != nil {
			t.Fatal(err)
		}
		if _, err := a.f.Read(ab[:]); err != nil {
			t.Fatal(err)
		}
	}
	trip() // the tcsetattr's status byte, read and handled
	if allocs := testing.AllocsPerRun(500, trip); allocs != 0 {
		t.Fatalf("%.1f allocations per round trip, want 0", allocs)
	}
}
