package rawio

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
)

// conn is a TCP connection whose Read and Write go through an IO: raw
// read(2) and write(2) on the non-blocking socket, waiting in Go's poller
// while it is not ready. Everything else (deadlines, keep-alive,
// SyscallConn, CloseWrite, Close) is the *net.TCPConn's. It saves the runtime's sysmon thread a wake-up per
// message (docs/performance.md, change 5).
type conn struct {
	*net.TCPConn
	io *IO
}

// Conn returns c with raw-system-call Read and Write when it is a
// *net.TCPConn, and c itself otherwise. The result is not a *net.TCPConn;
// it implements syscall.Conn and CloseWrite, and its errors have the
// types net.TCPConn's have (*net.OpError wrapping os.ErrDeadlineExceeded,
// net.ErrClosed or an *os.SyscallError).
func Conn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &conn{TCPConn: tc, io: New(rc)}
}

func (c *conn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, errno, err := c.io.Read(b)
	if err == nil && errno == 0 && n == 0 {
		return 0, io.EOF
	}
	return n, c.opError("read", err, errno)
}

func (c *conn) Write(b []byte) (int, error) {
	n, errno, err := c.io.Write(b)
	return n, c.opError("write", err, errno)
}

// opError builds the error net.TCPConn would return: a *net.OpError whose
// Err is the poller's error (deadline: os.ErrDeadlineExceeded, a net.Error
// with Timeout true; closed: net.ErrClosed) or the system call's
// (*os.SyscallError wrapping the errno).
func (c *conn) opError(op string, err error, errno syscall.Errno) error {
	if err == nil && errno == 0 {
		return nil
	}
	var inner *net.OpError
	switch {
	case err == nil:
		err = os.NewSyscallError(op, errno)
	case errors.As(err, &inner):
		// RawConn already wrapped the poller's error as a "raw-read" or
		// "raw-write" OpError; keep only what it wraps.
		err = inner.Err
	}
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
