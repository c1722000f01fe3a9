//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
)

// sdStore plays systemd's part for `vsp run`: the notification socket
// (READY=1, STATUS=, WATCHDOG=1, STOPPING=1) and the file-descriptor store
// it fills with FDSTORE=1 and empties with FDSTOREREMOVE=1; it starts the
// daemon with the stored files as LISTEN_FDS and LISTEN_FDNAMES, as
// systemd does after a crash or a restart.
type sdStore struct {
	t      *testing.T
	ns     *testenv.NotifySocket
	dir    string // port files
	socket string // control socket
	known  string

	seen  int          // notifications applied to the store
	names []string     // stored names, in the order they came
	files [][]*os.File // files per name
}

func newSDStore(t *testing.T) *sdStore {
	tmp := t.TempDir()
	return &sdStore{t: t, ns: testenv.NewNotifySocket(t, false),
		dir: filepath.Join(tmp, "ports.d"), socket: filepath.Join(tmp, "vsp.sock"), known: filepath.Join(tmp, "known")}
}

// sync applies the notifications received so far to the store.
func (s *sdStore) sync() {
	for _, m := range s.ns.Since(s.seen) {
		s.seen++
		name, _ := m.Var("FDNAME")
		if v, _ := m.Var("FDSTORE"); v == "1" {
			s.add(name, m.Files)
		}
		if v, _ := m.Var("FDSTOREREMOVE"); v == "1" {
			s.remove(name)
		}
	}
}

func (s *sdStore) add(name string, files []*os.File) {
	for i, n := range s.names {
		if n == name {
			s.files[i] = append(s.files[i], files...)
			return
		}
	}
	s.names = append(s.names, name)
	s.files = append(s.files, files)
}

// remove closes the files stored under name, as systemd does.
func (s *sdStore) remove(name string) {
	for i, n := range s.names {
		if n == name {
			for _, f := range s.files[i] {
				f.Close()
			}
			s.names = append(s.names[:i], s.names[i+1:]...)
			s.files = append(s.files[:i], s.files[i+1:]...)
			return
		}
	}
}

// stored returns the names in the store, sorted.
func (s *sdStore) stored() string {
	s.sync()
	n := append([]string(nil), s.names...)
	for i := range n {
		n[i] += fmt.Sprintf("×%d", len(s.files[i]))
	}
	return strings.Join(sortedCopy(n), " ")
}

// holdInOutage opens port plc's tty at link as an application, sends first
// through dev, takes dev down and writes held, and waits until vsp holds
// held in its outage buffer (not in the pty). write writes more as the
// application; want is everything written, for the device to receive.
func (s *sdStore) holdInOutage(dev *testenv.Device, link string, first, held []byte) (app *os.File, tty string, write func([]byte), want *bytes.Buffer) {
	t := s.t
	t.Helper()
	app = openApp(t, link)
	tty, _ = os.Readlink(link)
	want = new(bytes.Buffer)
	write = func(b []byte) {
		t.Helper()
		if _, err := app.Write(b); err != nil {
			t.Fatalf("application write: %v", err)
		}
		want.Write(b)
	}
	write(first)
	dev.WaitGot(want.Bytes(), 10*time.Second)
	dev.Down()
	s.waitState("plc", "the link down", func(st service.PortState) bool { return st.State != bridge.StateUp })
	write(held)
	s.waitState("plc", "the bytes in the outage buffer", func(st service.PortState) bool { return st.Buffered == len(held) })
	return app, tty, write, want
}

func sortedCopy(a []string) []string {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}

// start runs `vsp run` as systemd would, with what the store holds; env
// overrides the defaults (FDSTORE=64, WATCHDOG_USEC=1000000).
func (s *sdStore) start(env ...string) *proc {
	s.t.Helper()
	s.sync()
	var names []string
	var extra []*os.File
	for i, n := range s.names {
		for _, f := range s.files[i] {
			names = append(names, n)
			extra = append(extra, f)
		}
	}
	// LISTEN_PID must be the daemon's own pid: the shell sets it to its
	// own and execs vsp in its place.
	cmd := exec.Command("/bin/sh", "-c", `export LISTEN_PID=$$; exec "$0" "$@"`,
		bins.Build(s.t, "vsp"), "run", "--log-format", "json", "--config-dir", s.dir, "--socket", s.socket,
		"--known-devices", s.known)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+s.ns.Path, "FDSTORE=64", "WATCHDOG_USEC=1000000")
	cmd.Env = append(cmd.Env, env...)
	if len(extra) > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("LISTEN_FDS=%d", len(extra)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
		cmd.ExtraFiles = extra
	}
	p := runProc(s.t, "vsp", cmd)
	s.t.Cleanup(func() {
		_ = p.stop()
		if s.t.Failed() {
			s.t.Logf("vsp (pid %d) output:\n%s", p.cmd.Process.Pid, p.output())
		}
	})
	return p
}

