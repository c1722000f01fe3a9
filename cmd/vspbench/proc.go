//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process whose stdout lines are collected and whose
// stderr goes to a log file.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
}

// startProc starts a program; its stderr is appended to logPath.
func startProc(name, logPath string, argv ...string) (*proc, error) {
	return startProcEnv(name, logPath, nil, argv...)
}

// startProcEnv is startProc with the environment env (nil: the bench's).
func startProcEnv(name, logPath string, env []string, argv ...string) (*proc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("vspbench: %w", err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("vspbench: %w", err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("vspbench: start %s: %w", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.cond.Broadcast()
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, out)
		p.err = cmd.Wait()
		logf.Close()
		p.mu.Lock()
		close(p.done)
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLines waits until the process printed n lines starting with prefix
// and returns their remainders.
func (p *proc) waitLines(prefix string, n int, timeout time.Duration) ([]string, error) {
	t := time.AfterFunc(timeout, func() { p.mu.Lock(); p.cond.Broadcast(); p.mu.Unlock() })
	defer t.Stop()
	deadline := time.Now().Add(timeout)
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		var got []string
		for _, l := range p.lines {
			if v, ok := strings.CutPrefix(l, prefix); ok {
				got = append(got, strings.TrimSpace(v))
			}
		}
		if len(got) >= n {
			return got[:n], nil
		}
		if p.exited() {
			return nil, fmt.Errorf("vspbench: %s exited (%v) after %d of %d %q lines", p.name, p.err, len(got), n, prefix)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("vspbench: %s: %d of %d %q lines within %v", p.name, len(got), n, prefix, timeout)
		}
		p.cond.Wait()
	}
}

// stop sends SIGTERM to the process group and waits, then SIGKILL.
func (p *proc) stop() error {
	if p.exited() {
		return nil
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("vspbench: %s did not stop on SIGTERM within 10 s", p.name)
}

// end stops a third-party process that need not exit cleanly: SIGTERM,
// then SIGKILL after grace. (A socat server has been seen to ignore SIGTERM
// while its peer was gone.)
func (p *proc) end(grace time.Duration) {
	if p.exited() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
}

// binaries are the built vsp and ezsim programs.
type binaries struct{ vsp, ezsim string }

// buildBinaries compiles ./cmd/vsp and ./cmd/ezsim into dir.
func buildBinaries(ctx context.Context, dir string) (binaries, error) {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/vsp", "./cmd/ezsim")
	cmd.Dir = moduleRoot()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return binaries{}, fmt.Errorf("vspbench: go build: %w\n%s", err, out.String())
	}
	return binaries{vsp: filepath.Join(dir, "vsp"), ezsim: filepath.Join(dir, "ezsim")}, nil
}

// moduleRoot is the directory of go.mod ("." when it cannot be found).
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || len(bytes.TrimSpace(out)) == 0 || string(bytes.TrimSpace(out)) == os.DevNull {
		return "."
	}
	return filepath.Dir(string(bytes.TrimSpace(out)))
}

// waitFile waits until path exists.
func waitFile(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vspbench: %s did not appear within %v", path, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// listening reports whether something listens on 127.0.0.1:port (from
// /proc/net/tcp, so without connecting to it).
func listening(port int) bool {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false
	}
	want := fmt.Sprintf(":%04X", port)
	for _, l := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(l)
		if len(f) > 3 && strings.HasSuffix(f[1], want) && f[3] == "0A" {
			return true
		}
	}
	return false
}

// freePort returns a TCP port nobody listens on right now.
func freePort() (int, error) {
	for i := 0; i < 100; i++ {
		// The ephemeral range is avoided so a redial cannot take it.
		port := 20000 + int(time.Now().UnixNano()/1000%10000) + i*7
		if !listening(port) {
			return port, nil
		}
	}
	return 0, errors.New("vspbench: no free TCP port")
}

// procStat is what /proc/PID/stat and /proc/PID/task/*/status say about a
// process's CPU use and wake-ups.
type procStat struct {
	at       time.Time
	cpuTicks uint64 // utime + stime
	sysTicks uint64 // stime: the part spent in the kernel
	switches uint64 // voluntary + involuntary context switches, all threads
	rssKB    int64
	threads  int
}

func readProcStat(pid int) (procStat, error) {
	return readStat(fmt.Sprintf("/proc/%d", pid), "task/*/status")
}

// readThreadStat is readProcStat for one thread of this process (rssKB
// and threads are still the whole process's).
func readThreadStat(tid int) (procStat, error) {
	return readStat(fmt.Sprintf("/proc/self/task/%d", tid), "status")
}

// readStat reads dir/stat and dir/status, and sums the context switches
// of the status files that statuses matches under dir.
func readStat(dir, statuses string) (procStat, error) {
	s := procStat{at: time.Now()}
	data, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, fmt.Errorf("vspbench: %w", err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 (1-based) of the whole line.
	rest := string(data[bytes.LastIndexByte(data, ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return s, fmt.Errorf("vspbench: short %s/stat", dir)
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	s.cpuTicks, s.sysTicks = ut+st, st
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, fmt.Errorf("vspbench: %w", err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			s.rssKB, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			s.threads, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	tasks, _ := filepath.Glob(filepath.Join(dir, statuses))
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				s.switches += n
			}
			if v, ok := strings.CutPrefix(l, "nonvoluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				s.switches += n
			}
		}
	}
	return s, nil
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times (100 on every
// Linux ABI Go supports).
const clockTick = 100

// cpuShare is the fraction of one core used between a and b.
func cpuShare(a, b procStat) float64 {
	el := b.at.Sub(a.at).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(b.cpuTicks-a.cpuTicks) / clockTick / el
}
