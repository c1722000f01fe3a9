//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/monitor"
	"golang.org/x/sys/unix"
)

// startMonitor runs `vsp monitor args...` against d and waits until it
// watches every port it was given (its first records).
func startMonitor(t *testing.T, d *daemon, ports int, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bins.Build(t, "vsp"), append([]string{"monitor", "--socket", d.socket}, args...)...)
	p := runProc(t, "vsp monitor", cmd)
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("vsp monitor did not end cleanly on SIGINT: %v\n%s", err, p.output())
		}
		if t.Failed() {
			t.Logf("vsp monitor %s output:\n%s", strings.Join(args, " "), p.output())
		}
	})
	from := 0
	for range ports {
		_, from = p.waitLine("watching", from, 10*time.Second)
		from++
	}
	return p
}

// awaitNil polls check until it returns nil; on timeout the test fails
// with its last error.
func awaitNil(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	testenv.Await(t, timeout, "condition", check, func(err error) bool { return err == nil })
}

// index returns the line number of the first line at or after from that
// contains every one of subs, or -1.
func index(lines []string, from int, subs ...string) int {
next:
	for i := from; i < len(lines); i++ {
		for _, s := range subs {
			if !strings.Contains(lines[i], s) {
				continue next
			}
		}
		return i
	}
	return -1
}

// Acceptance 1 and 2: an application's bytes to ezsim's echo show twice in
// `vsp monitor`, once per direction, with the events in order around them
// (open, settings change, data, device restart, close); a second monitor
// with --json sees the same; the [trace] file holds the same, mode 0600.
func TestMonitorBytesAndEvents(t *testing.T) {
	d := startDaemon(t)
	addr := freeAddr(t)
	simArgs := []string{"--listen", addr, "--serial", "echo", "--console", "off"}
	sim := startEzsim(t, simArgs...)
	link := tempLink(t)
	trace := filepath.Join(t.TempDir(), "mon.trace")
	d.vsp(t, "create", "mon", "--device", sim.addr, "--tls", "off", "--link", link, "--trace", trace)
	d.waitState(t, "mon", 10*time.Second, func(s service.PortState) bool { return s.State == bridge.StateUp && s.Trace == trace })

	hexMon := startMonitor(t, d, 1, "mon")
	jsonMon := startMonitor(t, d, 1, "--json", "mon")

	app := openApp(t, link)
	hexMon.waitLine("-- open", 0, 10*time.Second)
	setAppSerial(t, app, 19200, false, false)
	hexMon.waitLine("-- settings: 19200 ", 0, 10*time.Second)
	msg := []byte{0x01, 0x02, 0x41, 0x42, 0x43, 0xff}
	expectEcho(t, app, msg)
	const dump = "01 02 41 42 43 ff"
	hexMon.waitLine("dev>app 00000000  "+dump, 0, 10*time.Second)

	if err := sim.stop(); err != nil {
		t.Fatalf("stop ezsim: %v", err)
	}
	hexMon.waitLine("-- link-down", 0, 10*time.Second)
	startEzsim(t, simArgs...)
	hexMon.waitLine("-- link-up", 0, 20*time.Second)
	app.Close()
	hexMon.waitLine("-- close", 0, 10*time.Second)

	lines := strings.Split(hexMon.output(), "\n")
	at := 0
	for _, want := range [][]string{
		{"-- open"},
		{"-- settings: 19200 "},
		{"app>dev 00000000  " + dump, "|..ABC.|"},
		{"dev>app 00000000  " + dump, "|..ABC.|"},
		{"-- link-down"},
		{"-- link-up", addr},
		{"-- close"},
	} {
		i := index(lines, at, want...)
		if i < 0 {
			t.Fatalf("no line with %q after line %d (events out of order or missing)", want, at)
		}
		at = i + 1
	}
	// The timestamp has microseconds: "2006-01-02 15:04:05.000000 ".
	if i := index(lines, 0, "app>dev"); len(lines[i]) < 27 || lines[i][19] != '.' || lines[i][26] != ' ' {
		t.Errorf("timestamp without microseconds: %q", lines[i])
	}

	// --json: one record a line, the bytes each way.
	jsonMon.waitLine(`"kind":"close"`, 0, 10*time.Second)
	dirs := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(jsonMon.output()), "\n") {
		var r monitor.Record
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("--json line %q: %v", l, err)
		}
		if r.Port != "mon" {
			t.Errorf("record of port %q, want mon: %s", r.Port, l)
		}
		if r.Kind == monitor.KindData && bytes.Equal(r.Data, msg) {
			dirs[r.Dir] = true
		}
	}
	if !dirs[monitor.ToDevice] || !dirs[monitor.ToApp] {
		t.Errorf("--json: the 6 bytes seen in directions %v, want both", dirs)
	}

	// The trace file: the same records, 0600.
	awaitNil(t, 10*time.Second, func() error {
		b, err := os.ReadFile(trace)
		if err != nil {
			return err
		}
		for _, want := range []string{"app>dev 00000000  " + dump, "dev>app 00000000  " + dump, "-- link-down", "-- close"} {
			if !bytes.Contains(b, []byte(want)) {
				return fmt.Errorf("trace %s has no %q:\n%s", trace, want, b)
			}
		}
		return nil
	})
	if fi, err := os.Stat(trace); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("trace file mode: %v %v, want 0600", fi.Mode(), err)
	}
}

