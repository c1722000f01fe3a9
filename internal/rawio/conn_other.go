//go:build !linux

package rawio

import "net"

// Conn returns c as it is: the raw system-call path is Linux-only.
func Conn(c net.Conn) net.Conn { return c }
