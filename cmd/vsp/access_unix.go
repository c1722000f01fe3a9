//go:build unix

package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// socketAccessible reports whether path is a Unix socket this user may
// connect to (write permission).
func socketAccessible(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&os.ModeSocket != 0 && unix.Access(path, unix.W_OK) == nil
}

// socketGroup returns the group that owns the socket at path.
func socketGroup(path string) (gid int, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Gid), true
}