// Several ports at once: `vsp monitor` alone shows every port, `vsp
// monitor a b` those named, each line with the port's name; an unknown
// name is an error.
func TestMonitorAllPorts(t *testing.T) {
	d := startDaemon(t)
	dir := t.TempDir()
	for _, n := range []string{"pa", "pb"} {
		sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off") // one session each
		d.vsp(t, "create", n, "--device", sim.addr, "--tls", "off", "--link", filepath.Join(dir, n))
		d.waitState(t, n, 10*time.Second, func(s service.PortState) bool { return s.State == bridge.StateUp })
	}
	all := startMonitor(t, d, 2)
	named := startMonitor(t, d, 2, "pa", "pb")
	for _, n := range []string{"pa", "pb"} {
		expectEcho(t, openApp(t, filepath.Join(dir, n)), []byte("hello "+n))
	}
	for _, m := range []*proc{all, named} {
		for _, n := range []string{"pa", "pb"} {
			m.waitLine(" "+n+" dev>app 00000000  68 65 6c 6c 6f 20 "+fmt.Sprintf("%x %x", n[0], n[1]), 0, 10*time.Second)
		}
	}
	// A deleted port ends with a "gone" record; the monitor goes on with
	// the other. The named monitor ends when both are gone; the monitor
	// of every port goes on, and watches a port created later.
	d.vsp(t, "delete", "pb")
	for _, m := range []*proc{all, named} {
		m.waitLine(" pb -- gone: the port was deleted", 0, 10*time.Second)
	}
	d.vsp(t, "delete", "pa")
	named.waitLine(" pa -- gone", 0, 10*time.Second)
	_, paGone := all.waitLine(" pa -- gone", 0, 10*time.Second)
	select {
	case <-named.done:
		if !named.cmd.ProcessState.Success() {
			t.Errorf("vsp monitor pa pb after its ports were deleted: %s", named.cmd.ProcessState)
		}
	case <-time.After(10 * time.Second):
		t.Error("vsp monitor pa pb still runs after every port it watched was deleted")
	}
	for _, n := range []string{"pc", "pa"} { // a new name, and a name that was deleted
		sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
		d.vsp(t, "create", n, "--device", sim.addr, "--tls", "off", "--link", filepath.Join(dir, n))
		all.waitLine(" "+n+" -- watching", paGone, 10*time.Second)
	}
	d.waitState(t, "pc", 10*time.Second, func(s service.PortState) bool { return s.State == bridge.StateUp })
	expectEcho(t, openApp(t, filepath.Join(dir, "pc")), []byte("hello pc"))
	all.waitLine(" pc dev>app 00000000  68 65 6c 6c 6f 20 70 63", 0, 10*time.Second)
	select {
	case <-all.done:
		t.Errorf("vsp monitor (every port) ended when the ports it watched were deleted: %s", all.cmd.ProcessState)
	default:
	}
	_, errOut, err := d.try(t, "monitor", "nosuch")
	if err == nil || !strings.Contains(errOut, `no running port "nosuch"`) {
		t.Errorf("vsp monitor nosuch: err %v, stderr %q; want an error naming the port", err, errOut)
	}
}

