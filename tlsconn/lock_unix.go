//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package tlsconn

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on path (created 0600), so
// concurrent bridges, in this or another process, do not lose each other's
// known-devices entries. Closing the file releases the lock.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	rc, err := f.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) { err = syscall.Flock(int(fd), syscall.LOCK_EX) })
		if err == nil {
			err = cerr
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}
