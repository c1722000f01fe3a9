//go:build linux

package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// The busy scenario's yardsticks (minrelay.go has the paths'): an echo
// server for many plain TCP connections, and relay-min for many ports: one
// OS thread, one epoll loop over every PTY-master-to-socket pair, each pair
// relayed by move as relayLoop does it. Like relay-min in the paths
// comparison it is the least a redirector between PTYs and TCP costs,
// without TLS; it is measured by the CPU of its one thread.

// epollLoop is one locked OS thread waiting in epoll_wait and handing
// every ready descriptor to a handler, until stop.
type epollLoop struct {
	ep, wake int // the epoll instance; an eventfd that stop writes
	tid      int // the thread's id, once run returned
	done     chan struct{}
}

func newEpollLoop() (*epollLoop, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("vspbench: epoll: %w", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return nil, fmt.Errorf("vspbench: eventfd: %w", err)
	}
	l := &epollLoop{ep: ep, wake: wake}
	if err := l.add(wake, unix.EPOLLIN); err != nil {
		l.closeFds()
		return nil, err
	}
	return l, nil
}

func (l *epollLoop) add(fd int, events uint32) error {
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("vspbench: epoll add: %w", err)
	}
	return nil
}

func (l *epollLoop) mod(fd int, events uint32) {
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)})
}

func (l *epollLoop) del(fd int) {
	_ = unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
}

// run starts the thread; handle is called on it for each ready descriptor
// with its events (EPOLLIN, EPOLLOUT, EPOLLHUP, EPOLLERR have the values
// of their poll(2) namesakes, so move takes them as they are). It returns
// once the thread runs, with its id known.
func (l *epollLoop) run(handle func(fd int, events uint32)) {
	l.done = make(chan struct{})
	started := make(chan struct{})
	go func() {
		defer close(l.done)
		lockThread()
		l.tid = unix.Gettid()
		close(started)
		evs := make([]unix.EpollEvent, 64)
		for {
			n, err := unix.EpollWait(l.ep, evs, -1)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			for _, ev := range evs[:n] {
				if int(ev.Fd) == l.wake {
					return
				}
				handle(int(ev.Fd), ev.Events)
			}
		}
	}()
	<-started
}

// stop ends the thread (if run started it) and closes the epoll instance;
// the descriptors handed to add are the caller's to close.
func (l *epollLoop) stop() error {
	var err error
	if l.done != nil {
		_, _ = unix.Write(l.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		select {
		case <-l.done:
		case <-time.After(5 * time.Second):
			err = errors.New("vspbench: epoll loop did not end")
		}
		l.done = nil
	}
	l.closeFds()
	return err
}

func (l *epollLoop) closeFds() {
	if l.ep >= 0 {
		unix.Close(l.ep)
		unix.Close(l.wake)
		l.ep, l.wake = -1, -1
	}
}

// threadCPU is the CPU time (user and system) thread tid of this process
// has used so far, in nanoseconds: its CPU-time clock (the kernel's
// sum_exec_runtime, which /proc/PID/task/TID/stat gives in 10 ms ticks).
func threadCPU(tid int) (time.Duration, error) {
	// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) of the kernel's
	// posix-timers.h: what pthread_getcpuclockid returns.
	clock := int32(^tid<<3 | 4 | 2)
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, fmt.Errorf("vspbench: CPU clock of thread %d: %w", tid, err)
	}
	return time.Duration(ts.Nano()), nil
}

// echoServer is a TCP echo server on 127.0.0.1 for any number of
// connections: nonblocking descriptors, TCP_NODELAY, one epoll loop on
// its own thread (each connection holds at most one read until it is
// written back).
type echoServer struct {
	loop  *epollLoop
	lfd   int
	port  int
	conns map[int]*echoConn // the loop thread's; stop's once it ended
}

type echoConn struct{ buf, pending []byte }

