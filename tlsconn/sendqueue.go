package tlsconn

import (
	"fmt"
	"net"
	"syscall"
	"time"
)

// SendQueue is what the kernel knows about data written to a TCP link that
// the peer has not confirmed: the raw material for counting bytes that were
// "possibly lost" when a link dies.
type SendQueue struct {
	// Unacked is the number of bytes written to the socket (TLS records
	// included) that the peer's TCP has not acknowledged.
	Unacked int
	// SinceAck is how long ago the peer last acknowledged anything.
	SinceAck time.Duration
	// OK is false when the platform cannot tell (then assume the worst).
	OK bool
}

// QueueOf reads the send queue of conn, a TCP connection or a TLS
// connection over one. Call it before closing conn. Other kinds of
// connections give a zero SendQueue (OK false) and no error.
func QueueOf(conn net.Conn) (SendQueue, error) {
	for {
		nc, ok := conn.(interface{ NetConn() net.Conn })
		if !ok {
			break
		}
		conn = nc.NetConn()
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return SendQueue{}, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return SendQueue{}, fmt.Errorf("tlsconn: send queue: %w", err)
	}
	q, err := sendQueue(rc)
	if err != nil {
		return SendQueue{}, fmt.Errorf("tlsconn: send queue: %w", err)
	}
	return q, nil
}