// kill ends the daemon with SIGKILL and waits for it.
func kill(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
}

// terminate ends the daemon with SIGTERM, as systemctl stop and restart
// do, and checks that it exited cleanly.
func terminate(t *testing.T, p *proc) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines go to the output
		<-p.done
		t.Fatal("vsp did not exit within 20 s of SIGTERM")
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("vsp exited with %s after SIGTERM", p.cmd.ProcessState)
	}
}

func (s *sdStore) writePort(name, body string) {
	s.t.Helper()
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.dir, name+".toml"), []byte(body), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// status reads one port's state from the control socket.
func (s *sdStore) status(name string) (service.PortState, bool) {
	cmd := exec.Command(bins.Build(s.t, "vsp"), "status", "--json", "--socket", s.socket, name)
	out, err := cmd.Output()
	if err != nil {
		s.t.Logf("vsp status: %v", err)
		return service.PortState{}, false
	}
	var st service.PortState
	if err := json.Unmarshal(out, &st); err != nil {
		s.t.Fatalf("vsp status --json: %v\n%s", err, out)
	}
	return st, true
}

// waitState polls the port's state until ok accepts it.
func (s *sdStore) waitState(name, what string, ok func(service.PortState) bool) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, got := s.status(name)
		if got && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("port %s: no %s after 10 s; state %+v", name, what, st.Stats)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// noHangup fails if the application's fd reports a hang-up or an error
// (what every pty application sees when vsp closes the master).
func noHangup(t *testing.T, app *os.File, when string) {
	t.Helper()
	rc, err := app.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rev int16
	var perr error
	if err := rc.Control(func(fd uintptr) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		_, perr = unix.Poll(pfd, 0)
		rev = pfd[0].Revents
	}); err != nil {
		t.Fatal(err)
	}
	if perr != nil {
		t.Fatal(perr)
	}
	if rev&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
		t.Fatalf("%s: the application's fd polls %#x: hang-up or error", when, rev)
	}
}

// waitHangup waits until the application's fd reports a hang-up.
func waitHangup(t *testing.T, app *os.File, timeout time.Duration) {
	t.Helper()
	rc, err := app.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		var rev int16
		_ = rc.Control(func(fd uintptr) {
			pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			_, _ = unix.Poll(pfd, 100)
			rev = pfd[0].Revents
		})
		if rev&unix.POLLHUP != 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the application saw no hang-up within %v", timeout)
		}
	}
}

// exchange writes msg and expects it echoed back in full.
func exchange(t *testing.T, app *os.File, msg []byte) {
	t.Helper()
	if _, err := app.Write(msg); err != nil {
		t.Fatalf("application write: %v", err)
	}
	expectRead(t, app, msg, 20*time.Second)
}

