//go:build linux

package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// barrier sends BARRIER=1 with a pipe's write end and waits for the
// manager to close it.
func (n *Notifier) barrier(timeout time.Duration) error {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("sdnotify: barrier: %w", err)
	}
	defer unix.Close(p[0])
	// The manager closes its copy of the write end once it has got here.
	err := n.sendFDs("BARRIER=1", []int{p[1]})
	_ = unix.Close(p[1])
	if err != nil {
		return err
	}
	fds := []unix.PollFd{{Fd: int32(p[0])}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("sdnotify: barrier: no answer within %v", timeout)
		}
		nr, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sdnotify: barrier: %w", err)
		}
		if nr > 0 && fds[0].Revents&unix.POLLHUP != 0 {
			return nil
		}
	}
}

// sendFiles sends state with duplicates of files attached.
func (n *Notifier) sendFiles(state string, files []*os.File) error {
	fds := make([]int, 0, len(files))
	defer func() {
		for _, fd := range fds {
			_ = unix.Close(fd)
		}
	}()
	for _, f := range files {
		// Duplicate through SyscallConn: f.Fd() would put a non-blocking
		// file back into blocking mode.
		rc, err := f.SyscallConn()
		if err != nil {
			return fmt.Errorf("sdnotify: %s: %w", f.Name(), err)
		}
		var dup int
		var derr error
		if err := rc.Control(func(fd uintptr) {
			dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
		}); err != nil {
			return fmt.Errorf("sdnotify: %s: %w", f.Name(), err)
		}
		if derr != nil {
			return fmt.Errorf("sdnotify: dup %s: %w", f.Name(), derr)
		}
		fds = append(fds, dup)
	}
	return n.sendFDs(state, fds)
}

// sendFDs sends state with fds attached as SCM_RIGHTS. go-systemd's
// SdNotify sends text only, and the file-descriptor store needs the files
// themselves, so this one datagram is written by hand (net's UnixConn
// refuses ancillary data on a connected datagram socket, hence the raw
// socket). x/sys/unix turns a socket name starting with '@' into the
// abstract namespace, as systemd means it.
func (n *Notifier) sendFDs(state string, fds []int) error {
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sdnotify: socket: %w", err)
	}
	defer unix.Close(s)
	if err := unix.Sendmsg(s, []byte(state), unix.UnixRights(fds...), &unix.SockaddrUnix{Name: n.socket}, 0); err != nil {
		return fmt.Errorf("sdnotify: send %q to %s: %w", firstLine(state), n.socket, err)
	}
	return nil
}
