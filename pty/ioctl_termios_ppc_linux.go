//go:build linux && (ppc || ppc64 || ppc64le)

package pty

import "golang.org/x/sys/unix"

// On powerpc struct termios already carries c_ispeed/c_ospeed and there is
// no TCGETS2/TCSETS2.
const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
)
