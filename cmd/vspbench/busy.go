//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// busySide is what the busy scenario measured on one redirector.
type busySide struct {
	name  string
	procs int           // processes measured; 0: one thread of the bench process
	cpu   time.Duration // their CPU over the window
	rssKB int64         // their RSS summed, at the end of the window; -1: not meaningful (a thread)
	pssKB int64         // their proportional set size summed (shared pages split among the sharers); -1 as rssKB
	// The kernel's part of the CPU (stime / (utime+stime), in clock
	// ticks) and the context switches (voluntary and not, every thread).
	sysShare float64
	switches uint64
	polls    int
	rtt      []time.Duration
}

// busyResult is the busy scenario: the same polling through vsp's daemon
// (with TLS to ezsim, and without TLS to a plain echo server), through
// go-min (a minimal Go relay process) and relay-min (the least a
// redirector costs), both without TLS to that echo server, and through one
// socat process per port (with TLS to ezsim).
type busyResult struct {
	ports  int
	rate   int // polls per port per second
	window time.Duration
	sides  []busySide // vsp, vsp-plain, go-min, relay-min, socat
}

// side returns the side called name (ok false when it was not measured).
func (r busyResult) side(name string) (busySide, bool) {
	for _, s := range r.sides {
		if s.name == name {
			return s, true
		}
	}
	return busySide{}, false
}

// usage is what a side's redirector has used so far (CPU, context
// switches) and its memory now.
type usage struct {
	cpu          time.Duration
	ticks, sys   uint64 // utime+stime and stime, in clock ticks
	switches     uint64
	rssKB, pssKB int64 // -1: not meaningful
}

// meter reads a side's usage.
type meter func() (usage, error)

// procsMeter sums over processes: utime+stime from /proc/PID/stat (in
// clock ticks), RSS, PSS.
func procsMeter(procs []*proc) meter {
	return func() (u usage, err error) {
		for _, p := range procs {
			s, err := readProcStat(p.pid())
			if err != nil {
				return u, err
			}
			u.ticks += s.cpuTicks
			u.sys += s.sysTicks
			u.switches += s.switches
			u.rssKB += s.rssKB
			u.pssKB += readPss(p.pid())
		}
		u.cpu = ticks(u.ticks)
		return u, nil
	}
}

// threadMeter measures one thread of the bench process: CPU from its
// CPU-time clock (ns, not ticks: a short window uses a few ticks), the
// rest from /proc/self/task/TID; no memory of its own.
func threadMeter(tid int) meter {
	return func() (usage, error) {
		s, err := readThreadStat(tid)
		if err != nil {
			return usage{}, err
		}
		cpu, err := threadCPU(tid)
		return usage{cpu: cpu, ticks: s.cpuTicks, sys: s.sysTicks, switches: s.switches, rssKB: -1, pssKB: -1}, err
	}
}

// runBusy polls n ports rate times a second each with 8 bytes (write, read
// the echo back), for window per side: through one vsp daemon with n ports
// against one ezsim with n devices (TLS); through a vsp daemon with n
// ports with TLS off against a plain echo server (vsp-plain); through
// go-min and relay-min against the same echo server; through n socat processes
// (`socat pty,… openssl:…`) against the ezsim. It measures the CPU and RSS
// of the redirector (not ezsim's, not the echo server's, not the bench's).
func runBusy(ctx context.Context, bin binaries, n, rate int, window time.Duration, profile, simTLS, dir string, progress io.Writer) (res busyResult, err error) {
	res.ports, res.rate, res.window = n, rate, window
	measure := func(name string, procs int, links []string, read meter) error {
		side, err := pollSide(ctx, name, procs, links, read, rate, window)
		if err != nil {
			return err
		}
		res.sides = append(res.sides, side)
		fmt.Fprintf(progress, "  %s\n", side.String(res))
		return nil
	}
	f, err := startFleet(ctx, bin.vsp, bin.ezsim, n, profile, simTLS, dir, progress)
	if f != nil {
		defer func() { err = errors.Join(err, f.stop()) }()
	}
	if err != nil {
		return res, err
	}
	if err := measure("vsp", 1, f.links(), procsMeter([]*proc{f.daemon})); err != nil {
		return res, err
	}
	if err := f.daemon.stop(); err != nil {
		return res, err
	}
	echo, err := startEchoServer()
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, echo.stop()) }()
	if err := busyPlain(ctx, bin.vsp, n, echo.addr(), filepath.Join(dir, "plain"), measure, progress); err != nil {
		return res, err
	}
	if err := busyGoMin(n, echo.addr(), dir, measure); err != nil {
		return res, err
	}
	if err := busyRelayMin(n, echo.port, measure); err != nil {
		return res, err
	}
	// The ezsim devices through socat.
	return res, busySocat(f.addrs, dir, measure)
}

