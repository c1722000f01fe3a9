//go:build !linux

package tlsconn

import (
	"net"
	"syscall"
	"time"
)

// setUserTimeout is a no-op: TCP_USER_TIMEOUT is Linux-only; keep-alive
// still detects dead links elsewhere.
func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }

// sendQueue is not available here: callers get OK false and must assume
// the worst.
func sendQueue(syscall.RawConn) (SendQueue, error) { return SendQueue{}, nil }

// rawIO leaves c as it is (the raw system-call path is Linux-only).
func rawIO(c net.Conn) net.Conn { return c }
