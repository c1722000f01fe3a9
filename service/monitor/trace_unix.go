//go:build unix

package monitor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// OpenTraceFile opens path for appending, creating it with mode 0600
// (serial data can be sensitive). It never follows a symlink that is not
// the user's: a symlink owned by anyone else at path is refused, and the
// file opened must be a regular file owned by the user (a swapped link
// cannot make vsp write into somebody else's file). An existing file
// readable by others is narrowed to 0600.
func OpenTraceFile(path string) (*os.File, error) {
	euid := os.Geteuid()
	flags := os.O_WRONLY | os.O_CREATE | os.O_APPEND | syscall.O_NOCTTY | syscall.O_NONBLOCK
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if uid := ownerOf(fi); uid != euid {
			return nil, fmt.Errorf("monitor: trace %s: a symlink owned by uid %d, not by this user (uid %d): refused", path, uid, euid)
		}
	} else {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("monitor: trace %s: a symlink appeared there: refused", path)
		}
		return nil, fmt.Errorf("monitor: trace: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("monitor: trace %s: %w", path, err)
	}
	switch {
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, fmt.Errorf("monitor: trace %s: not a regular file", path)
	case ownerOf(fi) != euid:
		f.Close()
		return nil, fmt.Errorf("monitor: trace %s: owned by uid %d, not by this user (uid %d): refused", path, ownerOf(fi), euid)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return nil, fmt.Errorf("monitor: trace %s: %w", path, err)
		}
	}
	if err := syscall.SetNonblock(int(f.Fd()), false); err != nil { // O_NONBLOCK only kept a FIFO from blocking the open
		f.Close()
		return nil, fmt.Errorf("monitor: trace %s: %w", path, err)
	}
	return f, nil
}

func ownerOf(fi fs.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
