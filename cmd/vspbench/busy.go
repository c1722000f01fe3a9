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
	procs int           // processes measured
	cpu   time.Duration // their CPU over the window
	rssKB int64         // their RSS summed, at the end of the window
	pssKB int64         // their proportional set size summed (shared pages split among the sharers)
	polls int
	rtt   []time.Duration
}

// busyResult is the busy scenario: the same polling against vsp's daemon
// and against one socat process per port, on the same ezsim devices.
type busyResult struct {
	ports  int
	rate   int // polls per port per second
	window time.Duration
	sides  []busySide
}

// runBusy polls n ports rate times a second each with 8 bytes (write, read
// the echo back), for window, first through one vsp daemon with n ports,
// then through n socat processes (`socat pty,… openssl:…`), both against
// the same ezsim with n devices; it measures the CPU and RSS of the
// redirector processes (not ezsim's, not the bench's).
func runBusy(ctx context.Context, bin binaries, n, rate int, window time.Duration, profile, simTLS, dir string, progress io.Writer) (res busyResult, err error) {
	res.ports, res.rate, res.window = n, rate, window
	f, err := startFleet(ctx, bin.vsp, bin.ezsim, n, profile, simTLS, dir, progress)
	if f != nil {
		defer func() { err = errors.Join(err, f.stop()) }()
	}
	if err != nil {
		return res, err
	}
	links := make([]string, n)
	for i, name := range f.names {
		links[i] = filepath.Join(f.devDir, name)
	}
	side, err := pollSide(ctx, "vsp", links, []*proc{f.daemon}, rate, window)
	if err != nil {
		return res, err
	}
	res.sides = append(res.sides, side)
	fmt.Fprintf(progress, "  %s\n", side.String(res))
	// The same devices through socat: the daemon lets go of them first.
	if err := f.daemon.stop(); err != nil {
		return res, err
	}
	var chains []*proc
	defer func() {
		for _, c := range chains {
			c.end(2 * time.Second)
		}
	}()
	logf := filepath.Join(dir, "socat-chains.log")
	for i := range n {
		links[i] = filepath.Join(dir, fmt.Sprintf("socat%04d", i))
		c, err := startProc("socat chain", logf, "socat", fmt.Sprintf("pty,link=%s,raw,echo=0", links[i]), fmt.Sprintf("openssl:%s,verify=0", f.addrs[i]))
		if err != nil {
			return res, err
		}
		chains = append(chains, c)
	}
	for _, l := range links {
		if err := waitFile(l, 30*time.Second); err != nil {
			return res, err
		}
	}
	side, err = pollSide(ctx, "socat", links, chains, rate, window)
	if err != nil {
		return res, fmt.Errorf("%w (see %s)", err, logf)
	}
	res.sides = append(res.sides, side)
	fmt.Fprintf(progress, "  %s\n", side.String(res))
	return res, nil
}

// pollSide opens every link, waits for each to echo, then polls them in
// turn, spread evenly over time (rate polls per link per second), for
// window, and reads the CPU and RSS of procs over it.
func pollSide(ctx context.Context, name string, links []string, procs []*proc, rate int, window time.Duration) (busySide, error) {
	side := busySide{name: name, procs: len(procs)}
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
	read := func() (cpu uint64, rss, pss int64, err error) {
		for _, p := range procs {
			s, err := readProcStat(p.pid())
			if err != nil {
				return 0, 0, 0, err
			}
			cpu += s.cpuTicks
			rss += s.rssKB
			pss += readPss(p.pid())
		}
		return cpu, rss, pss, nil
	}
	c0, _, _, err := read()
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
	c1, rss, pss, err := read()
	if err != nil {
		return side, err
	}
	side.cpu, side.rssKB, side.pssKB = ticks(c1-c0), rss, pss
	return side, nil
}

// String is the progress line of one side.
func (s busySide) String(r busyResult) string {
	return fmt.Sprintf("%s (%d processes): %d polls, CPU %v (%.1f µs per poll), RSS %.1f MiB (PSS %.1f MiB), poll RTT p50 %.1f µs p99 %.1f µs",
		s.name, s.procs, s.polls, s.cpu, s.perPoll(), float64(s.rssKB)/1024, float64(s.pssKB)/1024, us(quantile(s.rtt, 0.5)), us(quantile(s.rtt, 0.99)))
}

// perPoll is the CPU per poll in µs.
func (s busySide) perPoll() float64 {
	if s.polls == 0 {
		return 0
	}
	return float64(s.cpu.Microseconds()) / float64(s.polls)
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
