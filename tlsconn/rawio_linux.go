package tlsconn

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// rawIOConn is a TCP connection whose Read and Write issue read(2) and
// write(2) with syscall.RawSyscall, waiting in Go's poller (through
// SyscallConn) while the socket is not ready. Everything else (deadlines,
// keep-alive, SyscallConn, Close) is the *net.TCPConn's.
//
// Why: the socket is non-blocking, so the calls cannot block, and the
// runtime's system-call bookkeeping that net.TCPConn goes through wakes the
// sysmon thread on the first call after every idle moment. For a
// request/response exchange that is one extra thread wake-up per message
// (about 1.5 context switches per round trip measured, and about 10 µs of
// round-trip time on a 2-CPU machine: docs/performance.md).
type rawIOConn struct {
	*net.TCPConn
	rc syscall.RawConn
}

// rawIO wraps a TCP connection; other connections are returned as they are.
func rawIO(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &rawIOConn{TCPConn: tc, rc: rc}
}

func (c *rawIOConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := c.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = rawCall(syscall.SYS_READ, fd, b)
			if errno != syscall.EINTR {
				return errno != syscall.EAGAIN
			}
		}
	})
	if err == nil && errno == 0 && n == 0 {
		return 0, io.EOF
	}
	return n, c.opError("read", err, errno)
}

func (c *rawIOConn) Write(b []byte) (int, error) {
	done := 0
	var errno syscall.Errno
	err := c.rc.Write(func(fd uintptr) bool {
		for done < len(b) {
			n, e := rawCall(syscall.SYS_WRITE, fd, b[done:])
			switch e {
			case 0:
				done += n
			case syscall.EINTR:
			case syscall.EAGAIN:
				return false // wait in the poller for room in the send buffer
			default:
				errno = e
				return true
			}
		}
		return true
	})
	return done, c.opError("write", err, errno)
}

// opError builds the error net.TCPConn would return: a *net.OpError whose
// Err is the poller's error (deadline: os.ErrDeadlineExceeded, a net.Error
// with Timeout true; closed: net.ErrClosed) or the system call's
// (*os.SyscallError wrapping the errno).
func (c *rawIOConn) opError(op string, err error, errno syscall.Errno) error {
	if err == nil && errno == 0 {
		return nil
	}
	if err == nil {
		err = os.NewSyscallError(op, errno)
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}

// rawCall is read(2) or write(2) of b on fd without the runtime's
// system-call bookkeeping; only for non-blocking descriptors.
func rawCall(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
