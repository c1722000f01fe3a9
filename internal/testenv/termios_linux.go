package testenv

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Termios applies fn to the termios of the tty f (TCGETS2, fn, TCSETS2),
// the way an application changes its serial settings, and fails the test
// on error. It goes through SyscallConn, so f stays non-blocking and its
// deadlines keep working (f.Fd() would make it blocking).
func Termios(tb testing.TB, f *os.File, fn func(*unix.Termios)) {
	tb.Helper()
	sc, err := f.SyscallConn()
	if err != nil {
		tb.Fatal(err)
	}
	var ierr error
	if err := sc.Control(func(fd uintptr) {
		tio, err := unix.IoctlGetTermios(int(fd), unix.TCGETS2)
		if err != nil {
			ierr = err
			return
		}
		fn(tio)
		ierr = unix.IoctlSetTermios(int(fd), unix.TCSETS2, tio)
	}); err != nil {
		tb.Fatal(err)
	}
	if ierr != nil {
		tb.Fatalf("termios of %s: %v", f.Name(), ierr)
	}
}

// Raw is cfmakeraw for Termios: 8 bits, no echo, no line editing, no
// signals, no output processing, reads return each byte (VMIN 1).
func Raw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
}
