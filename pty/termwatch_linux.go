//go:build linux

package pty

import (
	"context"
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

// termWatch hears the application's tcsetattr without EXTPROC.
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
// application's writes, the master reading them) cause a harmless
// re-read.
type termWatch struct {
	ep  *os.File // the epoll fd, non-blocking, in Go's poller
	evs [4]unix.EpollEvent
}

// newTermWatch sets up the epoll set on the slave fd sfd.
func newTermWatch(sfd int) (*termWatch, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pty: termios watch: epoll_create1: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: int32(sfd)}
	if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, sfd, &ev); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("pty: termios watch: epoll_ctl: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("pty: termios watch: %w", err)
	}
	return &termWatch{ep: os.NewFile(uintptr(fd), "epoll:termios")}, nil
}

// wait blocks until the slave's write_wait was woken since the last wait
// (the first wait returns at once: adding the fd reports it writable), or
// the epoll file is closed.
func (w *termWatch) wait() error {
	rc, err := w.ep.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Read(func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), w.evs[:], 0)
		return n > 0 || (err != nil && err != unix.EINTR)
	})
}

// startTermWatch sets up the termios watch on the Port's own slave fd.
// Without it (logged) settings changes are seen by the poll only.
func (p *Port) startTermWatch() {
	var w *termWatch
	err := p.slaveCtl(func(fd int) (err error) {
		w, err = newTermWatch(fd)
		return err
	})
	if err != nil {
		p.log.Warn("pty: cannot watch termios changes; only the poll sees them", "slave", p.name, "err", err)
		return
	}
	p.tw = w
}

// runTermWatch re-reads the settings after each wake-up of the slave's
// write_wait, at most once per termiosWatchGap, until ctx ends or the
// epoll file is closed.
func (p *Port) runTermWatch(ctx context.Context) error {
	var last time.Time // of the last re-read that found nothing new
	for {
		if err := p.tw.wait(); err != nil {
			return nil // closed by Close
		}
		if gap := termiosWatchGap - time.Since(last); gap > 0 {
			t := time.NewTimer(gap)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
		if p.refresh(false) {
			last = time.Time{}
		} else {
			last = time.Now()
		}
	}
}

// clearExtproc clears EXTPROC on the slave of an adopted pair (an earlier
// vsp set it to hear tcsetattr; it stops the line discipline's input
// processing, see LIMITS.md). Everything else stays as the application
// set it.
func (p *Port) clearExtproc() error {
	return p.slaveCtl(func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return fmt.Errorf("pty: adopt: read termios: %w", err)
		}
		if t.Lflag&unix.EXTPROC == 0 {
			return nil
		}
		t.Lflag &^= unix.EXTPROC
		if err := unix.IoctlSetTermios(fd, ioctlSetTermios, t); err != nil {
			return fmt.Errorf("pty: adopt: clear EXTPROC: %w", err)
		}
		return nil
	})
}