// TestFDStoreSurvivesKill: `vsp run` under a service manager keeps each
// port's pty in the fd store; after SIGKILL the next process takes the
// pty over. The application, holding the port open and writing, never sees
// EIO, a hang-up or end of file; what it wrote while no vsp ran comes back
// through the device; the tty path and /dev/pts/N stay. Deleting the port
// file then takes its fds out of the store, and a pty kept for a port file
// removed while vsp was down is released at the next start.
func TestFDStoreSurvivesKill(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	s := newSDStore(t)
	link := filepath.Join(t.TempDir(), "ttyVSP0")
	s.writePort("plc", fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\nstale_data = \"keep\"\n", link, sim.addr))

	d1 := s.start()
	d1.waitLine(`"link up"`, 0, 20*time.Second)
	s.ns.WaitVar(0, 10*time.Second, "READY", "1")
	s.ns.Wait(0, 10*time.Second, "STATUS=1 port: 1 up", func(m testenv.Notification) bool {
		v, _ := m.Var("STATUS")
		return v == "1 port: 1 up"
	})
	// The watchdog beats from the main loop at half of WATCHDOG_USEC.
	_, i := s.ns.WaitVar(0, 5*time.Second, "WATCHDOG", "1")
	s.ns.WaitVar(i+1, 5*time.Second, "WATCHDOG", "1")
	if got := s.stored(); got != "p.plc.m×1 p.plc.s×1" {
		t.Fatalf("store holds %q, want the port's master and slave", got)
	}

	app := openApp(t, link)
	tty, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	exchange(t, app, []byte("before the crash "))

	// SIGKILL at a quiet moment (what vsp has read and not yet sent at the
	// instant of a crash is lost, as in any crash: see docs/reliability.md).
	killed := time.Now()
	kill(t, d1)
	noHangup(t, app, "after SIGKILL")
	gap := pattern(3000, 1) // written while no vsp runs: it waits in the pty
	if _, err := app.Write(gap); err != nil {
		t.Fatalf("application write while vsp is down: %v", err)
	}
	noHangup(t, app, "while vsp is down")

	d2 := s.start()
	first := make([]byte, 1)
	_ = app.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := app.Read(first); err != nil {
		t.Fatalf("application read after the restart: %v", err)
	}
	_ = app.SetReadDeadline(time.Time{})
	back := time.Since(killed)
	if first[0] != gap[0] {
		t.Fatalf("first byte back %#x, want %#x", first[0], gap[0])
	}
	expectRead(t, app, gap[1:], 20*time.Second)
	t.Logf("SIGKILL to the first byte echoed again: %v (restarted at once; systemd adds RestartSec=)", back.Round(time.Millisecond))
	d2.waitLine(`"pty taken over after vsp ended without a handover`, 0, 10*time.Second)
	if now, _ := os.Readlink(link); now != tty {
		t.Fatalf("link points at %s after the restart, was %s", now, tty)
	}
	if st, ok := s.status("plc"); !ok || st.TTY != tty {
		t.Fatalf("status after the restart: %+v (ok %v); want tty %s", st, ok, tty)
	}
	exchange(t, app, []byte("after the crash"))
	noHangup(t, app, "after the restart")
	if got := s.stored(); got != "p.plc.m×1 p.plc.s×1" {
		t.Fatalf("store holds %q after the restart, want the same two files", got)
	}

	// A port file removed while vsp is down: its pty is released at start.
	kill(t, d2)
	if err := os.Remove(filepath.Join(s.dir, "plc.toml")); err != nil {
		t.Fatal(err)
	}
	from := s.ns.Count()
	d3 := s.start()
	s.ns.WaitVar(from, 10*time.Second, "READY", "1")
	if got := s.stored(); got != "" {
		t.Fatalf("store holds %q; want nothing once the port's file is gone", got)
	}
	waitHangup(t, app, 10*time.Second) // stop means stop: the port is gone
	d3.waitLine(`"port file gone while vsp was not running: releasing its pty"`, 0, 10*time.Second)
}

// TestFDStoreHandover: SIGTERM (systemctl restart, a package upgrade)
// with the fd store in use leaves the ptys and links in place and hands
// the outage buffer over in a memfd: what the application wrote while the
// device was down and vsp restarted reaches the device, in order, after
// what it had before. Deleting the port file takes its files out of the
// store before the pty closes.
func TestFDStoreHandover(t *testing.T) {
	dev := testenv.NewDevice(t)
	s := newSDStore(t)
	link := filepath.Join(t.TempDir(), "ttyVSP0")
	s.writePort("plc", fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\nstale_data = \"keep\"\n", link, dev.Addr()))
	d1 := s.start()
	d1.waitLine(`"link up"`, 0, 20*time.Second)
	s.ns.WaitVar(0, 10*time.Second, "READY", "1")

	app, tty, write, want := s.holdInOutage(dev, link, []byte("up: "), pattern(5000, 7))
	addr := dev.Addr()

	from := s.ns.Count()
	terminate(t, d1)
	s.ns.WaitVar(from, time.Second, "STOPPING", "1")
	m, _ := s.ns.WaitVar(from, time.Second, "FDNAME", "p.plc.r")
	if len(m.Files) != 1 {
		t.Fatalf("ring handed over with %d files", len(m.Files))
	}
	if fi, err := m.Files[0].Stat(); err != nil || fi.Size() != int64(5000) {
		t.Fatalf("handed-over outage buffer: %v, %v; want %d bytes", fi, err, 5000)
	}
	if got := s.stored(); got != "p.plc.m×1 p.plc.r×1 p.plc.s×1 vsp.handover×1" {
		t.Fatalf("store holds %q after SIGTERM", got)
	}
	if now, err := os.Readlink(link); err != nil || now != tty {
		t.Fatalf("after SIGTERM the link is %q, %v; want it kept at %s", now, err, tty)
	}
	noHangup(t, app, "after SIGTERM")
	write([]byte(" :written while vsp was down"))

	from = s.ns.Count()
	d2 := s.start()
	d2.waitLine(`"pty taken over from the previous vsp process, with its outage buffer"`, 0, 20*time.Second)
	dev.Up(addr)
	dev.WaitGot(want.Bytes(), 20*time.Second)
	noHangup(t, app, "after the restart")
	s.ns.WaitVar(from, 10*time.Second, "READY", "1") // the mark goes just before
	if got := s.stored(); got != "p.plc.m×1 p.plc.s×1" {
		t.Fatalf("store holds %q after the restart; want the ring and the mark consumed", got)
	}
	for _, m := range s.ns.Since(from) {
		if v, _ := m.Var("FDSTORE"); v == "1" {
			t.Fatalf("the restarted daemon stored %q again", m.Text)
		}
	}

	// Deleting the port file: its files leave the store, then the pty
	// closes (with the store's copies gone, the application hangs up).
	from = s.ns.Count()
	if err := os.Remove(filepath.Join(s.dir, "plc.toml")); err != nil {
		t.Fatal(err)
	}
	s.ns.WaitVar(from, 10*time.Second, "FDNAME", "p.plc.m")
	s.ns.WaitVar(from, 10*time.Second, "FDNAME", "p.plc.s")
	d2.waitLine(`"port closed"`, 0, 10*time.Second)
	if got := s.stored(); got != "" {
		t.Fatalf("store holds %q after the port was deleted", got)
	}
	waitHangup(t, app, 10*time.Second)
	if _, err := os.Lstat(link); err == nil {
		t.Fatalf("link %s still there after the port was deleted", link)
	}
}