// busyPlain measures vsp-plain: a vsp daemon with n ports, tls = "off",
// every port's device the echo server at addr.
func busyPlain(ctx context.Context, vspBin string, n int, addr, dir string, measure func(string, int, []string, meter) error, progress io.Writer) (err error) {
	f := &fleet{logf: filepath.Join(dir, "plain.log"), addrs: make([]string, n)}
	for i := range f.addrs {
		f.addrs[i] = addr
	}
	defer func() { err = errors.Join(err, f.stop()) }()
	if err := f.startDaemon(ctx, vspBin, dir, func(int) string { return "tls = \"off\"\n" }, progress); err != nil {
		return err
	}
	return measure("vsp-plain", 1, f.links(), procsMeter([]*proc{f.daemon}))
}

// busyGoMin measures go-min for n ports against the echo server at addr:
// one go-min-raw relay process (vspbench re-executed; per port a PTY
// master read and written with rawio in Go's poller, its own TCP
// connection, one goroutine per direction), as a whole process like vsp.
func busyGoMin(n int, addr, dir string, measure func(string, int, []string, meter) error) (err error) {
	relay, ttys, err := startGoRelay("go-min", filepath.Join(dir, "go-min.log"), addr, true, n)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, relay.stop()) }()
	return measure("go-min", 1, ttys, procsMeter([]*proc{relay}))
}

// busyRelayMin measures relay-min for n ports against the echo server on
// 127.0.0.1:port: the CPU of its one thread.
func busyRelayMin(n, port int, measure func(string, int, []string, meter) error) (err error) {
	r, err := startRelayMinBusy(n, port)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, r.stop()) }()
	return measure("relay-min", 0, r.ttys, threadMeter(r.loop.tid))
}

// busySocat measures one `socat pty,… openssl:ADDR` process per address.
func busySocat(addrs []string, dir string, measure func(string, int, []string, meter) error) error {
	var chains []*proc
	defer func() {
		for _, c := range chains {
			c.end(2 * time.Second)
		}
	}()
	logf := filepath.Join(dir, "socat-chains.log")
	links := make([]string, len(addrs))
	for i, addr := range addrs {
		links[i] = filepath.Join(dir, fmt.Sprintf("socat%04d", i))
		c, err := startProc("socat chain", logf, "socat", fmt.Sprintf("pty,link=%s,raw,echo=0", links[i]), fmt.Sprintf("openssl:%s,verify=0", addr))
		if err != nil {
			return err
		}
		chains = append(chains, c)
	}
	for _, l := range links {
		if err := waitFile(l, 30*time.Second); err != nil {
			return err
		}
	}
	if err := measure("socat", len(chains), links, procsMeter(chains)); err != nil {
		return fmt.Errorf("%w (see %s)", err, logf)
	}
	return nil
}

