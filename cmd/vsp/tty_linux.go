//go:build linux

package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// openTTY opens a tty as an application does, without making it the
// controlling terminal.
func openTTY(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
}

// makeRaw puts an application-side tty fd in raw mode, as a serial program
// would.
func makeRaw(f *os.File) error {
	sc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	cerr := sc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			ierr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	return errors.Join(cerr, ierr)
}
