//go:build linux

package service

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// reexecSignals are the signals that make the daemon re-execute its
// binary with the ports' ptys (an upgrade without a service manager).
func reexecSignals() []os.Signal { return []os.Signal{unix.SIGUSR2} }

func closeOnExec(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	return err
}

// inheritable duplicates f's fd without close-on-exec, for the next image.
func inheritable(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	var dup int
	var derr error
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD, 3) }); err != nil {
		return -1, err
	}
	return dup, derr
}

// execSelf replaces the process image with exe, keeping fds open and
// passing them in envInherited. It returns only on failure.
func execSelf(exe string, fds []inheritedFD) error {
	env := []string{envInherited + "=" + formatInherited(os.Getpid(), fds)}
	for _, kv := range os.Environ() {
		if len(kv) < len(envInherited)+1 || kv[:len(envInherited)+1] != envInherited+"=" {
			env = append(env, kv)
		}
	}
	if err := syscall.Exec(exe, os.Args, env); err != nil {
		return fmt.Errorf("service: re-execute %s: %w", exe, err)
	}
	return nil
}