// TestFDStoreInvalidFileKeepsPty: a port file that does not load when vsp
// starts keeps its stored pty (the application stays connected) until the
// file is fixed, and then the port takes that pty over.
func TestFDStoreInvalidFileKeepsPty(t *testing.T) {
	dev := testenv.NewDevice(t)
	s := newSDStore(t)
	link := filepath.Join(t.TempDir(), "ttyVSP0")
	good := fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev.Addr())
	s.writePort("plc", good)
	d1 := s.start()
	d1.waitLine(`"link up"`, 0, 20*time.Second)
	s.ns.WaitVar(0, 10*time.Second, "READY", "1") // sent after the port's fds
	app := openApp(t, link)
	tty, _ := os.Readlink(link)
	kill(t, d1)

	s.writePort("plc", good+"bogus = 1\n")
	from := s.ns.Count()
	d2 := s.start()
	s.ns.WaitVar(from, 10*time.Second, "READY", "1")
	d2.waitLine(`"port file rejected`, 0, 10*time.Second)
	if got := s.stored(); got != "p.plc.m×1 p.plc.s×1" {
		t.Fatalf("store holds %q while the file is invalid; want the pty kept", got)
	}
	noHangup(t, app, "while the port file is invalid")
	if _, err := app.Write([]byte("queued in the pty")); err != nil {
		t.Fatal(err)
	}

	s.writePort("plc", good)
	d2.waitLine(`"pty taken over after vsp ended without a handover`, 0, 10*time.Second)
	dev.WaitGot([]byte("queued in the pty"), 10*time.Second)
	if st, ok := s.status("plc"); !ok || st.TTY != tty {
		t.Fatalf("after the fix the port runs on %q, want the kept %s", st.TTY, tty)
	}
	noHangup(t, app, "after the fix")
}

// TestFDStoreLimits: a store too small for a port's fds is reported and
// the port runs as without one; a unit without a store
// (FileDescriptorStoreMax=0, FDSTORE=0) closes every port on SIGTERM,
// removing its link, as without systemd.
func TestFDStoreLimits(t *testing.T) {
	tests := []struct {
		name, fdstore, log string
	}{
		{"full", "1", `"systemd's file-descriptor store is full`},
		{"none", "0", `"systemd keeps no file descriptors for vsp`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dev := testenv.NewDevice(t)
			s := newSDStore(t)
			link := filepath.Join(t.TempDir(), "ttyVSP0")
			s.writePort("plc", fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev.Addr()))
			d := s.start("FDSTORE=" + tc.fdstore)
			d.waitLine(tc.log, 0, 20*time.Second)
			s.ns.WaitVar(0, 10*time.Second, "READY", "1")
			if got := s.stored(); got != "" {
				t.Fatalf("store holds %q", got)
			}
			app := openApp(t, link)
			terminate(t, d)
			waitHangup(t, app, 10*time.Second)
			if _, err := os.Lstat(link); err == nil {
				t.Fatalf("link %s left after SIGTERM without the store", link)
			}
		})
	}
}

