package pty

import (
	"errors"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// ReadReady is Read without waiting: it returns what the application has
// written and the master holds right now, or 0 and no error at once when
// there is nothing (or when the next byte is a packet-mode status byte,
// which it turns into events as Read does). After a Read that returned a
// full master buffer (4 KiB), the bridge takes what else is there with it,
// to send it in one TLS record of up to 16 KiB instead of four, without
// ever waiting for more (docs/performance.md, change 8). While a settings
// or flush handler call is pending it returns 0: Read places the call among
// the bytes. Errors are those of Read; the next Read reports them again.
func (p *Port) ReadReady(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	if p.woken.Load() {
		p.unwake() // a late wake-up (wakeRead) of a Read that has returned
	}
	buf := b
	if len(b) == 1 {
		buf = p.small[:]
	}
	if p.beginRead() { // counted as Read counts (order_linux.go)
		p.endRead(0)
		return 0, nil // a handler call is due: the next Read places it among the bytes
	}
	n, errno, err := p.m.TryRead(buf)
	p.endRead(dataBytes(buf, n))
	switch {
	case err != nil && p.woken.Load() && errors.Is(err, os.ErrDeadlineExceeded):
		return 0, nil // woken meanwhile: the next Read looks at what is pending
	case errno == syscall.EAGAIN:
		return 0, nil
	case err != nil || errno != 0:
		return 0, p.ioErr("read", err, errno)
	case n == 0:
		return 0, io.EOF
	case buf[0] != unix.TIOCPKT_DATA:
		p.handlePacket(buf[0])
		return 0, nil
	}
	return copy(b, buf[1:n]), nil
}
