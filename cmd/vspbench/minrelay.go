//go:build linux

package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The two paths in this file are yardsticks, not products. relay-min is the
// least any redirector between a PTY and a TCP connection can cost on this
// machine: one thread, one poll loop, no TLS, no buffering beyond one read,
// against an echo server that is one blocking read/write loop. vsp-plain is
// vsp on the same footing (no TLS, the same bare echo server), so
// vsp-plain / relay-min is what vsp itself adds on top of the kernel.

// rawEcho is a TCP echo server on 127.0.0.1: one OS thread, blocking
// accept, read and write system calls, TCP_NODELAY, one connection.
type rawEcho struct {
	lfd      int
	cfd      atomic.Int64 // the accepted connection, or -1
	stopping atomic.Bool
	port     int
	done     chan struct{}
}

func startRawEcho() (*rawEcho, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vspbench: echo server: %w", err)
	}
	sa := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(lfd, sa); err != nil {
		unix.Close(lfd)
		return nil, fmt.Errorf("vspbench: echo server: bind: %w", err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		unix.Close(lfd)
		return nil, fmt.Errorf("vspbench: echo server: listen: %w", err)
	}
	got, err := unix.Getsockname(lfd)
	if err != nil {
		unix.Close(lfd)
		return nil, fmt.Errorf("vspbench: echo server: %w", err)
	}
	e := &rawEcho{lfd: lfd, port: got.(*unix.SockaddrInet4).Port, done: make(chan struct{})}
	e.cfd.Store(-1)
	go func() {
		defer close(e.done)
		lockThread()
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			return // Stop shut the listener down
		}
		e.cfd.Store(int64(cfd))
		if e.stopping.Load() { // stop ran before the Store: it could not shut cfd down
			_ = unix.Shutdown(cfd, unix.SHUT_RDWR)
		}
		_ = unix.SetsockoptInt(cfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		echoLoop(cfd, make([]byte, 64<<10))
	}()
	return e, nil
}

func (e *rawEcho) addr() string { return fmt.Sprintf("127.0.0.1:%d", e.port) }

// stop ends the server: the listener and the connection are shut down,
// which wakes the thread wherever it blocks.
func (e *rawEcho) stop() error {
	e.stopping.Store(true)
	_ = unix.Shutdown(e.lfd, unix.SHUT_RDWR)
	if c := e.cfd.Load(); c >= 0 {
		_ = unix.Shutdown(int(c), unix.SHUT_RDWR)
	}
	var err error
	select {
	case <-e.done:
	case <-time.After(5 * time.Second):
		err = errors.New("vspbench: echo server thread did not end")
	}
	unix.Close(e.lfd)
	if c := e.cfd.Load(); c >= 0 {
		unix.Close(int(c))
	}
	return err
}

// relayMinPath: a PTY master and a TCP connection to a rawEcho, bridged by
// one OS thread in a poll(2) loop with nonblocking descriptors. Each
// direction holds at most one read (16 KiB) and stops reading while it
// cannot write, which is all the buffering a relay needs.
type relayMinPath struct {
	echo         *rawEcho
	master, sock int
	done         chan struct{}
}

func (r *relayMinPath) Name() string { return "relay-min" }

func (r *relayMinPath) Describe() string {
	return "yardstick, not a product: one OS thread in the bench process runs a poll(2) loop between a PTY master and a " +
		"plain TCP socket (nonblocking, 16 KiB per direction, no TLS), against an echo server that is one blocking " +
		"read/write loop on another thread. The least any PTY-to-TCP redirector plus echo costs on this machine"
}

func (r *relayMinPath) Start() (string, error) {
	r.master, r.sock = -1, -1
	echo, err := startRawEcho()
	if err != nil {
		return "", err
	}
	r.echo = echo
	m, tty, err := openPTY()
	if err != nil {
		return "", fmt.Errorf("vspbench: relay-min: %w", err)
	}
	r.master = m
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("vspbench: relay-min: %w", err)
	}
	r.sock = s
	if err := unix.Connect(s, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: echo.port}); err != nil {
		return "", fmt.Errorf("vspbench: relay-min: connect: %w", err)
	}
	_ = unix.SetsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	for _, fd := range []int{m, s} {
		if err := unix.SetNonblock(fd, true); err != nil {
			return "", fmt.Errorf("vspbench: relay-min: %w", err)
		}
	}
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		lockThread()
		relayLoop(m, s)
	}()
	return tty, nil
}

