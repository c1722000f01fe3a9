//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/rawio"
)

// go-min is a third yardstick, between relay-min and vsp-plain: the least a
// Go redirector costs. It is relay-min's job written the way a Go program
// does it (Go's poller and one goroutine per direction instead of one
// thread in a poll loop), in its own process like vsp, against the same
// echo server. So go-min / relay-min is what Go's runtime adds (netpoller
// wake-ups, goroutine scheduling), and vsp-plain / go-min what vsp's own
// code adds to that. The busy scenario has it too, as go-min-raw: one
// relay process carrying every port (busyGoMin).

// goRelayEnv, when set in vspbench's environment, makes it the go-min relay
// to the echo server at that address instead of the bench; goRelayRawEnv
// (any value) makes it the go-min-raw relay; goRelayPortsEnv (a number,
// default 1) makes it relay that many ports (the busy scenario's go-min).
const (
	goRelayEnv      = "VSPBENCH_GO_RELAY"
	goRelayRawEnv   = "VSPBENCH_GO_RELAY_RAW"
	goRelayPortsEnv = "VSPBENCH_GO_RELAY_PORTS"
)

// goRelay is the go-min relay process: for each port it opens a PTY,
// prints "tty PATH" on stdout and relays between the PTY master and a TCP
// connection of its own to addr until either side ends (the application
// closing the slave makes the master read EIO). It returns the exit code:
// 0 once every port ended, 1 at the first error.
func goRelay(addr string, stdout, stderr io.Writer) int {
	_, raw := os.LookupEnv(goRelayRawEnv)
	n := 1
	if v, ok := os.LookupEnv(goRelayPortsEnv); ok {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			fmt.Fprintf(stderr, "vspbench: go-min relay: %s=%q: want a number of ports ≥ 1\n", goRelayPortsEnv, v)
			return 2
		}
	}
	out := &syncWriter{w: stdout}
	ended := make(chan error, n)
	for range n {
		go func() { ended <- relayGo(addr, raw, out) }()
	}
	for range n {
		if err := <-ended; err != nil {
			fmt.Fprintln(stderr, "vspbench: go-min relay:", err)
			return 1
		}
	}
	return 0
}

// syncWriter serialises the relays' Writes (one "tty PATH" line each).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// startGoRelay starts the go-min relay process (vspbench itself,
// re-executed with goRelayEnv) for n ports to the echo server at addr,
// its stderr appended to logPath, and returns it with its n ttys once it
// printed them.
func startGoRelay(name, logPath, addr string, raw bool, n int) (*proc, []string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, fmt.Errorf("vspbench: %s: %w", name, err)
	}
	// The bench's environment without any relay setting of its own (a
	// stray VSPBENCH_GO_RELAY_RAW would make go-min raw), then the relay's.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, goRelayEnv) })
	env = append(env, goRelayEnv+"="+addr, goRelayPortsEnv+"="+strconv.Itoa(n))
	if raw {
		env = append(env, goRelayRawEnv+"=1")
	}
	p, err := startProcEnv(name, logPath, env, exe)
	if err != nil {
		return nil, nil, err
	}
	ttys, err := p.waitLines("tty ", n, 10*time.Second+time.Duration(n)*100*time.Millisecond)
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("%w (see %s)", err, logPath), p.stop())
	}
	return p, ttys, nil
}

// relayGo is goRelay; raw: both descriptors are read and written with
// vsp's internal/rawio (raw system calls, still waiting in Go's poller)
// instead of os.File's and net.Conn's Read and Write.
func relayGo(addr string, raw bool, stdout io.Writer) error {
	m, tty, err := openPTY()
	if err != nil {
		return err
	}
	// Non-blocking before os.NewFile, so the master goes into Go's poller
	// (a blocking descriptor would tie up an OS thread per Read instead).
	if err := unix.SetNonblock(m, true); err != nil {
		unix.Close(m)
		return err
	}
	master := os.NewFile(uintptr(m), "ptmx")
	defer master.Close()
	c, err := net.Dial("tcp", addr) // TCP_NODELAY is Go's default
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintln(stdout, "tty", tty); err != nil {
		return err
	}
	var pty io.ReadWriter = master
	if raw {
		rc, err := master.SyscallConn()
		if err != nil {
			return err
		}
		pty, c = rawFile{rawio.New(rc)}, rawio.Conn(c)
	}
	done := make(chan error, 2)
	go func() { done <- pump(c, pty) }()
	go func() { done <- pump(pty, c) }()
	// The first direction to end ends the relay (the deferred closes stop
	// the other one); EIO from the master and EOF from the socket are the
	// ordinary ends.
	if err := <-done; err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, unix.EIO) {
		return err
	}
	return nil
}

// pump is io.CopyBuffer with a 16 KiB buffer, minus its ReaderFrom and
// WriterTo shortcuts (which may splice): the Read then Write loop that a
// redirector runs.
func pump(dst io.Writer, src io.Reader) error {
	buf := make([]byte, 16<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

// rawFile is an *os.File's Read and Write through a rawio.IO.
type rawFile struct{ x *rawio.IO }

func (f rawFile) Read(b []byte) (int, error) {
	n, errno, err := f.x.Read(b)
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, errno
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (f rawFile) Write(b []byte) (int, error) {
	n, errno, err := f.x.Write(b)
	if err == nil && errno != 0 {
		err = errno
	}
	return n, err
}

// goMinPath runs the go-min relay (vspbench itself, re-executed with
// goRelayEnv) against a rawEcho; raw makes it go-min-raw.
type goMinPath struct {
	dir   string
	raw   bool
	echo  *rawEcho
	relay *proc
}

func (g *goMinPath) Name() string {
	if g.raw {
		return "go-min-raw"
	}
	return "go-min"
}

func (g *goMinPath) Describe() string {
	d := "yardstick, not a product: a minimal Go relay in its own process (vspbench re-executed), between a PTY master " +
		"(non-blocking, an *os.File in Go's poller) and a *net.TCPConn (TCP_NODELAY, no TLS), one goroutine per direction, " +
		"each a 16 KiB Read-then-Write loop, against relay-min's echo server. The least a Go redirector costs"
	if g.raw {
		d += "; both descriptors are read and written with raw system calls (vsp's internal/rawio, still waiting in Go's " +
			"poller), which spares the runtime's sysmon thread a wake-up per message, as vsp does"
	}
	return d
}

func (g *goMinPath) Start() (string, error) {
	echo, err := startRawEcho()
	if err != nil {
		return "", err
	}
	g.echo = echo
	relay, ttys, err := startGoRelay(g.Name(), filepath.Join(g.dir, g.Name()+".log"), echo.addr(), g.raw, 1)
	if err != nil {
		return "", err
	}
	g.relay = relay
	return ttys[0], nil
}

// Stop: the relay ends by itself once the application has closed the tty;
// if it never opened it, SIGTERM ends it.
func (g *goMinPath) Stop() error {
	var errs []error
	if g.relay != nil {
		errs = append(errs, g.relay.stop())
		g.relay = nil
	}
	if g.echo != nil {
		errs = append(errs, g.echo.stop())
		g.echo = nil
	}
	return errors.Join(errs...)
}