// pollSide opens every link, waits for each to echo, then polls them in
// turn, spread evenly over time (rate polls per link per second), for
// window, and reads the redirector's CPU and memory with read before and
// after it.
func pollSide(ctx context.Context, name string, procs int, links []string, read meter, rate int, window time.Duration) (busySide, error) {
	side := busySide{name: name, procs: procs}
	apps := make([]*appTTY, 0, len(links))
	defer func() {
		for _, a := range apps {
			a.Close()
		}
	}()
	for _, l := range links {
		a, err := openApp(l)
		if err != nil {
			return side, err
		}
		apps = append(apps, a)
		if err := a.waitEcho(30 * time.Second); err != nil {
			return side, fmt.Errorf("%s: %w", l, err)
		}
	}
	u0, err := read()
	if err != nil {
		return side, err
	}
	every := time.Second / time.Duration(rate*len(apps))
	msg, got := []byte("ABCDEFGH"), make([]byte, 8)
	t0 := time.Now()
	for k := 0; ; k++ {
		next := t0.Add(time.Duration(k) * every)
		if next.Sub(t0) >= window {
			break
		}
		if ctx.Err() != nil {
			return side, ctx.Err()
		}
		time.Sleep(time.Until(next))
		a := apps[k%len(apps)]
		msg[0] = byte(k)
		start := time.Now()
		deadline := start.Add(5 * time.Second)
		if err := a.writeAll(msg, deadline); err != nil {
			return side, err
		}
		for m := 0; m < len(got); {
			r, err := a.read(got[m:], deadline)
			if err != nil {
				return side, fmt.Errorf("%s: poll %d: %w", a.path, k, err)
			}
			m += r
		}
		side.rtt = append(side.rtt, time.Since(start))
		if !bytes.Equal(got, msg) {
			return side, fmt.Errorf("vspbench: %s: sent %q, got %q back", a.path, msg, got)
		}
		side.polls++
	}
	u1, err := read()
	if err != nil {
		return side, err
	}
	side.cpu, side.rssKB, side.pssKB = u1.cpu-u0.cpu, u1.rssKB, u1.pssKB
	if t := u1.ticks - u0.ticks; t > 0 {
		side.sysShare = float64(u1.sys-u0.sys) / float64(t)
	}
	if u1.switches >= u0.switches { // a thread that ended took its count along
		side.switches = u1.switches - u0.switches
	}
	return side, nil
}

// String is the progress line of one side.
func (s busySide) String(r busyResult) string {
	return fmt.Sprintf("%s (%s): %d polls, CPU %v (%.1f µs per poll, %.0f %% in the kernel), %.2f context switches per poll, RSS %s (PSS %s), poll RTT p50 %.1f µs p99 %.1f µs",
		s.name, s.measured(), s.polls, s.cpu.Round(time.Millisecond), s.perPoll(), 100*s.sysShare, s.switchesPerPoll(), mib(s.rssKB), mib(s.pssKB),
		us(quantile(s.rtt, 0.5)), us(quantile(s.rtt, 0.99)))
}

// measured says what was measured: processes, or the one thread.
func (s busySide) measured() string {
	if s.procs == 0 {
		return "1 thread"
	}
	if s.procs == 1 {
		return "1 process"
	}
	return fmt.Sprintf("%d processes", s.procs)
}

// mib formats kB as MiB; "—" when negative (not meaningful).
func mib(kB int64) string {
	if kB < 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f MiB", float64(kB)/1024)
}

// switchesPerPoll is the context switches per poll.
func (s busySide) switchesPerPoll() float64 {
	if s.polls == 0 {
		return 0
	}
	return float64(s.switches) / float64(s.polls)
}

// perPoll is the CPU per poll in µs.
func (s busySide) perPoll() float64 {
	if s.polls == 0 {
		return 0
	}
	return float64(s.cpu.Nanoseconds()) / 1e3 / float64(s.polls)
}

// readPss returns the proportional set size of pid in kB (0 when
// /proc/PID/smaps_rollup cannot be read).
func readPss(pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "Pss:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}
