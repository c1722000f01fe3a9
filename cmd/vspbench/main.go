//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

func main() {
	if addr, ok := os.LookupEnv(goRelayEnv); ok {
		os.Exit(goRelay(addr, os.Stdout, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vspbench:", err)
		os.Exit(1)
	}
}

// options are the command line.
type options struct {
	runs     int
	pings    int
	stream   int
	chunk    int
	profile  string
	simTLS   string
	scale    int
	idle     time.Duration
	restarts int
	churn    int
	churnRun int
	base     string
	busy     int
	busyRate int
	busyWin  time.Duration
	// settings scenario
	settings      int
	settingsOrder int
	settingsRuns  int
	out           string
	bin           string
	keep          bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("vspbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.runs, "runs", 7, "interleaved repetitions of each path")
	fs.IntVar(&o.pings, "pings", 2000, "1-byte round trips per run")
	fs.IntVar(&o.stream, "stream", 4<<20, "bytes streamed and checked per run")
	fs.IntVar(&o.chunk, "chunk", 4096, "application write size while streaming")
	fs.StringVar(&o.profile, "tls", "legacy", "vsp TLS profile (ezsim keys are at most 1024 bits, so modern cannot be used)")
	fs.StringVar(&o.simTLS, "sim-tls", "any", "ezsim --server-tls on the vsp path: any (ezsim's default; vsp's legacy profile then gets TLS 1.2 ECDHE-GCM, like for like with socat's TLS 1.3) or device (the real ezTCP's TLS 1.0 AES256-SHA only)")
	fs.IntVar(&o.scale, "scale", 1000, "ports in the scale scenario (0 = skip it)")
	fs.DurationVar(&o.idle, "idle", 60*time.Second, "idle window of the scale scenario")
	fs.IntVar(&o.churn, "churn", 300, "open/ping/close cycles of the churn scenario, at -scale ports (0 = skip it)")
	fs.IntVar(&o.churnRun, "churn-runs", 2, "runs of the churn scenario (per build, interleaved with -base)")
	fs.StringVar(&o.base, "base", "", "git revisions (comma-separated) whose vsp the churn and settings scenarios also measure, as baselines (e.g. main; \"\" = none)")
	fs.IntVar(&o.busy, "busy", 100, "ports of the busy scenario, polled through vsp (with TLS and without), go-min, relay-min and as many socat processes (0 = skip it)")
	fs.IntVar(&o.busyRate, "busy-rate", 10, "polls per port per second in the busy scenario")
	fs.DurationVar(&o.busyWin, "busy-window", 20*time.Second, "measured window of the busy scenario, per side")
	fs.IntVar(&o.settings, "settings", 200, "baud rate changes (tcsetattr) per mode and run in the settings scenario, each timed to its RFC 2217 command (0 = skip the scenario)")
	fs.IntVar(&o.settingsOrder, "settings-order", 100, "write, tcsetattr(TCSADRAIN), write samples per mode and run in the settings scenario (0 = none)")
	fs.IntVar(&o.settingsRuns, "settings-runs", 2, "runs of the settings scenario (per build, interleaved with -base)")
	fs.IntVar(&o.restarts, "restarts", 20, "device restarts in the recovery scenario (0 = skip it)")
	fs.StringVar(&o.out, "out", "docs", "directory for performance.md and performance-rtt.svg (\"\" = do not write)")
	fs.StringVar(&o.bin, "bin", "", "directory holding built vsp and ezsim (default: build them)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (logs) after the run")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.runs < 0 || o.pings < 10 || o.stream < 1 || o.chunk < 1 {
		return o, errors.New("-runs must not be negative (0 skips the paths), -pings at least 10, -stream and -chunk positive")
	}
	if o.settings < 0 || o.settingsOrder < 0 || o.settingsRuns < 1 {
		return o, errors.New("-settings and -settings-order must not be negative, -settings-runs at least 1")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "vspbench-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(stdout, "work directory (logs):", work)
	} else {
		defer os.RemoveAll(work)
	}
	started := time.Now()
	load0 := loadAvg()
	var bin binaries
	if o.bin != "" {
		bin = binaries{vsp: filepath.Join(o.bin, "vsp"), ezsim: filepath.Join(o.bin, "ezsim")}
	} else {
		fmt.Fprintln(stdout, "building vsp and ezsim ...")
		if bin, err = buildBinaries(ctx, filepath.Join(work, "bin")); err != nil {
			return err
		}
	}

	floor := &floorPath{}
	vsp := &vspPath{dir: work, bin: bin, profile: o.profile, simTLS: o.simTLS}
	paths := []path{floor, &relayMinPath{}, &goMinPath{dir: work}, &goMinPath{dir: work, raw: true}, &vspPlainPath{dir: work, bin: bin}}
	results := map[string]*pathResult{
		"floor":      {name: "floor"},
		"relay-min":  {name: "relay-min"},
		"go-min":     {name: "go-min"},
		"go-min-raw": {name: "go-min-raw"},
		"vsp-plain":  {name: "vsp-plain"},
		"socat":      {name: "socat"},
		"vsp":        {name: "vsp"},
		// vsp-pipe: measured only when socat is there.
		"vsp-pipe": {name: "vsp-pipe"},
	}
	if sp, err := newSocatPath(work); err != nil {
		results["socat"].skipped = err.Error()
		fmt.Fprintf(stdout, "socat path SKIPPED: %v\n", err)
		results["vsp-pipe"].skipped = err.Error()
	} else {
		paths = append(paths, sp, &vspPipePath{socat: sp, bin: bin, profile: o.profile})
	}
	paths = append(paths, vsp)
	data := pattern(o.stream, 0x9e3779b9)
	for r := 0; r < o.runs; r++ {
		for i := range paths {
			// Rotate the order so no path always runs first or last.
			p := paths[(i+r)%len(paths)]
			if ctx.Err() != nil {
				return ctx.Err()
			}
			res := results[p.Name()]
			rtts, el, err := measure(p, o, data)
			if err != nil {
				return fmt.Errorf("%s, run %d: %w (logs in %s; use -keep)", p.Name(), r+1, err, work)
			}
			res.desc = p.Describe()
			res.samples = append(res.samples, rtts...)
			res.p50 = append(res.p50, us(quantile(rtts, 0.50)))
			res.p99 = append(res.p99, us(quantile(rtts, 0.99)))
			res.mbps = append(res.mbps, float64(len(data))/el.Seconds()/1e6)
			fmt.Fprintf(stdout, "run %d %-10s  rtt p50 %7.1f µs  p99 %7.1f µs  stream %7.1f MB/s\n", r+1, p.Name(),
				res.p50[len(res.p50)-1], res.p99[len(res.p99)-1], res.mbps[len(res.mbps)-1])
		}
	}
	rep := &report{opts: o, started: started, load0: load0, results: []*pathResult{
		results["floor"], results["relay-min"], results["go-min"], results["go-min-raw"], results["socat"], results["vsp"], results["vsp-pipe"], results["vsp-plain"]}}

	if o.scale > 0 {
		fmt.Fprintf(stdout, "scale: %d ports against %d simulated devices ...\n", o.scale, o.scale)
		sr, err := runScale(ctx, bin, scaleOptions{ports: o.scale, idle: o.idle, pings: o.pings, dir: filepath.Join(work, "scale"), profile: o.profile, simTLS: o.simTLS}, stdout)
		if err != nil {
			return fmt.Errorf("scale: %w (logs in %s; use -keep)", err, work)
		}
		rep.scale = &sr
	}
	ws := &workspace{o: o, bin: bin, dir: work, stdout: stdout}
	if o.scale > 0 && o.churn > 0 {
		if err := churnAll(ctx, ws, rep); err != nil {
			return fmt.Errorf("churn: %w (logs in %s; use -keep)", err, work)
		}
	}
	if o.settings > 0 {
		builds, err := ws.allBuilds(ctx)
		if err != nil {
			return fmt.Errorf("settings: %w", err)
		}
		if rep.settings, err = settingsAll(ctx, o, builds, work, stdout); err != nil {
			return fmt.Errorf("settings: %w (logs in %s; use -keep)", err, work)
		}
	}
	if o.busy > 0 {
		if _, err := exec.LookPath("socat"); err != nil {
			fmt.Fprintf(stdout, "busy scenario SKIPPED: %v\n", err)
		} else {
			fmt.Fprintf(stdout, "busy: %d ports, %d polls per port per second, through vsp, vsp-plain, go-min, relay-min and socat ...\n", o.busy, o.busyRate)
			br, err := runBusy(ctx, bin, o.busy, o.busyRate, o.busyWin, o.profile, o.simTLS, filepath.Join(work, "busy"), stdout)
			if err != nil {
				return fmt.Errorf("busy: %w (logs in %s; use -keep)", err, work)
			}
			rep.busy = &br
		}
	}
	if o.restarts > 0 {
		fmt.Fprintf(stdout, "recovery: %d device restarts ...\n", o.restarts)
		rr, err := runRecovery(ctx, bin, o.restarts, o.profile, o.simTLS, filepath.Join(work, "recovery"), stdout)
		if err != nil {
			return fmt.Errorf("recovery: %w (logs in %s; use -keep)", err, work)
		}
		rep.recovery = &rr
	}
	rep.load1 = loadAvg()
	rep.elapsed = time.Since(started)
	rep.table(stdout)
	if o.out != "" {
		if err := rep.write(o.out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s and %s\n", filepath.Join(o.out, "performance.md"), filepath.Join(o.out, svgName))
	}
	return nil
}

// build is a vsp binary and the name it is reported under.
type build struct{ name, vsp string }

// allBuilds returns the -base builds (built once, on first use) followed by
// this one.
func (w *workspace) allBuilds(ctx context.Context) ([]build, error) {
	if w.builds != nil {
		return w.builds, nil
	}
	var bs []build
	if w.o.base != "" {
		for i, ref := range strings.Split(w.o.base, ",") {
			ref = strings.TrimSpace(ref)
			if ref == "" {
				continue
			}
			fmt.Fprintf(w.stdout, "building vsp from %s ...\n", ref)
			b, err := buildBase(ctx, ref, filepath.Join(w.dir, fmt.Sprintf("base%d", i)))
			if err != nil {
				return nil, err
			}
			bs = append(bs, build{ref, b})
		}
	}
	w.builds = append(bs, build{"this build", w.bin.vsp})
	return w.builds, nil
}

// workspace is what the scenarios of one bench run share.
type workspace struct {
	o      options
	bin    binaries
	dir    string
	stdout io.Writer
	builds []build
}

// churnAll runs the churn scenario o.churnRun times on this build and,
// with -base, as often on the base builds, interleaved.
func churnAll(ctx context.Context, w *workspace, rep *report) error {
	builds, err := w.allBuilds(ctx)
	if err != nil {
		return err
	}
	o := w.o
	fmt.Fprintf(w.stdout, "churn: %d cycles at %d ports ...\n", o.churn, o.scale)
	for r := range o.churnRun {
		for i, b := range builds {
			dir := filepath.Join(w.dir, fmt.Sprintf("churn%d-%d", r, i))
			res, err := runChurn(ctx, b.vsp, w.bin.ezsim, b.name, o.scale, o.churn, o.profile, o.simTLS, dir, w.stdout)
			if err != nil {
				return err
			}
			rep.churn = append(rep.churn, res)
		}
	}
	return nil
}

// measure runs one repetition on p: bring it up, wait for the echo, the
// RTT series, the stream, tear it down.
func measure(p path, o options, data []byte) ([]time.Duration, time.Duration, error) {
	tty, err := p.Start()
	if err != nil {
		_ = p.Stop()
		return nil, 0, err
	}
	app, err := openApp(tty)
	if err != nil {
		_ = p.Stop()
		return nil, 0, err
	}
	stop := func() error { return errors.Join(app.Close(), p.Stop()) }
	if err := app.waitEcho(30 * time.Second); err != nil {
		return nil, 0, errors.Join(err, stop())
	}
	// A short warm-up, then the series.
	if _, err := app.rtt(50, 5*time.Second); err != nil {
		return nil, 0, errors.Join(err, stop())
	}
	rtts, err := app.rtt(o.pings, 5*time.Second)
	if err != nil {
		return nil, 0, errors.Join(err, stop())
	}
	el, err := app.stream(data, o.chunk, 2*time.Minute)
	if err != nil {
		return nil, 0, errors.Join(fmt.Errorf("stream: %w", err), stop())
	}
	return rtts, el, stop()
}

// lockThread wires the calling goroutine to its OS thread for good (the
// thread ends with the goroutine).
func lockThread() { runtime.LockOSThread() }

// loadAvg returns /proc/loadavg's three load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
