package rawio

import (
	"sync"
	"syscall"
	"unsafe"
)

// IO reads and writes one descriptor through its syscall.RawConn. Reads are
// serialised with each other and writes with each other; a read and a write
// may run at the same time. Its methods do not allocate.
type IO struct {
	rc syscall.RawConn

	rmu    sync.Mutex
	rb     []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	wmu     sync.Mutex
	wb      []byte
	wn      int
	werr    syscall.Errno
	writeFn func(fd uintptr) bool
}

// New returns an IO on rc, which must belong to a non-blocking descriptor
// registered with Go's poller (os.NewFile of a non-blocking fd, or a
// net.Conn's SyscallConn): the raw calls must never block.
func New(rc syscall.RawConn) *IO {
	x := &IO{rc: rc}
	// Built once: a closure passed to RawConn.Read escapes, so a fresh
	// one per call would allocate on every message.
	x.readFn = x.read
	x.writeFn = x.write
	return x
}

// Read is one read(2) into b, waiting in the poller while there is nothing
// to read. It returns the poller's error unchanged (deadline:
// os.ErrDeadlineExceeded; closed descriptor) or the system call's errno.
// n == 0 with neither means end of file.
func (x *IO) Read(b []byte) (n int, errno syscall.Errno, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	x.rmu.Lock()
	defer x.rmu.Unlock()
	x.rb, x.rn, x.rerr = b, 0, 0
	err = x.rc.Read(x.readFn)
	n, errno = x.rn, x.rerr
	x.rb = nil
	return n, errno, err
}

func (x *IO) read(fd uintptr) bool {
	for {
		n, e := call(syscall.SYS_READ, fd, x.rb)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until readable
		}
		x.rn, x.rerr = n, e
		return true
	}
}

// Write writes all of b, waiting in the poller whenever the descriptor
// takes no more. It returns how much was written and the poller's error
// (deadline, closed) or the errno of the write that failed.
func (x *IO) Write(b []byte) (n int, errno syscall.Errno, err error) {
	if len(b) == 0 {
		return 0, 0, nil
	}
	x.wmu.Lock()
	defer x.wmu.Unlock()
	x.wb, x.wn, x.werr = b, 0, 0
	err = x.rc.Write(x.writeFn)
	n, errno = x.wn, x.werr
	x.wb = nil
	return n, errno, err
}

func (x *IO) write(fd uintptr) bool {
	for x.wn < len(x.wb) {
		n, e := call(syscall.SYS_WRITE, fd, x.wb[x.wn:])
		switch e {
		case 0:
			x.wn += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			x.werr = e
			return true
		}
	}
	return true
}

// call is read(2) or write(2) of b on fd without the runtime's system-call
// bookkeeping (syscall.RawSyscall): only for calls that cannot block.
func call(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	if raceEnabled {
		return raceCall(trap, fd, b)
	}
	n, _, e := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// raceCall is call through syscall.Read and syscall.Write, which tell the
// race detector that a write happens before the read that gets its bytes;
// RawSyscall does not, so race-enabled test binaries would report races
// that are not there.
func raceCall(trap, fd uintptr, b []byte) (int, syscall.Errno) {
	var n int
	var err error
	if trap == syscall.SYS_READ {
		n, err = syscall.Read(int(fd), b)
	} else {
		n, err = syscall.Write(int(fd), b)
	}
	if err != nil {
		e, _ := err.(syscall.Errno)
		return 0, e
	}
	return n, 0
}

// ReadFD is one read(2) of the non-blocking descriptor fd into b (not
// empty) without the runtime's system-call bookkeeping, for a descriptor
// kept out of Go's poller that its owner waits for otherwise.
func ReadFD(fd int, b []byte) (int, syscall.Errno) { return call(syscall.SYS_READ, uintptr(fd), b) }

// WriteFD is ReadFD's write(2).
func WriteFD(fd int, b []byte) (int, syscall.Errno) { return call(syscall.SYS_WRITE, uintptr(fd), b) }