// TestReexecOnSIGUSR2: without a service manager, SIGUSR2 makes `vsp run`
// re-execute its binary with every port's pty and outage buffer: same
// process, same tty, no hang-up, and the bytes held for a down device are
// delivered, in order, once it is back.
func TestReexecOnSIGUSR2(t *testing.T) {
	dev := testenv.NewDevice(t)
	s := newSDStore(t) // for its paths and helpers; no NOTIFY_SOCKET here
	link := filepath.Join(t.TempDir(), "ttyVSP0")
	s.writePort("plc", fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\nstale_data = \"keep\"\n", link, dev.Addr()))
	d := startProc(t, "vsp", "run", "--log-format", "json", "--config-dir", s.dir, "--socket", s.socket, "--known-devices", s.known)
	d.waitLine(`"link up"`, 0, 20*time.Second)
	app, tty, write, want := s.holdInOutage(dev, link, []byte("before: "), pattern(3000, 3))
	addr := dev.Addr()

	from := d.lineCount()
	if err := d.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	d.waitLine(`"re-executing"`, from, 10*time.Second)
	d.waitLine(`"pty taken over from the previous vsp process, with its outage buffer"`, from, 20*time.Second)
	d.waitLine(`"daemon running"`, from, 10*time.Second)
	select {
	case <-d.done:
		t.Fatal("vsp exited instead of re-executing")
	default:
	}
	noHangup(t, app, "after the re-execution")
	write([]byte(" :after"))
	dev.Up(addr)
	dev.WaitGot(want.Bytes(), 20*time.Second)
	if st, ok := s.status("plc"); !ok || st.TTY != tty {
		t.Fatalf("after the re-execution the port runs on %q, want %s", st.TTY, tty)
	}
	if now, _ := os.Readlink(link); now != tty {
		t.Fatalf("link points at %s, was %s", now, tty)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(link); err == nil {
		t.Fatalf("link %s left after SIGINT", link)
	}
}

// TestFDStoreRestartWhileStreaming: graceful restarts (SIGTERM, as
// systemctl restart and a package upgrade do) in the middle of a stream
// lose nothing: the application writes 32 bytes every 5 ms and reads the
// echo back without pause, through six restarts, and gets back exactly
// what it wrote. (A stop used to close the device link at once: the chunk
// being sent and the echo in flight were lost.)
func TestFDStoreRestartWhileStreaming(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--serial", "echo", "--console", "off")
	s := newSDStore(t)
	link := filepath.Join(t.TempDir(), "ttyVSP0")
	s.writePort("plc", fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\nstale_data = \"keep\"\n", link, sim.addr))
	d := s.start()
	d.waitLine(`"link up"`, 0, 20*time.Second)
	s.ns.WaitVar(0, 10*time.Second, "READY", "1")
	app := openApp(t, link)

	stream := pattern(1<<20, 5)
	var written atomic.Int64
	stop := make(chan struct{})
	wdone := make(chan error, 1)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for off := 0; ; off += 32 {
			select {
			case <-stop:
				wdone <- nil
				return
			case <-tick.C:
			}
			if _, err := app.Write(stream[off : off+32]); err != nil {
				wdone <- err
				return
			}
			written.Store(int64(off + 32))
		}
	}()
	e := startEchoer(t, app)
	echoed := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.err != nil {
			t.Fatalf("application read: %v", e.err)
		}
		return e.got.Len()
	}
	waitEchoed := func(n int, what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for echoed() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d bytes came back", what, echoed(), n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i := 0; i < 6; i++ {
		waitEchoed(int(written.Load())+320, "before the restart")
		from := s.ns.Count()
		terminate(t, d)
		noHangup(t, app, "after SIGTERM")
		d = s.start()
		s.ns.WaitVar(from, 10*time.Second, "READY", "1")
	}
	waitEchoed(int(written.Load())+320, "after the last restart")
	close(stop)
	if err := <-wdone; err != nil {
		t.Fatalf("application write: %v", err)
	}
	n := int(written.Load())
	waitEchoed(n, "at the end")
	e.mu.Lock()
	got := e.got.String()
	e.mu.Unlock()
	if i := firstDiff([]byte(got), stream[:n]); i >= 0 {
		t.Fatalf("echo differs from what was written at byte %d of %d (got %d bytes)", i, n, len(got))
	}
	t.Logf("%d bytes through 6 graceful restarts, none lost", n)

}
