//go:build linux

package pty

import (
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/rawio"
)

// masterName names the master in errors.
const masterName = "/dev/ptmx"

// master is the pty master, kept out of Go's poller (docs/performance.md,
// change 10).
//
// Go registers every pollable descriptor for EPOLLIN and EPOLLOUT, edge
// triggered. The master's write_wait queue is woken (keyed EPOLLOUT) each
// time the application reads what the Port wrote (pty_unthrottle,
// tty_wakeup), so a busy port woke the runtime's netpoller once more per
// message for a write that was not waiting. Here the master fd is in two
// epoll sets of its own instead, and those sets are what Go's poller
// holds:
//
//   - rep has the master for EPOLLIN: Read waits for rep to be readable.
//     The kernel drops the keyed EPOLLOUT wake-ups at rep's callback, so
//     they never reach the runtime. (Status bytes wake read_wait without
//     a key and make the master readable: they pass.)
//   - wep has the master for EPOLLOUT only while a Write waits (the
//     slave's input queue full): added when a write(2) returns EAGAIN,
//     deleted when the Write returns.
//
// Reads and writes are raw read(2) and write(2) of the non-blocking master
// (internal/rawio), made inside rep's and wep's RawConn callbacks, so that
// the master fd is in use only while one of them holds a reference: close
// closes wep and rep (which waits for their callbacks to return and wakes
// their waiters) before the master. Deadlines are rep's and wep's read
// deadlines. Reads are serialised with each other and writes with each
// other; a read and a write may run at the same time. No method
// allocates on the data path.
type master struct {
	fd  int             // the master: non-blocking, not in Go's poller
	rep *os.File        // epoll set with fd for EPOLLIN, in Go's poller
	rrc syscall.RawConn // rep's
	wep *os.File        // epoll set with fd for EPOLLOUT while a Write waits, in Go's poller
	wrc syscall.RawConn // wep's

	rmu    sync.Mutex
	rb     []byte
	rn     int
	rerr   syscall.Errno
	rtry   bool // this read(2) does not wait (TryRead)
	readFn func(uintptr) bool

	wmu     sync.Mutex
	wb      []byte
	wn      int
	werr    syscall.Errno
	warmed  bool // fd is in wep
	writeFn func(uintptr) bool
}

// newMaster sets up the epoll sets of the non-blocking master fd. It takes
// fd over: on failure fd is closed.
func newMaster(fd int) (_ *master, err error) {
	m := &master{fd: fd}
	defer func() {
		if err != nil {
			_ = m.close()
		}
	}()
	if m.rep, m.rrc, err = newEpoll("epoll:pty-read"); err != nil {
		return nil, err
	}
	if m.wep, m.wrc, err = newEpoll("epoll:pty-write"); err != nil {
		return nil, err
	}
	var cerr error
	if err := m.rrc.Control(func(ep uintptr) {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}
		cerr = unix.EpollCtl(int(ep), unix.EPOLL_CTL_ADD, fd, &ev)
	}); err != nil {
		return nil, fmt.Errorf("pty: %w", err)
	}
	if cerr != nil {
		return nil, fmt.Errorf("pty: master epoll_ctl: %w", cerr)
	}
	// Built once: a closure passed to RawConn.Read escapes, so a fresh
	// one per call would allocate on every message.
	m.readFn, m.writeFn = m.read, m.write
	return m, nil
}

// newEpoll returns a new non-blocking epoll set as a file in Go's poller.
func newEpoll(name string) (*os.File, syscall.RawConn, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("pty: epoll_create1: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	rc, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("pty: %w", err)
	}
	return f, rc, nil
}

// close closes wep, rep and the master, in that order (see master). It is
// not idempotent: the Port calls it once.
func (m *master) close() error {
	var errs []error
	for _, f := range []*os.File{m.wep, m.rep} {
		if f != nil {
			if err := f.Close(); err != nil {
				errs = append(errs, fmt.Errorf("pty: %w", err))
			}
		}
	}
	if err := unix.Close(m.fd); err != nil {
		errs = append(errs, fmt.Errorf("pty: close master: %w", err))
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// control runs f on the master fd (while rep is open).
func (m *master) control(f func(fd int)) error {
	return m.rrc.Control(func(uintptr) { f(m.fd) })
}

// Read is one read(2) into b, waiting for rep while there is nothing to
// read. It returns the poller's error unchanged (deadline:
// os.ErrDeadlineExceeded; closed) or the system call's errno; n == 0 with
// neither means end of file.
func (m *master) Read(b []byte) (n int, errno syscall.Errno, err error) {
	return m.doRead(b, false)
}

// TryRead is Read without waiting: with nothing to read it returns errno
// EAGAIN at once.
func (m *master) TryRead(b []byte) (n int, errno syscall.Errno, err error) {
	return m.doRead(b, true)
}

func (m *master) doRead(b []byte, try bool) (n int, errno syscall.Errno, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	m.rmu.Lock()
	defer m.rmu.Unlock()
	m.rb, m.rn, m.rerr, m.rtry = b, 0, 0, try
	err = m.rrc.Read(m.readFn)
	n, errno = m.rn, m.rerr
	m.rb = nil
	return n, errno, err
}

// read is the callback of rep's RawConn.Read: it reads the master. rep's
// readiness is cleared before each call (the poller's prepareRead), so
// bytes that arrive after an EAGAIN make rep readable again and the wait
// ends: no edge is lost.
func (m *master) read(uintptr) bool {
	for {
		n, e := rawio.ReadFD(m.fd, m.rb)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			if m.rtry {
				m.rerr = e
				return true
			}
			return false // wait until readable
		}
		m.rn, m.rerr = n, e
		return true
	}
}

// Write writes all of b, waiting for wep whenever the master takes no
// more. It returns how much was written and the poller's error (deadline,
// closed) or the errno of the write that failed.
func (m *master) Write(b []byte) (n int, errno syscall.Errno, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	m.wb, m.wn, m.werr = b, 0, 0
	err = m.wrc.Read(m.writeFn)
	if m.warmed {
		m.warmed = false
		_ = m.wrc.Control(func(ep uintptr) { _ = unix.EpollCtl(int(ep), unix.EPOLL_CTL_DEL, m.fd, nil) })
	}
	n, errno = m.wn, m.werr
	m.wb = nil
	return n, errno, err
}

// write is the callback of wep's RawConn.Read: it writes the master and,
// at the first EAGAIN, adds the master to wep for EPOLLOUT and tries once
// more (the slave may have made room before the master was added).
func (m *master) write(ep uintptr) bool {
	for m.wn < len(m.wb) {
		n, e := rawio.WriteFD(m.fd, m.wb[m.wn:])
		switch e {
		case 0:
			m.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			if m.warmed {
				return false // wait until writable
			}
			ev := unix.EpollEvent{Events: unix.EPOLLOUT | unix.EPOLLET, Fd: int32(m.fd)}
			if err := unix.EpollCtl(int(ep), unix.EPOLL_CTL_ADD, m.fd, &ev); err != nil {
				if m.werr, _ = err.(syscall.Errno); m.werr == 0 {
					m.werr = syscall.EIO
				}
				return true
			}
			m.warmed = true
		default:
			m.werr = e
			return true
		}
	}
	return true
}
