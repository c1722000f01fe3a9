//go:build linux

package tlsconn

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setUserTimeout sets TCP_USER_TIMEOUT: the longest time written data may
// stay unacknowledged before the kernel drops the connection.
func setUserTimeout(rc syscall.RawConn, d time.Duration) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(d/time.Millisecond))
	})
	if err != nil {
		return err
	}
	return serr
}

// sendQueue reports the bytes written to a TCP socket that its peer has not
// acknowledged yet (SIOCOUTQ: unsent plus unacknowledged) and how long ago
// the last acknowledgement arrived (TCP_INFO tcpi_last_ack_recv).
func sendQueue(rc syscall.RawConn) (SendQueue, error) {
	var q SendQueue
	var serr error
	err := rc.Control(func(fd uintptr) {
		n, err := unix.IoctlGetInt(int(fd), unix.SIOCOUTQ)
		if err != nil {
			serr = err
			return
		}
		q.Unacked = n
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			serr = err
			return
		}
		q.SinceAck = time.Duration(info.Last_ack_recv) * time.Millisecond
		q.OK = true
	})
	if err != nil {
		return q, err
	}
	return q, serr
}
