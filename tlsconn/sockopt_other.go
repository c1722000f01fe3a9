//go:build !linux

package tlsconn

import (
	"syscall"
	"time"
)

// setUserTimeout is a no-op: TCP_USER_TIMEOUT is Linux-only; keep-alive
// still detects dead links elsewhere.
func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }

// sendQueue is not available here: callers get OK false and must assume
// the worst.
func sendQueue(syscall.RawConn) (SendQueue, error) { return SendQueue{}, nil }
