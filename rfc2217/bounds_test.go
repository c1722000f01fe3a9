package rfc2217

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"
)

// TestControlQueueBounded: a peer that sends option requests (each one
// answered) and never reads what it is sent cannot grow the queue of Telnet
// commands past maxControlQueue: the session ends with ErrControlOverflow.
func TestControlQueueBounded(t *testing.T) {
	peer, conn := tcpPair(t)
	// Socket buffers as the kernel sizes them: set by hand below a few
	// segments, loopback TCP drops segments and recovers by
	// retransmission timeouts that back off (1.6 s and growing after
	// three), which stalled the flood itself in about one run in 20.
	srv, err := NewServer(conn, newPortHandler(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, srv)
		done <- err
	}()
	go func() {
		// WILL of an option the server does not want: each is
		// answered DONT, which the peer never reads.
		flood := bytes.Repeat([]byte{IAC, WILL, 99}, 4096)
		for {
			if _, err := peer.Write(flood); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrControlOverflow) {
			t.Fatalf("session ended with %v, want ErrControlOverflow", err)
		}
		t.Log(err)
	case <-time.After(20 * time.Second):
		t.Fatal("a peer that never reads its replies kept the session up for 20 s")
	}
}
