//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// appTTY is the application's side of a tty: an fd in raw mode,
// driven with plain read/write system calls (poll bounds every wait), so
// what is measured is the path and not Go's poller. The fd is
// non-blocking so that no wait can outlive its deadline.
type appTTY struct {
	fd   int
	path string
	once sync.Once
}

// openApp opens path as a serial application would (O_NOCTTY) and puts it
// in raw mode, VMIN=1 VTIME=0.
func openApp(path string) (*appTTY, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("vspbench: open %s: %w", path, err)
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == nil {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		err = unix.IoctlSetTermios(fd, unix.TCSETS, t)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vspbench: raw mode on %s: %w", path, err)
	}
	return &appTTY{fd: fd, path: path}, nil
}

func (a *appTTY) Close() error {
	var err error
	a.once.Do(func() { err = unix.Close(a.fd) })
	return err
}

// wait polls for ev until deadline.
func (a *appTTY) wait(ev int16, deadline time.Time) error {
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("vspbench: %s: %w", a.path, os.ErrDeadlineExceeded)
		}
		fds := []unix.PollFd{{Fd: int32(a.fd), Events: ev}}
		n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("vspbench: poll %s: %w", a.path, err)
		}
		if n > 0 {
			if fds[0].Revents&(unix.POLLERR|unix.POLLNVAL) != 0 {
				return fmt.Errorf("vspbench: %s: poll revents %#x", a.path, fds[0].Revents)
			}
			return nil
		}
	}
}

// writeAll writes p, waiting at most until deadline.
func (a *appTTY) writeAll(p []byte, deadline time.Time) error {
	for len(p) > 0 {
		n, err := unix.Write(a.fd, p)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			if err := a.wait(unix.POLLOUT, deadline); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("vspbench: write %s: %w", a.path, err)
		}
		p = p[n:]
		if len(p) > 0 && time.Now().After(deadline) {
			return fmt.Errorf("vspbench: write %s: %w", a.path, os.ErrDeadlineExceeded)
		}
	}
	return nil
}

// read reads at least one byte into p, waiting at most until deadline.
func (a *appTTY) read(p []byte, deadline time.Time) (int, error) {
	for {
		if err := a.wait(unix.POLLIN, deadline); err != nil {
			return 0, err
		}
		n, err := unix.Read(a.fd, p)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("vspbench: read %s: %w", a.path, err)
		}
		if n == 0 {
			return 0, fmt.Errorf("vspbench: read %s: end of file", a.path)
		}
		return n, nil
	}
}

// flushInput drops whatever is queued for the application.
func (a *appTTY) flushInput() {
	_ = unix.IoctlSetInt(a.fd, unix.TCFLSH, unix.TCIFLUSH)
}

// ping sends one byte and waits for the same byte to come back.
func (a *appTTY) ping(c byte, deadline time.Time) error {
	if err := a.writeAll([]byte{c}, deadline); err != nil {
		return err
	}
	var b [1]byte
	if _, err := a.read(b[:], deadline); err != nil {
		return err
	}
	if b[0] != c {
		return fmt.Errorf("vspbench: %s: sent %#02x, got %#02x back", a.path, c, b[0])
	}
	return nil
}

// waitEcho pings until the path echoes (the link may still be coming up;
// bytes written before that are queued by the redirector).
func (a *appTTY) waitEcho(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if err := a.ping(0x5a, deadline); err != nil {
		return fmt.Errorf("no echo within %v: %w", timeout, err)
	}
	// Drain anything late, then check once more.
	time.Sleep(20 * time.Millisecond)
	a.flushInput()
	return a.ping(0xa5, time.Now().Add(timeout))
}

// rtt runs n 1-byte ping-pongs and returns each round-trip time.
func (a *appTTY) rtt(n int, perPing time.Duration) ([]time.Duration, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	out := make([]time.Duration, 0, n)
	var b [1]byte
	for i := 0; i < n; i++ {
		c := byte(i*7 + 1)
		t0 := time.Now()
		deadline := t0.Add(perPing)
		if err := a.writeAll([]byte{c}, deadline); err != nil {
			return out, err
		}
		if _, err := a.read(b[:], deadline); err != nil {
			return out, fmt.Errorf("ping %d: %w", i, err)
		}
		d := time.Since(t0)
		if b[0] != c {
			return out, fmt.Errorf("vspbench: ping %d: sent %#02x, got %#02x", i, c, b[0])
		}
		out = append(out, d)
	}
	return out, nil
}

// pattern returns n deterministic pseudo-random bytes (every value 0-255
// occurs: raw mode must pass them all).
func pattern(n int, seed uint32) []byte {
	p := make([]byte, n)
	x := seed | 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		p[i] = byte(x >> 24)
	}
	return p
}

// stream writes data through the path while reading the echo back, checks
// every byte, and returns the time from the first write to the last byte
// read.
func (a *appTTY) stream(data []byte, chunk int, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	werr := make(chan error, 1)
	start := time.Now()
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for off := 0; off < len(data); off += chunk {
			if err := a.writeAll(data[off:min(off+chunk, len(data))], deadline); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	buf := make([]byte, 64<<10)
	got := 0
	for got < len(data) {
		n, err := a.read(buf[:min(len(buf), len(data)-got)], deadline)
		if err != nil {
			<-werr
			return 0, fmt.Errorf("after %d of %d bytes: %w", got, len(data), err)
		}
		for i := 0; i < n; i++ {
			if buf[i] != data[got+i] {
				<-werr
				return 0, fmt.Errorf("vspbench: byte %d: sent %#02x, got %#02x", got+i, data[got+i], buf[i])
			}
		}
		got += n
	}
	el := time.Since(start)
	if err := <-werr; err != nil {
		return 0, err
	}
	return el, nil
}
