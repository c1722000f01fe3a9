//go:build linux

package pty

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// termiosWatchGap is the shortest time between a termios re-read after a
// write_wait wake-up that found nothing new and the next one. The wake-ups
// the termios watch listens to also come with the application's data (see
// termWatch); the gap bounds those useless re-reads to 1/termiosWatchGap a
// second per busy port with processed input. A change is seen at once
// after a quiet period or after another change, and within the gap during
// a burst of writes. Status bytes (EPOLLPRI) are never gapped.
const termiosWatchGap = 5 * time.Millisecond

// termWatch hears the application's tcsetattr, and status packets while
// nobody reads the master.
//
// Every termios change on the slave ends in n_tty_set_termios, which wakes
// the slave's write_wait queue ("the termios change makes the tty ready
// for I/O") without a key, whatever the flags and whether anything
// changed. The wake-ups of write_wait that come with the data (the master
// reading the application's bytes, tty_wakeup; the application's own
// write, tty_write_unlock) carry the key EPOLLOUT. The watch has the
// Port's slave fd in an epoll set of its own twice, edge triggered (the
// slave is writable, so each wake-up's edge is reported):
//
//   - a duplicate for EPOLLWRNORM (which n_tty_poll reports with EPOLLOUT
//     while writable): ep_poll_callback drops the keyed data wake-ups, so
//     a tcsetattr is heard at once and the data costs nothing. But an
//     edge is only reported if the slave is writable when the event is
//     collected: a tcsetattr whose wake-up is collected while the
//     application's next write holds the write lock, or while its output
//     is stopped, is not reported there (5 in 1000 cycles of write,
//     tcsetattr, write);
//   - the slave fd itself for EPOLLOUT, which every wake-up reaches (the
//     write unlock or restart after such a miss included); the re-reads it
//     causes are bounded by termiosWatchGap.
//
// Wake-ups of read_wait (the device's bytes arriving for the application,
// keyed EPOLLIN) reach neither. That epoll fd is itself in Go's poller, so
// a port costs two fds and no thread. The slave is registered (armed) only
// while the application's input is not raw; EXTPROC does the job
// otherwise (see follow).
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
	sdup  *os.File // a duplicate of the slave fd, in ep for EPOLLWRNORM
	evs   [4]unix.EpollEvent
	armed bool // the slave fds are registered (see armTermWatch); guarded by Port.smu
}

// slaveEvents are the events each slave fd of the watch listens for when
// armed.
const (
	slaveOut    = unix.EPOLLOUT | unix.EPOLLET
	slaveWRNorm = unix.EPOLLWRNORM | unix.EPOLLET
)

// newTermWatch sets up the epoll set on the slave fd sfd (armed), a
// duplicate of it, and the master fd mfd.
func newTermWatch(sfd, mfd int) (_ *termWatch, err error) {
	dfd, err := unix.FcntlInt(uintptr(sfd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("pty: termios watch: dup: %w", err)
	}
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		_ = unix.Close(dfd)
		return nil, fmt.Errorf("pty: termios watch: epoll_create1: %w", err)
	}
	defer func() {
		if err != nil {
			_ = unix.Close(fd)
			_ = unix.Close(dfd)
		}
	}()
	for _, ev := range []unix.EpollEvent{
		{Events: slaveOut, Fd: int32(sfd)},
		{Events: slaveWRNorm, Fd: int32(dfd)},
		{Events: unix.EPOLLPRI | unix.EPOLLET, Fd: int32(mfd)},
	} {
		if err := unix.EpollCtl(fd, unix.EPOLL_CTL_ADD, int(ev.Fd), &ev); err != nil {
			return nil, fmt.Errorf("pty: termios watch: epoll_ctl: %w", err)
		}
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("pty: termios watch: %w", err)
	}
	return &termWatch{
		ep:    os.NewFile(uintptr(fd), "epoll:termios"),
		sdup:  os.NewFile(uintptr(dfd), "termios watch slave"),
		armed: true,
	}, nil
}

