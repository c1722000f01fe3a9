//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cpty "github.com/creack/pty"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/tlsconn"
)

// runVsp runs a one-shot vsp command (the real binary) and returns its
// output; it fails the test when the command fails.
func runVsp(t testing.TB, args ...string) string {
	t.Helper()
	p := startProc(t, "vsp", args...)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("vsp %v did not finish:\n%s", args, p.output())
	}
	if !p.cmd.ProcessState.Success() {
		t.Fatalf("vsp %v: %s\n%s", args, p.cmd.ProcessState, p.output())
	}
	return p.output()
}

// expectSilence writes msg while the port refuses its device's certificate
// and checks that it reached no device: two refused redials after the write
// (the second dialled after it) show the port had its chance to send, no
// link came up meanwhile, and nothing came back from the (echo) device.
func expectSilence(t testing.TB, vsp *proc, app *os.File, state string, msg []byte) {
	t.Helper()
	from := vsp.lineCount()
	if _, err := app.Write(msg); err != nil {
		t.Fatal(err)
	}
	_, i := vsp.waitLine(`"state":"`+state+`"`, from, 20*time.Second)
	_, j := vsp.waitLine(`"state":"`+state+`"`, i+1, 20*time.Second)
	vsp.mu.Lock()
	since := slices.Clone(vsp.lines[from:j])
	vsp.mu.Unlock()
	for _, l := range since {
		if strings.Contains(l, `"link up"`) {
			t.Fatalf("a link came up while the device was refused: %s", l)
		}
	}
	_ = app.SetReadDeadline(time.Now())
	defer app.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	if n, err := app.Read(buf); n > 0 || err == nil {
		t.Fatalf("read %q (%v): data reached a device that is not trusted", buf[:n], err)
	}
}

// Acceptance 3: the simulator comes back with a new key and certificate
// (fresh flash, as after `rsa keygen` + `cert new`). With pin and tofu the
// port refuses it before sending any byte and says "certificate changed"
// with both fingerprints; for tofu, `vsp trust --accept` lets the running
// port connect by itself at its next redial.
func TestCertificateSwap(t *testing.T) {
	for _, mode := range []string{"pin", "tofu"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			addr := freeAddr(t)
			simArgs := func(flash string) []string {
				return []string{"--listen", addr, "--ssl", "--key-bits", "1024", "--serial", "echo",
					"--flash", filepath.Join(dir, flash), "--console", "off"}
			}
			sim := startEzsim(t, simArgs("flash1.json")...)
			oldFP := sim.fingerprint
			known := filepath.Join(dir, "state", "known_devices")
			link := tempLink(t)
			// Debug level: every refused redial is logged (expectSilence
			// counts them); at info level repeats are rate-limited.
			args := []string{"--device", addr, "--tls", "legacy", "--backoff-max", "500ms", "--log-level", "debug"}
			if mode == "pin" {
				args = append(args, "--pin", oldFP)
			} else {
				args = append(args, "--trust", "tofu", "--known-devices", known)
			}
			vsp := startVsp(t, link, args...)
			app := openApp(t, link)
			expectEcho(t, app, []byte("first device\n"))
			if mode == "tofu" {
				st, err := os.Stat(known)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("known-devices file mode %v, want 0600", st.Mode().Perm())
				}
				b, _ := os.ReadFile(known)
				if !strings.Contains(string(b), addr+" "+oldFP) {
					t.Fatalf("known-devices file does not record %s %s:\n%s", addr, oldFP, b)
				}
			}

			// The device gets a new key and certificate.
			if err := sim.stop(); err != nil {
				t.Fatal(err)
			}
			from := vsp.lineCount()
			sim = startEzsim(t, simArgs("flash2.json")...)
			newFP := sim.fingerprint
			if newFP == oldFP {
				t.Fatal("fresh flash kept the certificate")
			}
			// A pin the certificate does not match is a mismatch; in tofu
			// mode the certificate changed. Either way the log says the fix.
			state, fix := "certificate mismatch", "give it with --pin"
			if mode == "tofu" {
				state, fix = "certificate changed", "vsp trust --accept --expect "+newFP+" --known-devices "+known+" "+addr
			}
			line, _ := vsp.waitLine(`"state":"`+state+`"`, from, 20*time.Second)
			if !strings.Contains(line, fix) {
				t.Errorf("log line does not give the fix %q: %s", fix, line)
			}
			for _, fp := range []string{oldFP, newFP} {
				if !strings.Contains(line, strings.TrimPrefix(fp, "sha256:")) {
					t.Errorf("log line does not name %s: %s", fp, line)
				}
			}
			if mode == "tofu" && (!strings.Contains(line, "certificate changed") || !strings.Contains(line, "first seen")) {
				t.Errorf("log line does not say certificate changed / first seen: %s", line)
			}
			expectSilence(t, vsp, app, state, []byte("must not reach the new device\n"))
			if mode == "pin" {
				return
			}

			// A wrong --expect accepts nothing; the right one does.
			p := startProc(t, "vsp", "trust", "--tls", "legacy", "--known-devices", known, "--accept", "--expect", oldFP, addr)
			<-p.done
			if p.cmd.ProcessState.Success() {
				t.Fatalf("--accept --expect with the old fingerprint succeeded:\n%s", p.output())
			}
			out := runVsp(t, "trust", "--tls", "legacy", "--known-devices", known, "--accept", "--expect", newFP, addr)
			if !strings.Contains(out, "old: "+oldFP) || !strings.Contains(out, "new: "+newFP) {
				t.Errorf("vsp trust --accept output:\n%s", out)
			}
			from = vsp.lineCount()
			vsp.waitLine(`"link up"`, from, 20*time.Second)
			// What the app wrote while the device was refused is delivered
			// now (it was held, not sent to the untrusted device).
			expectRead(t, app, []byte("must not reach the new device\n"), 10*time.Second)
			expectEcho(t, app, []byte("accepted device\n"))
		})
	}
}

