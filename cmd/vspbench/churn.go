//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// churnResult is what one run of the churn scenario measured on one build.
type churnResult struct {
	build   string        // "this build" or the base ref
	ports   int           // ports in the daemon
	cycles  int           // open/ping/close cycles
	cycCPU  time.Duration // daemon CPU over the cycles (until it is quiet again)
	cycWall time.Duration
	massCPU time.Duration // daemon CPU to open every port, then close them all
}

// runChurn starts a fleet of n ports with the given vsp binary and
// measures the daemon's CPU for application open/close churn: cycles
// times, an application opens a port (ports in turn), round-trips one byte
// and closes it; then every port is opened at once and all are closed
// together. Each figure runs until the daemon is quiet again and every
// port reports no application, so that work the daemon does after the
// application has gone (open/close tracking) is counted.
func runChurn(ctx context.Context, vspBin, ezsimBin, build string, n, cycles int, profile, simTLS, dir string, progress io.Writer) (res churnResult, err error) {
	res.build, res.ports, res.cycles = build, n, cycles
	f, err := startFleet(ctx, vspBin, ezsimBin, n, profile, simTLS, dir, progress)
	if f != nil {
		defer func() { err = errors.Join(err, f.stop()) }()
	}
	if err != nil {
		return res, err
	}
	hc := unixHTTP(filepath.Join(dir, "vsp.sock"))
	link := func(i int) string { return filepath.Join(f.devDir, f.names[i%n]) }
	// quiet waits until the daemon has used no CPU for a while and no port
	// reports an application, and returns the daemon's CPU reading then.
	quiet := func() (procStat, error) {
		deadline := time.Now().Add(2 * time.Minute)
		last, err := readProcStat(f.daemon.pid())
		if err != nil {
			return last, err
		}
		for {
			time.Sleep(300 * time.Millisecond)
			s, err := readProcStat(f.daemon.pid())
			if err != nil {
				return s, err
			}
			if s.cpuTicks == last.cpuTicks {
				open, err := appsOpen(ctx, hc)
				if err == nil && open == 0 {
					return s, nil
				}
				s, err = readProcStat(f.daemon.pid()) // the query's own CPU
				if err != nil {
					return s, err
				}
			}
			last = s
			if time.Now().After(deadline) || ctx.Err() != nil {
				return s, fmt.Errorf("vspbench: daemon not quiet with no application 2 minutes after the churn (see %s)", f.logf)
			}
		}
	}
	// Warm up: one cycle on every port's first use is not churn.
	s0, err := quiet()
	if err != nil {
		return res, err
	}
	t0 := time.Now()
	for i := range cycles {
		if err := pingPort(link(i), byte(i)); err != nil {
			return res, fmt.Errorf("churn cycle %d on %s: %w", i, link(i), err)
		}
	}
	res.cycWall = time.Since(t0)
	s1, err := quiet()
	if err != nil {
		return res, err
	}
	res.cycCPU = ticks(s1.cpuTicks - s0.cpuTicks)
	apps := make([]*appTTY, 0, n)
	defer func() {
		for _, a := range apps {
			a.Close()
		}
	}()
	for i := range n {
		a, err := openApp(link(i))
		if err != nil {
			return res, err
		}
		apps = append(apps, a)
	}
	for _, a := range apps {
		a.Close()
	}
	s2, err := quiet()
	if err != nil {
		return res, err
	}
	res.massCPU = ticks(s2.cpuTicks - s1.cpuTicks)
	fmt.Fprintf(progress, "  %s: %d open/ping/close cycles: daemon CPU %v (%v per cycle), wall %v; %d ports opened and closed together: daemon CPU %v\n",
		build, cycles, res.cycCPU, res.cycCPU/time.Duration(max(cycles, 1)), res.cycWall.Round(time.Millisecond), n, res.massCPU)
	return res, nil
}

// ticks converts USER_HZ ticks to a duration.
func ticks(t uint64) time.Duration { return time.Duration(t) * time.Second / clockTick }

// appsOpen returns how many ports report an application.
func appsOpen(ctx context.Context, hc *http.Client) (int, error) {
	states, err := getPorts(ctx, hc)
	n := 0
	for _, s := range states {
		if s.AppOpen {
			n++
		}
	}
	return n, err
}

// buildBase builds vsp from the git revision ref of the checkout into
// dir/bin/vsp (git archive into dir/src: the checkout is not touched).
func buildBase(ctx context.Context, ref, dir string) (string, error) {
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		return "", err
	}
	archive := exec.CommandContext(ctx, "git", "archive", "--format=tar", ref)
	archive.Dir = moduleRoot()
	var tarball, out bytes.Buffer
	archive.Stdout, archive.Stderr = &tarball, &out
	if err := archive.Run(); err != nil {
		return "", fmt.Errorf("vspbench: git archive %s: %w\n%s", ref, err, out.String())
	}
	untar := exec.CommandContext(ctx, "tar", "-x", "-C", src)
	untar.Stdin, untar.Stdout, untar.Stderr = &tarball, &out, &out
	if err := untar.Run(); err != nil {
		return "", fmt.Errorf("vspbench: unpack %s: %w\n%s", ref, err, out.String())
	}
	bin := filepath.Join(dir, "bin", "vsp")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/vsp")
	build.Dir = src
	build.Stdout, build.Stderr = &out, &out
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("vspbench: go build %s: %w\n%s", ref, err, out.String())
	}
	return bin, nil
}
