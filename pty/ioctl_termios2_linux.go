//go:build linux && !ppc && !ppc64 && !ppc64le

package pty

import "golang.org/x/sys/unix"

// termios2 ioctls: TCGETS2/TCSETS2 carry c_ispeed/c_ospeed, which is how
// custom BOTHER speeds are read and set.
const (
	ioctlGetTermios = unix.TCGETS2
	ioctlSetTermios = unix.TCSETS2
)