// recordLen is the size of one numbered record: a letter, 7 digits, '\n'.
const recordLen = 9

func record(tag byte, n int) []byte { return fmt.Appendf(nil, "%c%07d\n", tag, n) }

// streamWriter writes numbered records to w until stopped, at about rate
// bytes per second, recording the first error and the longest write.
type streamWriter struct {
	tag     byte
	written atomic.Int64 // bytes
	next    atomic.Int64 // next record number
	longest atomic.Int64 // nanoseconds
	err     atomic.Value
	stop    chan struct{}
	done    chan struct{}
}

func startStreamWriter(w interface{ Write([]byte) (int, error) }, tag byte, perTick int) *streamWriter {
	sw := &streamWriter{tag: tag, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(sw.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-sw.stop:
				return
			case <-tick.C:
			}
			var buf []byte
			n := int(sw.next.Load())
			for i := range perTick {
				buf = append(buf, record(tag, n+i)...)
			}
			start := time.Now()
			k, err := w.Write(buf)
			if d := time.Since(start); int64(d) > sw.longest.Load() {
				sw.longest.Store(int64(d))
			}
			sw.written.Add(int64(k))
			sw.next.Add(int64(perTick))
			if err != nil {
				sw.err.Store(err)
				return
			}
		}
	}()
	return sw
}

func (sw *streamWriter) halt() error {
	close(sw.stop)
	<-sw.done
	err, _ := sw.err.Load().(error)
	return err
}

// streamChecker reads numbered records from r and checks that they come in
// order: records may be missing (lost with a dead link), never reordered or
// repeated. Lines cut by a loss are counted as damaged.
type streamChecker struct {
	tag byte

	mu      sync.Mutex
	got     int64 // bytes read
	last    int   // last good record number, -1 before the first
	missing int   // records skipped
	damaged int   // lines that are not whole records
	order   string
	err     error
	partial []byte
}

func startStreamChecker(r interface{ Read([]byte) (int, error) }, tag byte) *streamChecker {
	sc := &streamChecker{tag: tag, last: -1}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			sc.feed(buf[:n])
			if err != nil {
				sc.mu.Lock()
				sc.err = err
				sc.mu.Unlock()
				return
			}
		}
	}()
	return sc
}

func (sc *streamChecker) feed(p []byte) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.got += int64(len(p))
	sc.partial = append(sc.partial, p...)
	for {
		i := bytes.IndexByte(sc.partial, '\n')
		if i < 0 {
			return
		}
		line := sc.partial[:i]
		sc.partial = sc.partial[i+1:]
		n, err := strconv.Atoi(string(line[min(1, len(line)):]))
		if len(line) != recordLen-1 || line[0] != sc.tag || err != nil {
			sc.damaged++
			continue
		}
		if n <= sc.last && sc.order == "" {
			sc.order = fmt.Sprintf("record %d after record %d", n, sc.last)
		}
		sc.missing += n - sc.last - 1
		sc.last = n
	}
}

