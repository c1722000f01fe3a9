//go:build linux

package pty

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// termiosWatchGap is the shortest time between a termios re-read that
// found nothing new and the next one. The wake-ups the termios watch
// listens to also come with the application's writes (see termWatch); the
// gap bounds those useless re-reads to 1/termiosWatchGap a second per busy
// port. A change is seen at once after a quiet period or after another
// change, and within the gap during a burst of writes.
const termiosWatchGap = 5 * time.Millisecond

// termWatch hears the application's tcsetattr, and status packets while
// nobody reads the master.
//
// Every termios change on the slave ends in n_tty_set_termios, which wakes
// the slave's write_wait queue ("the termios change makes the tty ready
// for I/O"), whatever the flags and whether anything changed. The Port's
// own slave fd sits in an epoll set of its own for EPOLLOUT, edge
// triggered: every wake-up of write_wait queues one event (the slave is
// writable, so the edge is reported), and wake-ups of read_wait (the
// device's bytes arriving for the application, keyed EPOLLIN) are filtered
// out by the kernel. That epoll fd is itself in Go's poller, so a port
// costs one fd and no thread. Other wake-ups of write_wait (the
// application's writes, the master reading them) cause a re-read each
// (at most one per termiosWatchGap); so the slave is only registered
// (armed) while the application's input is not raw, and EXTPROC does the
// job otherwise (see follow).
//
// The master is in the same set for EPOLLPRI, edge triggered: n_tty_poll
// reports EPOLLPRI while a packet-mode status byte waits (pty_set_termios
// with EXTPROC, flushes, stop and start wake the master's read_wait
// without a key), and the wake-ups that come with the application's data
// are keyed EPOLLIN and filtered out by the kernel. So a tcsetattr is
// heard, measured for the settings handler and followed (EXTPROC cleared
// when the input stops being raw) even while nobody calls Read, at no
// cost per message.
type termWatch struct {
	ep    *os.File // the epoll fd, non-blocking, in Go's poller
	evs   [4]unix.EpollEvent
	armed bool // the slave fd is registered for EPOLLOUT (see armTermWatch); guarded by Port.smu
}

// newTermWatch sets up the epoll set on the slave fd sfd (armed) and the
// master fd mfd.
func newTermWatch(sfd, mfd int) (*termWatch, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pty: termios watch: epoll_create1: %w", err)
	}
	for _, ev := range []unix.EpollEvent{
		{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: int32(sfd)},
		{Events: unix.EPOLLPRI | unix.EPOLLET, Fd: int32(mfd)},
	} {
		if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, int(ev.Fd), &ev); err != nil {
			_ = unix.Close(fd)
			return nil, fmt.Errorf("pty: termios watch: epoll_ctl: %w", err)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("pty: termios watch: %w", err)
	}
	return &termWatch{ep: os.NewFile(uintptr(fd), "epoll:termios"), armed: true}, nil
}

// wait blocks until the slave's write_wait was woken since the last wait
// (out; the first wait returns at once: adding the fd reports it
// writable) or a status byte is pending on the master (status), until the
// epoll file's read deadline (an error wrapping os.ErrDeadlineExceeded) or
// until it is closed.
func (w *termWatch) wait() (status, out bool, err error) {
	rc, err := w.ep.SyscallConn()
	if err != nil {
		return false, false, err
	}
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), w.evs[:], 0)
		for _, ev := range w.evs[:max(n, 0)] {
			status = status || ev.Events&unix.EPOLLPRI != 0
			out = out || ev.Events&unix.EPOLLOUT != 0
		}
		return n > 0 || (err != nil && err != unix.EINTR)
	})
	return status, out, err
}

// startTermWatch sets up the termios watch on the Port's own slave fd.
// Without it (logged) settings changes are seen by the poll only.
func (p *Port) startTermWatch() {
	var w *termWatch
	err := p.slaveCtl(func(sfd int) error {
		return p.masterCtl(func(mfd int) (err error) {
			w, err = newTermWatch(sfd, mfd)
			return err
		})
	})
	if err != nil {
		p.log.Warn("pty: cannot watch termios changes; only the poll sees them", "slave", p.name, "err", err)
		return
	}
	p.tw = w
}

// runTermWatch re-reads the settings at once after each status byte the
// master has pending, and after each wake-up of the slave's write_wait at
// most once per termiosWatchGap, until the epoll file is closed.
func (p *Port) runTermWatch() error {
	var last time.Time // of the last re-read after a write_wait wake-up that found nothing new
	due := false       // a write_wait wake-up waits for its re-read
	for {
		var deadline time.Time
		if due {
			deadline = last.Add(termiosWatchGap)
		}
		if err := p.tw.ep.SetReadDeadline(deadline); err != nil {
			return nil // closed by Close
		}
		status, out, err := p.tw.wait()
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return nil // closed by Close
		}
		due = due || out
		if !status && (!due || time.Since(last) < termiosWatchGap) {
			continue
		}
		switch changed := p.refresh(false); {
		case changed:
			last = time.Time{}
		case due:
			last = time.Now()
		}
		due = false
	}
}

// armTermWatch arms or disarms the termios watch (EPOLL_CTL_MOD of the
// slave fd with EPOLLOUT|EPOLLET, or with no events: then the kernel's
// wake-ups of write_wait no longer reach the Port at all). Arming reports
// the slave writable at once: one harmless re-read. Called with smu held
// (or before the Port runs).
func (p *Port) armTermWatch(on bool) {
	if p.tw == nil || p.tw.armed == on {
		return
	}
	var ev unix.EpollEvent
	if on {
		ev.Events = unix.EPOLLOUT | unix.EPOLLET
	}
	rc, err := p.tw.ep.SyscallConn()
	if err == nil {
		err = p.slaveCtl(func(sfd int) error {
			ev.Fd = int32(sfd)
			var cerr error
			if err := rc.Control(func(ep uintptr) { cerr = unix.EpollCtl(int(ep), unix.EPOLL_CTL_MOD, sfd, &ev) }); err != nil {
				return err
			}
			return cerr
		})
	}
	if err != nil {
		if !p.closed.Load() {
			p.log.Warn("pty: cannot switch the termios watch", "slave", p.name, "on", on, "err", err)
		}
		return
	}
	p.tw.armed = on
}
