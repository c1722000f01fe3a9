//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

var bins testenv.Builder

// proc is a running binary whose output lines the test can wait for.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd

	mu    sync.Mutex
	lines []string
	grow  chan struct{}
	done  chan struct{}
}

func startProc(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	p := runProc(t, name, exec.Command(bins.Build(t, name), args...))
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output())
		}
	})
	return p
}

// runProc starts cmd in its own process group and collects its output
// lines; the caller registers how to stop it.
func runProc(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{t: t, name: name, cmd: cmd, grow: make(chan struct{}), done: make(chan struct{})}
	pr, pw := io.Pipe()
	p.cmd.Stdout = pw
	p.cmd.Stderr = pw
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			close(p.grow)
			p.grow = make(chan struct{})
			p.mu.Unlock()
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		<-scanned // every line is in p.lines before done says the process ended
		close(p.done)
	}()
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// waitLine waits for an output line containing substr, starting the search
// at line index from, and returns the line and its index.
func (p *proc) waitLine(substr string, from int, timeout time.Duration) (string, int) {
	p.t.Helper()
	deadline := time.After(timeout)
	exited := false
	for {
		p.mu.Lock()
		for i := from; i < len(p.lines); i++ {
			if strings.Contains(p.lines[i], substr) {
				l := p.lines[i]
				p.mu.Unlock()
				return l, i
			}
		}
		grow := p.grow
		p.mu.Unlock()
		if exited { // the lines were complete when done closed, and were searched
			p.t.Fatalf("%s exited while waiting for %q:\n%s", p.name, substr, p.output())
		}
		select {
		case <-grow:
		case <-p.done:
			exited = true // search the last lines once more
		case <-deadline:
			p.t.Fatalf("%s: no line with %q after %v:\n%s", p.name, substr, timeout, p.output())
		}
	}
}

func (p *proc) lineCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// stop interrupts the process and waits for it; it reports the exit error.
func (p *proc) stop() error {
	select {
	case <-p.done:
		if !p.cmd.ProcessState.Success() {
			return fmt.Errorf("%s: %s", p.name, p.cmd.ProcessState)
		}
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return fmt.Errorf("%s did not stop on SIGINT within 10s", p.name)
	}
	if !p.cmd.ProcessState.Success() {
		return fmt.Errorf("%s: %s", p.name, p.cmd.ProcessState)
	}
	return nil
}

// ezsim is a simulator process with its announced address and fingerprint.
type ezsim struct {
	*proc
	addr, fingerprint string
}

func startEzsim(t testing.TB, args ...string) *ezsim {
	t.Helper()
	p := startProc(t, "ezsim", args...)
	l, _ := p.waitLine("listen: ", 0, 30*time.Second)
	s := &ezsim{proc: p, addr: strings.TrimSpace(strings.TrimPrefix(l, "listen: "))}
	if strings.Contains(strings.Join(args, " "), "--ssl") {
		l, _ := p.waitLine("fingerprint: ", 0, 30*time.Second)
		s.fingerprint = strings.TrimSpace(strings.TrimPrefix(l, "fingerprint: "))
	}
	return s
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr(t testing.TB) string { return freeAddrs(t, 1)[0] }

// freeAddrs returns n such addresses, all different: each port is held
// until all are chosen (the kernel may hand a port just closed out again).
func freeAddrs(t testing.TB, n int) []string {
	t.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs[i] = l.Addr().String()
	}
	return addrs
}

// startVsp runs `vsp run` for one port and waits until its link is up.
func startVsp(t testing.TB, link string, args ...string) *proc {
	t.Helper()
	p := startProc(t, "vsp", append([]string{"run", "--log-format", "json", "--link", link}, args...)...)
	p.waitLine(`"link up"`, 0, 20*time.Second)
	return p
}

// openApp opens a port as an application does, in raw mode.
func openApp(t testing.TB, link string) *os.File {
	t.Helper()
	f, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open %s: %v", link, err)
	}
	t.Cleanup(func() { f.Close() })
	if err := makeRaw(f); err != nil {
		t.Fatal(err)
	}
	return f
}

func tempLink(t testing.TB) string {
	return filepath.Join(t.TempDir(), "ttyVSP0")
}

// pattern returns n bytes of a pattern in which every byte value appears.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed + byte(i>>8)
	}
	return b
}

// readFull reads exactly len(want) bytes within timeout and compares them.
func expectRead(t testing.TB, r *os.File, want []byte, timeout time.Duration) {
	t.Helper()
	_ = r.SetReadDeadline(time.Now().Add(timeout))
	defer r.SetReadDeadline(time.Time{})
	got := make([]byte, len(want))
	n, err := io.ReadFull(r, got)
	if err != nil {
		t.Fatalf("read %d of %d bytes: %v", n, len(want), err)
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("byte %d: got %#x, want %#x (of %d)", i, got[i], want[i], len(want))
	}
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return len(a)
}
