//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/tlsconn"
)

// scaleOptions configure the scale scenario.
type scaleOptions struct {
	ports   int
	idle    time.Duration // idle window for the CPU and wake-up figures
	pings   int           // RTT samples on one port while the others idle
	dir     string
	profile string
	simTLS  string // ezsim --server-tls; "" = ezsim's default
	inProc  int    // ports started in-process to measure each port's footprint; 0 = 50
}

// scaleResult is what the scale scenario measured.
type scaleResult struct {
	ports         int
	simUp         time.Duration // ezsim start until every device listened
	upIn          time.Duration // daemon start until every port's link was up
	rssKB         int64         // daemon RSS after the idle window
	threads       int
	idleCPU       float64 // share of one core over the idle window
	idleWindow    time.Duration
	wakeups       float64 // context switches per second, whole daemon, idle
	echoed        int     // ports that echoed a byte
	rtt           []time.Duration
	footprint     footprint // per port, in-process
	inotifyLimit  int
	inotifyNeeded int
}

// portState is the part of the control socket's PortState used here.
type portState struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Link  string `json:"link"`
	Error string `json:"error"`
	// AppOpen: an application has the port's tty open.
	AppOpen bool `json:"app_open"`
}

// runScale starts one ezsim process with opts.ports devices and one vsp
// daemon with a port file per device, and measures start-up, memory, idle
// cost and round-trip time on one port while the others idle.
func runScale(ctx context.Context, bin binaries, o scaleOptions, progress io.Writer) (res scaleResult, err error) {
	res.ports = o.ports
	res.inotifyLimit = readInt("/proc/sys/fs/inotify/max_user_instances")
	// The configuration watch and one open/close watch shared by every port
	// (plus one per in-process port started to count goroutines).
	res.inotifyNeeded = 2
	f, err := startFleet(ctx, bin.vsp, bin.ezsim, o.ports, o.profile, o.simTLS, o.dir, progress)
	if f != nil {
		defer func() { err = errors.Join(err, f.stop()) }()
	}
	if err != nil {
		return res, err
	}
	res.simUp, res.upIn = f.simUp, f.upIn
	daemon, names, devDir, logf, addrs, fps := f.daemon, f.names, f.devDir, f.logf, f.addrs, f.fps

	// Idle: nothing moves; only keep-alive (in the kernel) and the termios
	// fallback poll should wake the daemon.
	time.Sleep(2 * time.Second)
	s0, err := readProcStat(daemon.pid())
	if err != nil {
		return res, err
	}
	if !sleepCtx(ctx, o.idle) {
		return res, ctx.Err()
	}
	s1, err := readProcStat(daemon.pid())
	if err != nil {
		return res, err
	}
	res.idleWindow = s1.at.Sub(s0.at)
	res.idleCPU = cpuShare(s0, s1)
	// Summed over the threads alive at each reading: a thread that exits
	// in between takes its count along, so guard the difference.
	if s1.switches >= s0.switches {
		res.wakeups = float64(s1.switches-s0.switches) / res.idleWindow.Seconds()
	}
	res.rssKB, res.threads = s1.rssKB, s1.threads
	fmt.Fprintf(progress, "  idle %v: CPU %.2f%% of one core, %.0f context switches/s, RSS %.1f MiB, %d threads\n",
		res.idleWindow.Round(time.Second), 100*res.idleCPU, res.wakeups, float64(res.rssKB)/1024, res.threads)

	// One port busy while the others idle.
	app, err := openApp(filepath.Join(devDir, names[0]))
	if err != nil {
		return res, err
	}
	if err := app.waitEcho(10 * time.Second); err != nil {
		app.Close()
		return res, fmt.Errorf("port %s: %w", names[0], err)
	}
	res.rtt, err = app.rtt(o.pings, 5*time.Second)
	app.Close()
	if err != nil {
		return res, fmt.Errorf("port %s: %w", names[0], err)
	}
	fmt.Fprintf(progress, "  one port busy, %d idle: rtt p50 %.1f µs p99 %.1f µs\n", o.ports-1,
		us(quantile(res.rtt, 0.5)), us(quantile(res.rtt, 0.99)))

	// Data flows on every port.
	var failed []string
	for i, n := range names {
		if err := pingPort(filepath.Join(devDir, n), byte(i)); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", n, err))
			if len(failed) >= 3 {
				break // do not wait out every dead port
			}
			continue
		}
		res.echoed++
	}
	fmt.Fprintf(progress, "  data flows on %d of %d ports\n", res.echoed, o.ports)
	if len(failed) > 0 {
		hint := ""
		if w := countLines(logf, "cannot watch application open/close"); w > 0 {
			hint = fmt.Sprintf(" (%d ports could not watch application opens, see %s: their bridges drop device data as if no application had the port open)", w, logf)
		}
		return res, fmt.Errorf("vspbench: no echo on %v%s", failed, hint)
	}
	if err := f.daemon.stop(); err != nil {
		return res, err
	}

	// Each port's footprint, measured in this process with the bridge
	// package (the daemon exports neither its goroutine count nor its
	// heap).
	k := o.inProc
	if k == 0 {
		k = 50
	}
	k = min(k, o.ports)
	res.footprint, err = portFootprint(ctx, addrs[:k], fps[:k], o.profile, o.dir)
	if err != nil {
		return res, err
	}
	fmt.Fprintf(progress, "  per port (in-process, %d ports): %s\n", k, res.footprint)
	return res, nil
}