// Acceptance 3: a monitor that does not read loses records, never slows
// the port, and its output says how much it missed.
func TestMonitorSlowReader(t *testing.T) {
	d := startDaemon(t)
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	link := tempLink(t)
	d.vsp(t, "create", "slow", "--device", sim.addr, "--tls", "off", "--link", link)
	d.waitState(t, "slow", 10*time.Second, func(s service.PortState) bool { return s.State == bridge.StateUp })

	cmd := exec.Command(bins.Build(t, "vsp"), "monitor", "--socket", d.socket, "slow")
	out, err := cmd.StdoutPipe() // not read until the traffic is over
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	r := bufio.NewReader(out)
	first, err := r.ReadString('\n')
	if err != nil || !strings.Contains(first, "watching") {
		t.Fatalf("first monitor line %q, %v", first, err)
	}
	app := openApp(t, link)
	// 4 MiB each way: far more than the pipe, the socket and the queue hold.
	for i := range 128 {
		expectEcho(t, app, pattern(32<<10, byte(i)))
	}
	found := make(chan string, 1)
	go func() {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				found <- "end: " + err.Error()
				return
			}
			if strings.Contains(l, "-- dropped") {
				found <- l
				return
			}
		}
	}()
	// Records flow again once read; the next one carries the count.
	expectEcho(t, app, []byte("after"))
	select {
	case l := <-found:
		if !strings.Contains(l, "bytes not shown") {
			t.Fatalf("slow monitor: %q; want a dropped-bytes record", l)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("slow monitor never reported dropped records")
	}
}

// Acceptance 4 and the [trace] rules: with max_size small the trace
// rotates, at most max_files remain, each 0600 and ending on a whole
// record; json format gives one object a line.
func TestTraceRotation(t *testing.T) {
	d := startDaemon(t)
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	link := tempLink(t)
	trace := filepath.Join(t.TempDir(), "rot.trace")
	d.vsp(t, "create", "rot", "--device", sim.addr, "--tls", "off", "--link", link)
	file := filepath.Join(d.dir, "rot.toml")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("%s\n[trace]\nfile = %q\nmax_size = \"8KiB\"\nmax_files = 3\nformat = \"json\"\n", orig, trace)
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitState(t, "rot", 10*time.Second, func(s service.PortState) bool { return s.Trace == trace && s.State == bridge.StateUp })
	if out := d.vsp(t, "status", "rot"); !strings.Contains(out, "trace:") || !strings.Contains(out, trace) {
		t.Errorf("vsp status does not show the trace file:\n%s", out)
	}
	app := openApp(t, link)
	for i := range 20 {
		expectEcho(t, app, pattern(1000, byte(i)))
	}
	// Taking [trace] out closes the trace (live, as any [trace] change),
	// after writing what was queued: the files are final then.
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitState(t, "rot", 10*time.Second, func(s service.PortState) bool { return s.Trace == "" })
	files := []string{trace, trace + ".1", trace + ".2"}
	if _, err := os.Lstat(trace + ".3"); !os.IsNotExist(err) {
		t.Errorf("%s.3 exists (%v): max_files = 3 keeps three files", trace, err)
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || fi.Size() > 8<<10 || fi.Size() == 0 {
			t.Errorf("%s: mode %v size %d; want 0600, at most 8KiB", f, fi.Mode(), fi.Size())
		}
		b, _ := os.ReadFile(f)
		if !bytes.HasSuffix(b, []byte("\n")) {
			t.Errorf("%s does not end on a whole record", f)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var r monitor.Record
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("%s: line %q: %v", f, l, err)
			}
		}
	}
}

// A symlink another user planted at the trace path is refused: the port
// runs, untraced, and says why; the symlink's target is not touched.
func TestTraceForeignSymlinkRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "root (to plant a symlink owned by another user)")
	}
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	if err := os.WriteFile(target, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(dir, "port.trace")
	if err := os.Symlink(target, trace); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(trace, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	link := tempLink(t)
	vsp := startVsp(t, link, "--device", sim.addr, "--tls", "off", "--trace", trace)
	l, _ := vsp.waitLine("trace file not written", 0, 10*time.Second)
	if !strings.Contains(l, "symlink owned by uid 65534") {
		t.Errorf("log line %q does not say whose symlink was refused", l)
	}
	expectEcho(t, openApp(t, link), []byte("still bridged\n"))
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("the symlink's target was written: %q", b)
	}
}