func startEchoServer() (*echoServer, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("vspbench: echo server: %w", err)
	}
	e := &echoServer{lfd: lfd, conns: map[int]*echoConn{}}
	fail := func(what string, err error) (*echoServer, error) {
		unix.Close(lfd)
		if e.loop != nil {
			_ = e.loop.stop()
		}
		return nil, fmt.Errorf("vspbench: echo server: %s: %w", what, err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(lfd, unix.SOMAXCONN); err != nil {
		return fail("listen", err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return fail("getsockname", err)
	}
	e.port = sa.(*unix.SockaddrInet4).Port
	if e.loop, err = newEpollLoop(); err != nil {
		return fail("epoll", err)
	}
	if err := e.loop.add(lfd, unix.EPOLLIN); err != nil {
		return fail("epoll", err)
	}
	e.loop.run(e.handle)
	return e, nil
}

func (e *echoServer) addr() string { return fmt.Sprintf("127.0.0.1:%d", e.port) }

func (e *echoServer) handle(fd int, events uint32) {
	if fd == e.lfd {
		for {
			c, _, err := unix.Accept4(e.lfd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			if err != nil {
				return // EAGAIN: none left
			}
			_ = unix.SetsockoptInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
			if e.loop.add(c, unix.EPOLLIN) != nil {
				unix.Close(c)
				continue
			}
			e.conns[c] = &echoConn{buf: make([]byte, 16<<10)}
		}
	}
	c := e.conns[fd]
	if c == nil {
		return
	}
	had := len(c.pending) > 0
	var ok bool
	if c.pending, ok = move(fd, fd, c.buf, c.pending, int16(events)); !ok {
		e.loop.del(fd)
		unix.Close(fd)
		delete(e.conns, fd)
		return
	}
	switch has := len(c.pending) > 0; {
	case has && !had:
		e.loop.mod(fd, unix.EPOLLOUT) // read no more until it is written back
	case !has && had:
		e.loop.mod(fd, unix.EPOLLIN)
	}
}

// stop ends the loop and closes the listener and every connection.
func (e *echoServer) stop() error {
	err := e.loop.stop()
	unix.Close(e.lfd)
	for fd := range e.conns {
		unix.Close(fd)
	}
	e.conns = nil
	return err
}

// relayMinBusy is relay-min for n ports: n PTY masters, each bridged to its
// own TCP connection (to an echoServer) by one epoll loop on one thread.
type relayMinBusy struct {
	loop  *epollLoop
	pairs map[int]*relayPair // by both descriptors
	ttys  []string           // the slaves, for the application
}

// relayPair is one port: what was read from each side and not yet
// written to the other, and the events each descriptor waits for.
type relayPair struct {
	master, sock     int
	up, down         []byte
	toSock, toMaster []byte
	masterEv, sockEv uint32
	ended            bool
}

// startRelayMinBusy opens n PTYs, connects each to 127.0.0.1:port and
// starts the loop.
func startRelayMinBusy(n, port int) (r *relayMinBusy, err error) {
	r = &relayMinBusy{pairs: map[int]*relayPair{}}
	defer func() {
		if err != nil {
			err = errors.Join(fmt.Errorf("vspbench: relay-min: %w", err), r.stop())
			r = nil
		}
	}()
	if r.loop, err = newEpollLoop(); err != nil {
		return r, err
	}
	for range n {
		p := &relayPair{master: -1, sock: -1, up: make([]byte, 16<<10), down: make([]byte, 16<<10)}
		m, tty, err := openPTY()
		if err != nil {
			return r, err
		}
		p.master = m
		r.pairs[m] = p
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return r, err
		}
		p.sock = s
		r.pairs[s] = p
		if err := unix.Connect(s, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
			return r, fmt.Errorf("connect: %w", err)
		}
		_ = unix.SetsockoptInt(s, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		for _, fd := range []int{m, s} {
			if err := unix.SetNonblock(fd, true); err != nil {
				return r, err
			}
			if err := r.loop.add(fd, unix.EPOLLIN); err != nil {
				return r, err
			}
		}
		p.masterEv, p.sockEv = unix.EPOLLIN, unix.EPOLLIN
		r.ttys = append(r.ttys, tty)
	}
	r.loop.run(r.handle)
	return r, nil
}

// handle moves what fd's events allow in the direction it is the source
// of, then writes what the other direction holds (fd may have become
// writable), and sets both descriptors' interest as relayLoop does: read
// a side only while nothing from it is pending, wait to write a side only
// while something for it is.
func (r *relayMinBusy) handle(fd int, events uint32) {
	p := r.pairs[fd]
	if p == nil || p.ended {
		return
	}
	var ok1, ok2 bool
	if fd == p.master {
		p.toSock, ok1 = move(p.master, p.sock, p.up, p.toSock, int16(events))
		p.toMaster, ok2 = move(p.sock, p.master, p.down, p.toMaster, 0)
	} else {
		p.toMaster, ok1 = move(p.sock, p.master, p.down, p.toMaster, int16(events))
		p.toSock, ok2 = move(p.master, p.sock, p.up, p.toSock, 0)
	}
	if !ok1 || !ok2 {
		// The application closed the slave, or the echo server went.
		p.ended = true
		r.loop.del(p.master)
		r.loop.del(p.sock)
		return
	}
	interest := func(readable, writable bool) uint32 {
		var ev uint32
		if readable {
			ev |= unix.EPOLLIN
		}
		if writable {
			ev |= unix.EPOLLOUT
		}
		return ev
	}
	if ev := interest(len(p.toSock) == 0, len(p.toMaster) > 0); ev != p.masterEv {
		p.masterEv = ev
		r.loop.mod(p.master, ev)
	}
	if ev := interest(len(p.toMaster) == 0, len(p.toSock) > 0); ev != p.sockEv {
		p.sockEv = ev
		r.loop.mod(p.sock, ev)
	}
}

// stop ends the loop and closes every descriptor.
func (r *relayMinBusy) stop() error {
	var err error
	if r.loop != nil {
		err = r.loop.stop()
	}
	for fd := range r.pairs {
		unix.Close(fd)
	}
	r.pairs = nil
	return err
}