// fleet is one ezsim process with n devices and one vsp daemon with a port
// file per device, every link up (or, without ezsim, a vsp daemon with a
// port file per address in addrs: startDaemon).
type fleet struct {
	sim, daemon  *proc
	names        []string // port names; the links are devDir/name
	devDir, logf string
	addrs, fps   []string // device addresses and certificate pins
	simUp, upIn  time.Duration
}

// startFleet starts ezsim with n devices and the vsp daemon (the given
// binaries) with a port file per device under dir, and waits until every
// link is up. When it returns a fleet, stop it, also after an error.
func startFleet(ctx context.Context, vspBin, ezsimBin string, n int, profile, simTLS, dir string, progress io.Writer) (*fleet, error) {
	f := &fleet{logf: filepath.Join(dir, "scale.log")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	t0 := time.Now()
	var err error
	f.sim, err = startProc("ezsim", f.logf, append([]string{ezsimBin, "--count", strconv.Itoa(n), "--listen", "127.0.0.1:0",
		"--ssl", "--share-key", "--key-bits", "1024", "--serial", "echo", "--console", "off", "--log-level", "warn"},
		simTLSArgs(simTLS)...)...)
	if err != nil {
		return nil, err
	}
	if f.addrs, err = f.sim.waitLines("listen:", n, 5*time.Minute); err != nil {
		return f, err
	}
	if f.fps, err = f.sim.waitLines("fingerprint:", n, 10*time.Second); err != nil {
		return f, err
	}
	f.simUp = time.Since(t0)
	fmt.Fprintf(progress, "  ezsim: %d devices up in %v\n", n, f.simUp.Round(time.Millisecond))
	return f, f.startDaemon(ctx, vspBin, dir, func(i int) string {
		return fmt.Sprintf("tls = %q\n\n[trust]\npin = %q\n", profile, f.fps[i])
	}, progress)
}

// startDaemon writes a port file per address in f.addrs under dir/ports.d
// (link dir/dev/pNNNN, that device, then the lines rest(i) for port i),
// starts the vsp daemon on that directory and waits until every link is up.
func (f *fleet) startDaemon(ctx context.Context, vspBin, dir string, rest func(i int) string, progress io.Writer) error {
	n := len(f.addrs)
	f.devDir = filepath.Join(dir, "dev")
	portsDir := filepath.Join(dir, "ports.d")
	for _, d := range []string{portsDir, f.devDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	f.names = make([]string, n)
	for i := range n {
		f.names[i] = fmt.Sprintf("p%04d", i)
		body := fmt.Sprintf("link = %q\ndevice = %q\n", filepath.Join(f.devDir, f.names[i]), f.addrs[i]) + rest(i)
		if err := os.WriteFile(filepath.Join(portsDir, f.names[i]+".toml"), []byte(body), 0o644); err != nil {
			return err
		}
	}
	sock := filepath.Join(dir, "vsp.sock")
	t1 := time.Now()
	var err error
	if f.daemon, err = startProc("vsp daemon", f.logf, vspBin, "run", "--config-dir", portsDir, "--socket", sock, "--log-format", "text"); err != nil {
		return err
	}
	hc := unixHTTP(sock)
	var states []portState
	for {
		if time.Since(t1) > 2*time.Minute || f.daemon.exited() {
			return fmt.Errorf("vspbench: %d of %d ports up after %v (see %s)", countUp(states), n, time.Since(t1).Round(time.Second), f.logf)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		states, err = getPorts(ctx, hc)
		if err == nil && len(states) == n && countUp(states) == n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.upIn = time.Since(t1)
	fmt.Fprintf(progress, "  vsp daemon: %d ports up in %v\n", n, f.upIn.Round(time.Millisecond))
	return nil
}

// links are the ports' links.
func (f *fleet) links() []string {
	l := make([]string, len(f.names))
	for i, name := range f.names {
		l[i] = filepath.Join(f.devDir, name)
	}
	return l
}

// stop stops the daemon and ezsim, those that were started (each once;
// stopping twice is harmless).
func (f *fleet) stop() error {
	var errs []error
	for _, p := range []*proc{f.daemon, f.sim} {
		if p != nil {
			errs = append(errs, p.stop())
		}
	}
	return errors.Join(errs...)
}

// pingPort opens a port, checks one byte comes back, and closes it.
func pingPort(link string, c byte) error {
	app, err := openApp(link)
	if err != nil {
		return err
	}
	defer app.Close()
	return app.ping(c, time.Now().Add(5*time.Second))
}

// footprint is what one idle port with its link up costs in a process.
type footprint struct {
	goroutines float64
	heapKiB    float64 // live heap (after a GC)
	stackKiB   float64 // goroutine stacks in use
}

func (f footprint) String() string {
	return fmt.Sprintf("%.1f goroutines, %.1f KiB of heap, %.1f KiB of stacks", f.goroutines, f.heapKiB, f.stackKiB)
}

// portFootprint starts one in-process port per device, sharing one
// open/close watcher as the daemon's ports do, and returns what each adds
// once its link is up: goroutines, live heap and stacks.
func portFootprint(ctx context.Context, addrs, fps []string, profile, dir string) (footprint, error) {
	prof, err := tlsconn.ParseProfile(profile)
	if err != nil {
		return footprint{}, err
	}
	w, err := pty.NewOpenWatcher(nil)
	if err != nil {
		return footprint{}, err
	}
	defer w.Close()
	var ms0, ms1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	before := runtime.NumGoroutine()
	var ports []*bridge.Port
	defer func() {
		for _, p := range ports {
			p.Close()
		}
	}()
	for i := range addrs {
		p, err := bridge.StartPort(bridge.PortSpec{
			Name:    fmt.Sprintf("g%d", i),
			Devices: []string{addrs[i]},
			PTY:     pty.Config{Link: filepath.Join(dir, fmt.Sprintf("g%d", i)), Watcher: w},
			Link:    tlsconn.Config{Profile: prof, Pin: fps[i]},
		}, slog.New(slog.DiscardHandler))
		if err != nil {
			return footprint{}, err
		}
		ports = append(ports, p)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		up := 0
		for _, p := range ports {
			if p.Status().State == bridge.StateUp {
				up++
			}
		}
		if up == len(ports) {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return footprint{}, fmt.Errorf("vspbench: in-process ports: %d of %d up", up, len(ports))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	n := float64(len(ports))
	g := float64(runtime.NumGoroutine()-before) / n
	runtime.GC()
	runtime.ReadMemStats(&ms1)
	return footprint{
		goroutines: g,
		heapKiB:    (float64(ms1.HeapAlloc) - float64(ms0.HeapAlloc)) / 1024 / n,
		stackKiB:   (float64(ms1.StackInuse) - float64(ms0.StackInuse)) / 1024 / n,
	}, nil
}

func countUp(states []portState) int {
	n := 0
	for _, s := range states {
		if s.State == bridge.StateUp {
			n++
		}
	}
	return n
}

func unixHTTP(sock string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func getPorts(ctx context.Context, hc *http.Client) ([]portState, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://vsp/v1/ports", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out []portState
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// countLines counts the lines of a file that contain substr.
func countLines(path, substr string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), substr)
}

func readInt(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// recoveryResult is what the recovery scenario measured.
type recoveryResult struct {
	restarts int
	times    []time.Duration // device listening again until the first byte echoed
}

// runRecovery restarts ezsim n times under a live vsp port and measures,
// each time, how long after the device listens again the first byte the
// application writes comes back.
func runRecovery(ctx context.Context, bin binaries, n int, profile, simTLS, dir string, progress io.Writer) (res recoveryResult, err error) {
	res.restarts = n
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	logf := filepath.Join(dir, "recovery.log")
	port, err := freePort()
	if err != nil {
		return res, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	flash := filepath.Join(dir, "flash.json")
	startSim := func() (*proc, string, error) {
		p, err := startProc("ezsim", logf, append([]string{bin.ezsim, "--listen", addr, "--ssl", "--key-bits", "1024",
			"--serial", "echo", "--console", "off", "--flash", flash, "--log-level", "warn"}, simTLSArgs(simTLS)...)...)
		if err != nil {
			return nil, "", err
		}
		fp, err := p.waitLines("fingerprint:", 1, 30*time.Second)
		if err != nil {
			return p, "", err
		}
		return p, fp[0], nil
	}
	sim, fp, err := startSim()
	defer func() {
		if sim != nil {
			err = errors.Join(err, sim.stop())
		}
	}()
	if err != nil {
		return res, err
	}
	link := filepath.Join(dir, "tty")
	vsp, err := startProc("vsp", logf, bin.vsp, "run", "--device", addr, "--link", link, "--tls", profile, "--pin", fp, "--log-format", "text")
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, vsp.stop()) }()
	if err := waitFile(link, 10*time.Second); err != nil {
		return res, err
	}
	app, err := openApp(link)
	if err != nil {
		return res, err
	}
	defer app.Close()
	if err := app.waitEcho(30 * time.Second); err != nil {
		return res, err
	}
	for i := 0; i < n; i++ {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		// Keep the session up a little (a real one lasts much longer; the
		// bridge resets its redial backoff after a session of 1 s), take
		// the device away for a moment, bring it back, and time the first
		// byte after it listens again.
		time.Sleep(1200 * time.Millisecond)
		if err := sim.stop(); err != nil {
			return res, err
		}
		time.Sleep(200 * time.Millisecond)
		var fp2 string
		sim, fp2, err = startSim()
		if err != nil {
			return res, err
		}
		if fp2 != fp {
			return res, fmt.Errorf("vspbench: ezsim came back with certificate %s, not %s (flash not kept?)", fp2, fp)
		}
		back := time.Now()
		c := byte(0x30 + i)
		if err := app.ping(c, back.Add(20*time.Second)); err != nil {
			return res, fmt.Errorf("restart %d: %w", i+1, err)
		}
		res.times = append(res.times, time.Since(back))
	}
	med, _, hi := durSpread(res.times)
	fmt.Fprintf(progress, "  first byte after the device is back: median %v, max %v\n",
		med.Round(time.Millisecond), hi.Round(time.Millisecond))
	return res, nil
}

// simTLSArgs passes -sim-tls on to ezsim.
func simTLSArgs(p string) []string {
	if p == "" {
		return nil
	}
	return []string{"--server-tls", p}
}