// A change of [trace] alone applies without touching the tty: an
// application holding the port open sees no hang-up, the link is not
// redialed (connects stays), and the new trace file fills.
func TestTraceEditNoHangup(t *testing.T) {
	d := startDaemon(t)
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	link := tempLink(t)
	d.vsp(t, "create", "live", "--device", sim.addr, "--tls", "off", "--link", link)
	before := d.waitState(t, "live", 10*time.Second, func(s service.PortState) bool { return s.State == bridge.StateUp })
	app := openApp(t, link)
	hup := watchHangup(t, link)
	expectEcho(t, app, []byte("before\n"))

	trace := filepath.Join(t.TempDir(), "live.trace")
	file := filepath.Join(d.dir, "live.toml")
	orig, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	from := d.lineCount()
	if err := os.WriteFile(file, fmt.Appendf(orig, "\n[trace]\nfile = %q\n", trace), 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitState(t, "live", 10*time.Second, func(s service.PortState) bool { return s.Trace == trace })
	d.waitLine("[trace] only; applied without a restart", from, 10*time.Second)
	expectEcho(t, app, []byte("traced\n"))
	awaitNil(t, 10*time.Second, func() error {
		b, err := os.ReadFile(trace)
		if err != nil || !bytes.Contains(b, []byte("|traced.|")) {
			return fmt.Errorf("trace %s: %q %v", trace, b, err)
		}
		return nil
	})
	after := d.waitState(t, "live", time.Second, func(service.PortState) bool { return true })
	if after.Connects != before.Connects {
		t.Errorf("connects went from %d to %d: the [trace] edit restarted the link", before.Connects, after.Connects)
	}
	if h := hup(); h != "" {
		t.Errorf("application saw %s after a [trace] edit", h)
	}
	// Removing [trace] stops it, again live.
	if err := os.WriteFile(file, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitState(t, "live", 10*time.Second, func(s service.PortState) bool { return s.Trace == "" })
}

// The daemon serves at most service.MaxMonitors (64) monitor streams at once: one more gets a
// clear error, and a stream that ends frees its place.
func TestMonitorLimit(t *testing.T) {
	d := startDaemon(t)
	hc := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 0, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	var bodies []io.ReadCloser
	t.Cleanup(func() {
		for _, b := range bodies {
			_ = b.Close()
		}
	})
	for i := range service.MaxMonitors {
		resp, err := hc.Get("http://vsp/v1/monitor")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("monitor stream %d: %s %s", i+1, resp.Status, b)
		}
		bodies = append(bodies, resp.Body)
	}
	_, errOut, err := d.try(t, "monitor")
	if err == nil || !strings.Contains(errOut, fmt.Sprintf("too many monitors: %d streams are open", service.MaxMonitors)) {
		t.Fatalf("vsp monitor with all streams open: err %v, stderr %q; want the limit named", err, errOut)
	}
	_ = bodies[0].Close()
	bodies = bodies[1:]
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	d.vsp(t, "create", "lim", "--device", sim.addr, "--tls", "off", "--link", tempLink(t))
	startMonitor(t, d, 1) // the freed place; it shows the port
}

// An application's tcflush shows in `vsp monitor` in order with its data:
// input and output, and on an RFC 2217 port that it went to the device.
func TestMonitorShowsFlushes(t *testing.T) {
	d := startDaemon(t)
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off", "--rfc2217")
	link := tempLink(t)
	d.vsp(t, "create", "fl", "--device", sim.addr, "--tls", "off", "--rfc2217", "--link", link)
	d.waitState(t, "fl", 10*time.Second, func(s service.PortState) bool { return s.State == bridge.StateUp })
	mon := startMonitor(t, d, 1, "fl")
	app := openApp(t, link)
	expectEcho(t, app, []byte("before"))
	rc, err := app.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []int{unix.TCIFLUSH, unix.TCOFLUSH} {
		var ferr error
		if err := rc.Control(func(fd uintptr) { ferr = unix.IoctlSetInt(int(fd), unix.TCFLSH, q) }); err != nil || ferr != nil {
			t.Fatalf("tcflush: %v %v", err, ferr)
		}
	}
	expectEcho(t, app, []byte("after"))
	_, i := mon.waitLine("app>dev 00000000  62 65 66 6f 72 65", 0, 10*time.Second) // "before"
	_, i = mon.waitLine("-- flush: input (tcflush TCIFLUSH), PURGE-DATA sent to the device", i, 10*time.Second)
	_, i = mon.waitLine("-- flush: output (tcflush TCOFLUSH), PURGE-DATA sent to the device", i, 10*time.Second)
	mon.waitLine("app>dev 00000000  61 66 74 65 72", i, 10*time.Second) // "after"
}