// relayLoop moves bytes between a (PTY master) and b (socket) until either
// side fails or ends; a is the side whose EIO means the application left.
func relayLoop(a, b int) {
	up, down := make([]byte, 16<<10), make([]byte, 16<<10)
	var toB, toA []byte // read but not yet written
	fds := make([]unix.PollFd, 2)
	for {
		fds[0] = unix.PollFd{Fd: int32(a)}
		fds[1] = unix.PollFd{Fd: int32(b)}
		if len(toB) == 0 {
			fds[0].Events |= unix.POLLIN
		} else {
			fds[1].Events |= unix.POLLOUT
		}
		if len(toA) == 0 {
			fds[1].Events |= unix.POLLIN
		} else {
			fds[0].Events |= unix.POLLOUT
		}
		if _, err := unix.Poll(fds, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		if (fds[0].Revents|fds[1].Revents)&unix.POLLNVAL != 0 {
			return // a descriptor was closed under the loop
		}
		var ok bool
		if toB, ok = move(a, b, up, toB, fds[0].Revents); !ok {
			return
		}
		if toA, ok = move(b, a, down, toA, fds[1].Revents); !ok {
			return
		}
	}
}

// move reads from src into buf when nothing is pending and src is ready,
// then writes what is pending to dst as far as dst takes it. It returns
// what is still pending, and false once src or dst failed or ended.
func move(src, dst int, buf, pending []byte, revents int16) ([]byte, bool) {
	if len(pending) > 0 && revents&(unix.POLLHUP|unix.POLLERR) != 0 {
		// src hung up while we are not reading it: poll would report
		// that at once, every time, until dst takes the pending bytes.
		return nil, false
	}
	if len(pending) == 0 && revents&(unix.POLLIN|unix.POLLHUP|unix.POLLERR) != 0 {
		n, err := unix.Read(src, buf)
		switch {
		case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			return nil, true
		case err != nil || n == 0:
			return nil, false
		}
		pending = buf[:n]
	}
	for len(pending) > 0 {
		n, err := unix.Write(dst, pending)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return pending, true
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return nil, false
		}
		pending = pending[n:]
	}
	return nil, true
}

// Stop ends the relay (shutting the socket down makes it read EOF), waits
// for its thread, then closes everything.
func (r *relayMinPath) Stop() error {
	var errs []error
	if r.sock >= 0 {
		// Wakes the loop even if the application never opened the slave.
		_ = unix.Shutdown(r.sock, unix.SHUT_RDWR)
	}
	if r.done != nil {
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			errs = append(errs, errors.New("vspbench: relay-min: relay did not end after the slave was closed"))
		}
		r.done = nil
	}
	if r.sock >= 0 {
		unix.Close(r.sock)
		r.sock = -1
	}
	if r.master >= 0 {
		unix.Close(r.master)
		r.master = -1
	}
	if r.echo != nil {
		errs = append(errs, r.echo.stop())
		r.echo = nil
	}
	return errors.Join(errs...)
}

// vspPlainPath is the vsp binary with TLS off against a rawEcho: vsp on the
// same footing as relay-min.
type vspPlainPath struct {
	dir  string
	bin  binaries
	echo *rawEcho
	port *proc
	n    int
}

func (v *vspPlainPath) Name() string { return "vsp-plain" }

func (v *vspPlainPath) Describe() string {
	return "`vsp run --device ADDR --link LINK --tls off` (built binary, own process) against relay-min's echo server " +
		"(no TLS): vsp on the same footing as relay-min"
}

func (v *vspPlainPath) Start() (string, error) {
	v.n++
	echo, err := startRawEcho()
	if err != nil {
		return "", err
	}
	v.echo = echo
	link := filepath.Join(v.dir, fmt.Sprintf("vsp-plain-tty%d", v.n))
	v.port, err = startProc("vsp", filepath.Join(v.dir, "vsp-plain.log"), v.bin.vsp, "run", "--device", echo.addr(),
		"--link", link, "--tls", "off", "--log-format", "text")
	if err != nil {
		return "", err
	}
	if err := waitFile(link, 10*time.Second); err != nil {
		return "", err
	}
	return link, nil
}

func (v *vspPlainPath) Stop() error {
	var errs []error
	if v.port != nil {
		errs = append(errs, v.port.stop())
		v.port = nil
	}
	if v.echo != nil {
		errs = append(errs, v.echo.stop())
		v.echo = nil
	}
	return errors.Join(errs...)
}
