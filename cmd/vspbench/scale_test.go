//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

var builder testenv.Builder

func testBinaries(t *testing.T) binaries {
	t.Helper()
	return binaries{vsp: builder.Build(t, "vsp"), ezsim: builder.Build(t, "ezsim")}
}

// TestScale runs the scale scenario at reduced size: one ezsim process
// with 100 devices, one vsp daemon with 100 port files. Every link comes up,
// every port echoes, and an idle daemon does not spin. (The speed targets
// are measured by the bench command, not asserted here.)
func TestScale(t *testing.T) {
	if testing.Short() {
		// CI runs `make test`, without -short: this never hides the test there.
		t.Skip("starts 100 ports")
	}
	// The daemon shares one inotify instance among its ports, so 100 ports
	// fit in the kernel's default of 128 instances per user.
	const ports = 100
	bin := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := runScale(ctx, bin, scaleOptions{
		ports: ports, idle: 3 * time.Second, pings: 200, dir: t.TempDir(), profile: "legacy", inProc: 5,
	}, &progress)
	t.Log("\n" + progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.echoed != ports {
		t.Errorf("%d of %d ports echoed", res.echoed, ports)
	}
	if len(res.rtt) != 200 {
		t.Errorf("%d round trips measured on the busy port, want 200", len(res.rtt))
	}
	if res.rssKB <= 0 {
		t.Errorf("daemon RSS not read (%d kB)", res.rssKB)
	}
	// A port is a handful of goroutines (bridge, its two copy loops, the
	// port's event watch, the pty's termios watch); dozens would mean a
	// leak per link or per reconnect. Its heap and stacks were measured.
	if fp := res.footprint; fp.goroutines < 1 || fp.goroutines > 12 || fp.heapKiB <= 0 || fp.stackKiB <= 0 {
		t.Errorf("per port: %s; want 1..12 goroutines, heap and stacks measured", fp)
	}
	// No busy loops: the termios poll wakes each port every 2 s; a spinning
	// goroutine would cost thousands of switches per second. Generous bound.
	if perPort := res.wakeups / float64(ports); perPort > 20 {
		t.Errorf("idle daemon: %.1f context switches per port per second", perPort)
	}
	if res.idleCPU > 0.5 {
		t.Errorf("idle daemon used %.0f%% of a core", 100*res.idleCPU)
	}
}

// TestChurn runs the churn scenario at reduced size: applications open,
// ping and close 20 ports in turn, then open all and close them together;
// the daemon must see every close (each port reports no application
// afterwards) and every cycle must echo. Speed is the bench's business.
func TestChurn(t *testing.T) {
	bin := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := runChurn(ctx, bin.vsp, bin.ezsim, "this build", 20, 40, "legacy", "", t.TempDir(), &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.cycles != 40 || res.cycWall <= 0 {
		t.Errorf("churn result %+v", res)
	}
}

// TestBusy runs the busy scenario at reduced size (5 ports, 1 s per side):
// every poll comes back through vsp, vsp-plain, go-min, relay-min and
// socat, and each side's redirector is measured (processes; relay-min's
// one thread).
func TestBusy(t *testing.T) {
	testenv.Tool(t, "socat")
	bin := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	const ports, rate, window = 5, 10, time.Second
	res, err := runBusy(ctx, bin, ports, rate, window, "legacy", "", t.TempDir(), &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name  string
		procs int
	}{{"vsp", 1}, {"vsp-plain", 1}, {"go-min", 1}, {"relay-min", 0}, {"socat", ports}}
	if len(res.sides) != len(want) {
		t.Fatalf("%d sides measured, want %d", len(res.sides), len(want))
	}
	for i, w := range want {
		s := res.sides[i]
		if s.name != w.name || s.procs != w.procs {
			t.Errorf("side %d: %s with %d processes, want %s with %d", i, s.name, s.procs, w.name, w.procs)
		}
		// Every poll of the window came back (pollSide checks the bytes).
		if s.polls != ports*rate*int(window/time.Second) || len(s.rtt) != s.polls {
			t.Errorf("%s: %d polls, %d round trips, want %d", s.name, s.polls, len(s.rtt), ports*rate)
		}
		if w.procs > 0 && (s.rssKB <= 0 || s.pssKB <= 0) {
			t.Errorf("%s: RSS %d kB, PSS %d kB", s.name, s.rssKB, s.pssKB)
		}
	}
	// relay-min's thread is measured by its CPU clock (ns): it used some
	// CPU, and far less than the window (a spinning loop would use it all);
	// its own context switches are counted: it sleeps between polls (20 ms
	// apart), so at least once per poll.
	m := res.sides[3]
	if m.cpu <= 0 || m.cpu > window/4 || m.rssKB != -1 || m.switches < uint64(m.polls) || m.sysShare < 0 || m.sysShare > 1 {
		t.Errorf("relay-min: CPU %v over a %v window (%.0f %% in the kernel), %d context switches for %d polls, RSS %d",
			m.cpu, window, 100*m.sysShare, m.switches, m.polls, m.rssKB)
	}
	// go-min is one process for every port (counted in clock ticks, which
	// 50 polls may not reach): its threads sleep between polls too, so
	// its context switches are at least one per poll, and it does not spin.
	g := res.sides[2]
	if g.cpu < 0 || g.cpu > window/4 || g.switches < uint64(g.polls) || g.sysShare < 0 || g.sysShare > 1 {
		t.Errorf("go-min: CPU %v over a %v window (%.0f %% in the kernel), %d context switches for %d polls",
			g.cpu, window, 100*g.sysShare, g.switches, g.polls)
	}
	rep := (&report{busy: &res}).busyFigures()
	for _, row := range []string{"| go-min | 1 process | 50 |", "| relay-min | 1 thread | 50 |"} {
		if !strings.Contains(rep, row) {
			t.Errorf("busy report lacks %q:\n%s", row, rep)
		}
	}
}

// TestBusyFigures checks the busy section's ratios on made-up figures,
// and that a ratio whose divisor measured no CPU (a short window counts
// processes in 10 ms ticks) is left out rather than printed as 0 or ∞.
func TestBusyFigures(t *testing.T) {
	side := func(name string, procs int, cpu time.Duration, rss int64) busySide {
		return busySide{name: name, procs: procs, cpu: cpu, rssKB: rss, pssKB: rss, sysShare: 0.9, switches: 2500, polls: 1000, rtt: []time.Duration{time.Millisecond}}
	}
	for _, tc := range []struct {
		name        string
		sides       []busySide
		want, never []string
	}{
		{"all", []busySide{side("vsp", 1, 60*time.Millisecond, 1024), side("vsp-plain", 1, 50*time.Millisecond, 1024),
			side("go-min", 1, 40*time.Millisecond, 2048), side("relay-min", 0, 25*time.Millisecond, -1), side("socat", 100, 100*time.Millisecond, 4096)},
			[]string{"| relay-min | 1 thread | 1000 | 2.5 % | 25.0 µs | 90 % | 2.50 | — | — |", "| socat | 100 processes | 1000 |",
				"vsp / socat: CPU 0.60×, RSS 0.250×", "relay-min / socat: CPU 0.25×", "vsp-plain / relay-min: CPU 2.00× (+25.0 µs per poll",
				"go-min / relay-min: CPU 1.60× (+15.0 µs per poll: what Go's runtime adds)",
				"vsp-plain / go-min: CPU 1.25× (+10.0 µs per poll: what vsp adds to a minimal Go relay)",
				"vsp / vsp-plain: CPU 1.20× (+10.0 µs per poll"}, nil},
		{"no CPU counted", []busySide{side("vsp", 1, 10*time.Millisecond, 1024), side("vsp-plain", 1, 0, 1024),
			side("go-min", 1, 0, 2048), side("relay-min", 0, 25*time.Millisecond, -1), side("socat", 5, 0, 4096)},
			[]string{"vsp-plain / relay-min: CPU 0.00×", "go-min / relay-min: CPU 0.00×"},
			[]string{"vsp / socat", "relay-min / socat", "vsp / vsp-plain", "vsp-plain / go-min"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := (&report{busy: &busyResult{ports: 100, rate: 10, window: time.Second, sides: tc.sides}}).busyFigures()
			for _, w := range tc.want {
				if !strings.Contains(rep, w) {
					t.Errorf("lacks %q:\n%s", w, rep)
				}
			}
			for _, n := range tc.never {
				if strings.Contains(rep, n) {
					t.Errorf("has %q:\n%s", n, rep)
				}
			}
		})
	}
}

// TestRecovery restarts the device twice under a live port; the first byte
// written after each restart comes back.
func TestRecovery(t *testing.T) {
	bin := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	res, err := runRecovery(ctx, bin, 2, "legacy", "", t.TempDir(), &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.times) != 2 {
		t.Fatalf("%d recoveries timed, want 2", len(res.times))
	}
}

// TestPaths brings up each compared path once and checks that it echoes
// every byte of a stream and a series of pings.
func TestPaths(t *testing.T) {
	bin := testBinaries(t)
	dir := t.TempDir()
	paths := []path{&floorPath{}, &relayMinPath{}, &goMinPath{dir: dir}, &goMinPath{dir: dir, raw: true},
		&vspPlainPath{dir: dir, bin: bin},
		&vspPath{dir: dir, bin: bin, profile: "legacy"}}
	testenv.Tool(t, "socat")
	testenv.Tool(t, "openssl")
	sp, err := newSocatPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, sp)
	o := options{pings: 100, chunk: 4096}
	data := pattern(256<<10, 7)
	for _, p := range paths {
		t.Run(p.Name(), func(t *testing.T) {
			rtts, el, err := measure(p, o, data)
			if err != nil {
				t.Fatal(err)
			}
			if len(rtts) != o.pings || el <= 0 {
				t.Fatalf("%d round trips, stream took %v", len(rtts), el)
			}
			if d := p.Describe(); d == "" {
				t.Error("no description")
			}
		})
	}
}

// TestReportWrite: the generated block replaces the previous one and keeps
// the hand-written text around it; the SVG is well-formed XML.
func TestReportWrite(t *testing.T) {
	dir := t.TempDir()
	md := filepath.Join(dir, "performance.md")
	hand := "# Performance\n\nHand-written intro.\n\n" + beginMarker + "\nold figures\n" + endMarker + "\n\n## Changes\n\nHand-written notes.\n"
	if err := os.WriteFile(md, []byte(hand), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-runs", "3", "-scale", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	samples := []time.Duration{90 * time.Microsecond, 100 * time.Microsecond, 400 * time.Microsecond}
	r := &report{opts: o, started: time.Now(), load0: loadAvg(), load1: loadAvg(), results: []*pathResult{
		{name: "floor", p50: []float64{20, 21, 22}, p99: []float64{40, 41, 42}, mbps: []float64{40, 41, 42}, samples: samples},
		{name: "socat", skipped: "socat is not installed"},
		{name: "vsp", p50: []float64{90, 100, 110}, p99: []float64{300, 400, 500}, mbps: []float64{30, 31, 32}, samples: samples},
		{name: "relay-min", p50: []float64{50}, p99: []float64{80}, mbps: []float64{35}, samples: samples},
		{name: "vsp-plain", p50: []float64{75}, p99: []float64{100}, mbps: []float64{28}, samples: samples},
		{name: "go-min", p50: []float64{60}, p99: []float64{100}, mbps: []float64{35}, samples: samples},
	}}
	if err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{"Hand-written intro.", "Hand-written notes.", "go run ./cmd/vspbench -runs 3 -scale 0",
		"| vsp | 100.0 (90.0–110.0) | 400.0 (300.0–500.0) | 31.0 (30.0–32.0) |", "| vsp / floor | 4.76× |", "skipped: socat is not installed",
		"| relay-min / floor | 2.38× | 1.95× | 0.85× |", "| vsp-plain / relay-min (what vsp adds to the kernel's share) | 1.50× | 1.25× | 0.80× |",
		"| go-min / relay-min (what Go's runtime adds) | 1.20× | 1.25× | 1.00× |", "| vsp-plain / go-min (what vsp adds to a minimal Go relay) | 1.25× | 1.00× | 0.80× |"} {
		if !strings.Contains(s, want) {
			t.Errorf("performance.md lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "old figures") || strings.Count(s, beginMarker) != 1 {
		t.Errorf("old generated block not replaced:\n%s", s)
	}
	svg, err := os.ReadFile(filepath.Join(dir, svgName))
	if err != nil {
		t.Fatal(err)
	}
	dec := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
	}
	if c := bytes.Count(svg, []byte("<polyline")); c != 5 {
		t.Errorf("SVG has %d curves, want 5 (floor, vsp, relay-min, vsp-plain, go-min)", c)
	}
}

// TestRelayMinStopUnopened: Stop ends relay-min and its echo server even
// when no application ever opened the tty (the loop is woken by the socket,
// not by the master's hang-up), and leaves no thread behind in poll.
func TestRelayMinStopUnopened(t *testing.T) {
	r := &relayMinPath{}
	if _, err := r.Start(); err != nil {
		t.Fatal(err)
	}
	done := r.done
	if err := r.Stop(); err != nil { // without the wake-up: "relay did not end" after 5 s
		t.Fatal(err)
	}
	select {
	case <-done:
	default:
		t.Fatal("relay thread still running after Stop")
	}
}