// wait blocks until the slave's write_wait was woken since the last wait
// (out; now if without a key, a tcsetattr; the first wait returns at once:
// adding the fds reports them writable) or a status byte is pending on the
// master (now), until the epoll file's read deadline (an error wrapping
// os.ErrDeadlineExceeded) or until it is closed.
func (w *termWatch) wait() (now, out bool, err error) {
	rc, err := w.ep.SyscallConn()
	if err != nil {
		return false, false, err
	}
	err = rc.Read(func(fd uintptr) bool {
		n, err := unix.EpollWait(int(fd), w.evs[:], 0)
		for _, ev := range w.evs[:max(n, 0)] {
			now = now || ev.Events&(unix.EPOLLPRI|unix.EPOLLWRNORM) != 0
			out = out || ev.Events&unix.EPOLLOUT != 0
		}
		return n > 0 || (err != nil && err != unix.EINTR)
	})
	return now, out, err
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
// master has pending and each wake-up of the slave's write_wait without a
// key, after the others at most once per termiosWatchGap, and every
// Config.PollInterval (the safety net: the watch's read deadline is the
// poll's timer, so a Port needs no goroutine of its own for it), until the
// epoll file is closed. If the watch fails, the poll goes on alone.
func (p *Port) runTermWatch(ctx context.Context) error {
	iv := p.cfg.PollInterval
	var poll time.Time // when the next poll is due; zero: no polls
	if iv > 0 {
		poll = nextPoll(iv)
	}
	var last time.Time // of the last re-read after a write_wait wake-up that found nothing new
	due := false       // a write_wait wake-up waits for its re-read
	for {
		deadline := poll
		if gap := last.Add(termiosWatchGap); due && (deadline.IsZero() || gap.Before(deadline)) {
			deadline = gap
		}
		err := p.tw.ep.SetReadDeadline(deadline)
		var now, out bool
		if err == nil {
			now, out, err = p.tw.wait()
		}
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			if p.closed.Load() {
				return nil
			}
			p.log.Warn("pty: termios watch stopped; settings changes are seen by the poll only", "slave", p.name, "err", err)
			if iv > 0 {
				return p.runPoll(ctx)
			}
			return nil
		}
		polled := !poll.IsZero() && !time.Now().Before(poll)
		if polled {
			poll = nextPoll(iv)
		}
		due = due || out
		if !now && !polled && (!due || time.Since(last) < termiosWatchGap) {
			continue
		}
		switch changed := p.refresh(false); {
		case changed:
			last = time.Time{}
		case due && !now:
			last = time.Now()
		}
		due = false
	}
}

// armTermWatch arms or disarms the termios watch (EPOLL_CTL_MOD of the
// slave fds with their events, or with none: then the kernel's wake-ups of
// write_wait no longer reach the Port at all). Arming reports the slave
// writable at once: one harmless re-read. Called with smu held (or before
// the Port runs).
func (p *Port) armTermWatch(on bool) {
	if p.tw == nil || p.tw.armed == on {
		return
	}
	rc, err := p.tw.ep.SyscallConn()
	var drc syscall.RawConn
	if err == nil {
		drc, err = p.tw.sdup.SyscallConn()
	}
	mod := func(fd int, events uint32) (err error) {
		ev := unix.EpollEvent{Fd: int32(fd)}
		if on {
			ev.Events = events
		}
		if cerr := rc.Control(func(ep uintptr) { err = unix.EpollCtl(int(ep), unix.EPOLL_CTL_MOD, fd, &ev) }); cerr != nil {
			return cerr
		}
		return err
	}
	if err == nil {
		err = p.slaveCtl(func(sfd int) error { return mod(sfd, slaveOut) })
	}
	if err == nil {
		var derr error
		if err = drc.Control(func(dfd uintptr) { derr = mod(int(dfd), slaveWRNorm) }); err == nil {
			err = derr
		}
	}
	if err != nil {
		if !p.closed.Load() {
			p.log.Warn("pty: cannot switch the termios watch", "slave", p.name, "on", on, "err", err)
		}
		return
	}
	p.tw.armed = on
}