func (sc *streamChecker) snapshot() (got int64, last, missing, damaged int, order string, err error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.got, sc.last, sc.missing, sc.damaged, sc.order, sc.err
}

// Acceptance 1: an application streams both ways through a port while the
// simulator is killed (SIGKILL, like a crash) and restarted 20 times at
// random moments. The application's fd never sees EOF, EIO or a hang-up;
// what reaches the equipment on the device's serial line is what the
// application wrote, in order, minus bytes that were handed to links that
// died — and those are never more than the port's "possibly lost" count.
// With a small outage buffer the application's writes block (never fail)
// while the device is away.
func TestRestartLoop(t *testing.T) {
	// The device's serial line is a pty the test holds: the equipment.
	eq, eqSlave, err := cpty.Open()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eq.Close(); eqSlave.Close() }) // the test's slave fd keeps eq from EIO between device runs
	if err := makeRaw(eqSlave); err != nil {
		t.Fatal(err)
	}
	if err := makeRaw(eq); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	simArgs := []string{"--listen", addr, "--ssl", "--key-bits", "1024", "--serial", eqSlave.Name(),
		"--flash", filepath.Join(dir, "flash.json"), "--console", "off"}
	sim := startEzsim(t, simArgs...)

	link := tempLink(t)
	port, err := bridge.StartPort(bridge.PortSpec{
		Name:    "restart",
		PTY:     pty.Config{Link: link},
		Devices: []string{addr},
		Link:    tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: sim.fingerprint},
		Bridge:  bridge.BridgeConfig{Buffer: 2 << 10, Backoff: tlsconn.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { port.Close() })
	testenv.Eventually(t, 20*time.Second, "first link up", func() bool { return port.Status().State == bridge.StateUp })

	app := openApp(t, link)
	hup := watchHangup(t, link)
	atEquipment := startStreamChecker(eq, 'A')
	atApp := startStreamChecker(app, 'B')
	toDevice := startStreamWriter(app, 'A', 48) // ~86 KB/s: fills the buffer in ~25 ms of outage
	fromDevice := startStreamWriter(eq, 'B', 4) // ~7 KB/s

	// Watch for the outage buffer filling up while the device is away.
	var fullSeen atomic.Int32
	monStop := make(chan struct{})
	monDone := make(chan struct{})
	go func() {
		defer close(monDone)
		for {
			select {
			case <-monStop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			if st := port.Status(); st.State != bridge.StateUp && st.Buffered == st.BufferSize {
				fullSeen.Add(1)
			}
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	for i := range 20 {
		connects := port.Status().Connects
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		sim.kill()
		time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond)
		sim = startEzsim(t, simArgs...)
		testenv.Eventually(t, 20*time.Second, fmt.Sprintf("reconnect %d", i+1), func() bool {
			st := port.Status()
			return st.State == bridge.StateUp && st.Connects > connects
		})
	}
	// Both directions carry records over the final link before the
	// writers stop.
	nextA, nextB := int(toDevice.next.Load()), int(fromDevice.next.Load())
	testenv.Eventually(t, 20*time.Second, "records over the final link both ways", func() bool {
		_, lastA, _, _, _, _ := atEquipment.snapshot()
		_, lastB, _, _, _, _ := atApp.snapshot()
		return lastA >= nextA && lastB >= nextB
	})
	if err := toDevice.halt(); err != nil {
		t.Fatalf("application write failed: %v", err)
	}
	if err := fromDevice.halt(); err != nil {
		t.Fatalf("equipment write failed: %v", err)
	}
	close(monStop)
	<-monDone

	// Everything still in flight arrives: the last record the application
	// wrote reaches the equipment, and the last one the equipment wrote
	// reaches the application.
	lastA := int(toDevice.next.Load()) - 1
	lastB := int(fromDevice.next.Load()) - 1
	testenv.Eventually(t, 20*time.Second, "last application record at the equipment", func() bool {
		_, last, _, _, _, _ := atEquipment.snapshot()
		return last == lastA
	})
	testenv.Eventually(t, 20*time.Second, "last equipment record at the application", func() bool {
		_, last, _, _, _, _ := atApp.snapshot()
		return last == lastB
	})
	st := port.Status()
	gotEq, _, missEq, dmgEq, orderEq, errEq := atEquipment.snapshot()
	gotApp, _, missApp, dmgApp, orderApp, errApp := atApp.snapshot()
	written := toDevice.written.Load()
	lostToDevice := written - gotEq
	t.Logf("app -> device: wrote %d bytes, equipment got %d; lost %d (%d records missing, %d damaged); status: possibly lost %d, to device %d, connects %d",
		written, gotEq, lostToDevice, missEq, dmgEq, st.PossiblyLost, st.ToDevice, st.Connects)
	t.Logf("device -> app: equipment wrote %d bytes, app got %d (%d records missing, %d damaged: lost at the device, which drops serial data while no session is up)",
		fromDevice.written.Load(), gotApp, missApp, dmgApp)
	t.Logf("outage buffer seen full %d times; longest application write %v",
		fullSeen.Load(), time.Duration(toDevice.longest.Load()).Round(time.Millisecond))

	if errApp != nil {
		t.Errorf("application read failed: %v", errApp)
	}
	if errEq != nil && !errors.Is(errEq, os.ErrClosed) {
		t.Errorf("equipment read failed: %v", errEq)
	}
	if h := hup(); h != "" {
		t.Errorf("application saw %s", h)
	}
	if orderEq != "" || orderApp != "" {
		t.Errorf("order broken: to device %q, to app %q", orderEq, orderApp)
	}
	if lostToDevice < 0 {
		t.Errorf("equipment got %d bytes more than the application wrote", -lostToDevice)
	}
	if uint64(max(lostToDevice, 0)) > st.PossiblyLost {
		t.Errorf("%d bytes the application wrote never reached the equipment, but status counts only %d as possibly lost: silent loss",
			lostToDevice, st.PossiblyLost)
	}
	if fullSeen.Load() == 0 {
		t.Errorf("the %d-byte outage buffer was never seen full: the test did not exercise blocking writes", st.BufferSize)
	}
	if st.Connects < 21 {
		t.Errorf("connects = %d, want at least 21", st.Connects)
	}
}

// Acceptance 6: a port lists a primary and a backup device (two
// simulators, trust on first use for each). Stopping the primary moves the
// traffic to the backup; when the primary is back the port returns to it.
// The application streaming through the port sees nothing but pauses: no
// EOF, no hang-up, records in order.
func TestFailover(t *testing.T) {
	dir := t.TempDir()
	known := filepath.Join(dir, "known_devices")
	ab := freeAddrs(t, 2)
	addrA, addrB := ab[0], ab[1]
	simArgs := func(addr, flash string) []string {
		return []string{"--listen", addr, "--ssl", "--key-bits", "1024", "--serial", "echo",
			"--flash", filepath.Join(dir, flash), "--console", "off"}
	}
	simA := startEzsim(t, simArgs(addrA, "a.json")...)
	startEzsim(t, simArgs(addrB, "b.json")...)
	link := tempLink(t)
	vsp := startVsp(t, link, "--device", addrA, "--device", addrB, "--tls", "legacy",
		"--trust", "tofu", "--known-devices", known, "--backoff-max", "300ms", "--dial-timeout", "2s")
	if l, _ := vsp.waitLine(`"link up"`, 0, time.Second); !strings.Contains(l, addrA) {
		t.Fatalf("first link is not to the primary %s: %s", addrA, l)
	}
	app := openApp(t, link)
	hup := watchHangup(t, link)
	echoed := startStreamChecker(app, 'A')
	w := startStreamWriter(app, 'A', 4)
	flowing := func(what string) {
		t.Helper()
		_, before, _, _, _, _ := echoed.snapshot()
		testenv.Eventually(t, 20*time.Second, what, func() bool {
			_, last, _, _, _, _ := echoed.snapshot()
			return last > before+50
		})
	}
	flowing("echo through the primary")

	from := vsp.lineCount()
	stopped := time.Now()
	if err := simA.stop(); err != nil {
		t.Fatal(err)
	}
	if l, _ := vsp.waitLine(`"link up"`, from, 20*time.Second); !strings.Contains(l, addrB) {
		t.Fatalf("after the primary stopped, the link is not to the backup %s: %s", addrB, l)
	}
	flowing("echo through the backup")
	t.Logf("traffic on the backup %v after the primary stopped", time.Since(stopped).Round(time.Millisecond))

	from = vsp.lineCount()
	back := time.Now()
	startEzsim(t, simArgs(addrA, "a.json")...)
	if l, _ := vsp.waitLine(`"link up"`, from, 20*time.Second); !strings.Contains(l, addrA) {
		t.Fatalf("the link did not return to the primary %s: %s", addrA, l)
	}
	flowing("echo through the primary again")
	t.Logf("back on the primary %v after it returned", time.Since(back).Round(time.Millisecond))

	if err := w.halt(); err != nil {
		t.Fatalf("application write failed: %v", err)
	}
	lastA := int(w.next.Load()) - 1
	testenv.Eventually(t, 20*time.Second, "last record echoed", func() bool {
		_, last, _, _, _, _ := echoed.snapshot()
		return last == lastA
	})
	got, _, missing, damaged, order, err := echoed.snapshot()
	t.Logf("wrote %d bytes, %d echoed back (%d records missing, %d damaged across the two switches)",
		w.written.Load(), got, missing, damaged)
	if err != nil {
		t.Errorf("application read failed: %v", err)
	}
	if order != "" {
		t.Errorf("order broken: %s", order)
	}
	if h := hup(); h != "" {
		t.Errorf("application saw %s", h)
	}
	b, _ := os.ReadFile(known)
	if !strings.Contains(string(b), addrA) || !strings.Contains(string(b), addrB) {
		t.Errorf("known-devices file does not hold both devices:\n%s", b)
	}
}

// startCOD starts ezsim in COD mode (the device dials the host).
func startCOD(t testing.TB, args ...string) *proc {
	t.Helper()
	p := startProc(t, "ezsim", args...)
	p.waitLine("connect: ", 0, 30*time.Second)
	return p
}

// Acceptance 5: the simulator in COD mode with SSL connects to a port in
// listen mode (TLS server with its own key and certificate, created 0600 on
// first start); data flows; the MAC check refuses an impostor; a second
// session from the same device (same MAC) replaces the first.
func TestCODListen(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	certFile := filepath.Join(dir, "state", "listen.pem")
	link := tempLink(t)
	const mac = "00:30:f9:00:00:01"
	vsp := startProc(t, "vsp", "run", "--log-format", "json", "--link", link, "--listen", addr,
		"--tls", "legacy", "--listen-cert", certFile, "--device-mac", mac, "--allow-from", "127.0.0.0/8", "--backoff-max", "300ms")
	vsp.waitLine(`"listening for the device"`, 0, 20*time.Second)
	st, err := os.Stat(certFile)
	if err != nil {
		t.Fatalf("host certificate not created: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("host key file mode %v, want 0600", st.Mode().Perm())
	}
	cod := func(mac string) []string {
		return []string{"--mode", "cod", "--peer", addr, "--ssl", "--send-mac", "--mac", mac, "--key-bits", "1024",
			"--console", "off", "--reconnect-delay", "1s", "--serial", "echo"}
	}
	dev := startCOD(t, cod(mac)...)
	vsp.waitLine(`"link up"`, 0, 20*time.Second)
	app := openApp(t, link)
	expectEcho(t, app, []byte("through a device-initiated TLS session\n"))

	from := vsp.lineCount()
	impostor := startCOD(t, cod("00:30:f9:00:00:99")...)
	line, _ := vsp.waitLine("MAC check failed", from, 20*time.Second)
	if !strings.Contains(line, "0030F9000099") {
		t.Errorf("refusal does not name the impostor's MAC: %s", line)
	}
	impostor.kill()
	expectEcho(t, app, []byte("still the first device\n"))

	// The same device again (as after a reboot the host did not notice):
	// the new session replaces the current one.
	from = vsp.lineCount()
	again := startCOD(t, cod(mac)...)
	vsp.waitLine("new device session replaces the current one", from, 20*time.Second)
	dev.kill()
	expectEcho(t, app, []byte("through the new session\n"))
	again.kill()
	if strings.Contains(vsp.output(), "panic") {
		t.Fatalf("vsp panicked:\n%s", vsp.output())
	}
}
