//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// Network-namespace fault tests: the device (ezsim) runs in its own network
// namespace, joined to the test's namespace by a veth pair that the test
// sets down, or deletes, to simulate a pulled cable or a vanished host.
// They need root and iproute2; each creates its namespaces and links with
// names unique to this process and removes them on cleanup.

// labSeq makes namespace, link and subnet names unique within the process.
var labSeq atomic.Int32

// netLab owns the namespaces and veth pairs of one test.
type netLab struct {
	t      testing.TB
	ipBin  string
	prefix string // unique per lab: "v<pid%10000><seq>"
	net    int    // third octet base for this lab's subnets
	links  int
}

func newNetLab(t testing.TB) *netLab {
	t.Helper()
	ipBin := testenv.Tool(t, "ip")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "network namespaces need root")
	}
	n := labSeq.Add(1)
	l := &netLab{
		t:      t,
		ipBin:  ipBin,
		prefix: fmt.Sprintf("v%d%c", os.Getpid()%10000, 'a'+rune(n%26)),
		net:    int(n%25) * 10,
	}
	return l
}

// ip runs `ip args...` and fails the test on error.
func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(l.ipBin, args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// tryIP runs `ip args...`, ignoring failure (cleanup).
func (l *netLab) tryIP(args ...string) {
	_ = exec.Command(l.ipBin, args...).Run()
}

// netns creates a network namespace with lo up, deleted on cleanup.
func (l *netLab) netns(name string) string {
	l.t.Helper()
	ns := l.prefix + name
	l.tryIP("netns", "del", ns) // a leftover from a crashed run
	l.ip("netns", "add", ns)
	l.t.Cleanup(func() { l.tryIP("netns", "del", ns) })
	l.ip("-n", ns, "link", "set", "lo", "up")
	return ns
}

// veth joins namespace aNS ("" = the test's own) and bNS with a veth pair
// on a fresh /24: a gets .1, b gets .2. It returns the interface names and
// addresses.
func (l *netLab) veth(aNS, bNS string) (aDev, bDev, aIP, bIP string) {
	l.t.Helper()
	l.links++
	aDev = fmt.Sprintf("%s%da", l.prefix, l.links)
	bDev = fmt.Sprintf("%s%db", l.prefix, l.links)
	subnet := fmt.Sprintf("10.213.%d", l.net+l.links)
	aIP, bIP = subnet+".1", subnet+".2"
	l.tryIP("link", "del", aDev)
	l.ip("link", "add", aDev, "type", "veth", "peer", "name", bDev)
	l.t.Cleanup(func() {
		l.tryIP("link", "del", aDev)
		if aNS != "" {
			l.tryIP("-n", aNS, "link", "del", aDev)
		}
	})
	for _, e := range []struct{ dev, ns, ip string }{{aDev, aNS, aIP}, {bDev, bNS, bIP}} {
		if e.ns != "" {
			l.ip("link", "set", e.dev, "netns", e.ns)
		}
		l.ip(nsArgs(e.ns, "addr", "add", e.ip+"/24", "dev", e.dev)...)
		l.ip(nsArgs(e.ns, "link", "set", e.dev, "up")...)
	}
	return aDev, bDev, aIP, bIP
}

// setLink sets dev in ns up or down.
func (l *netLab) setLink(ns, dev string, up bool) {
	l.t.Helper()
	state := "down"
	if up {
		state = "up"
	}
	l.ip(nsArgs(ns, "link", "set", dev, state)...)
}

// waitSendQueueEmpty waits until every established TCP connection in ns
// has all its data acknowledged (ss Send-Q 0).
func (l *netLab) waitSendQueueEmpty(ns string) {
	l.t.Helper()
	ss := testenv.Tool(l.t, "ss")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(l.ipBin, "netns", "exec", ns, ss, "-tnH", "state", "established").CombinedOutput()
		if err != nil {
			l.t.Fatalf("ss in %s: %v\n%s", ns, err, out)
		}
		busy := false
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[1] != "0" {
				busy = true
			}
		}
		if !busy {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("unacknowledged data in %s after 10s:\n%s", ns, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func nsArgs(ns string, args ...string) []string {
	if ns == "" {
		return args
	}
	return append([]string{"-n", ns}, args...)
}

// startProcIn is startProc for a binary run inside network namespace ns
// (`ip netns exec` execs it, so signals reach the binary itself).
func startProcIn(t testing.TB, ns, name string, args ...string) *proc {
	t.Helper()
	bin := bins.Build(t, name)
	ipBin := testenv.Tool(t, "ip")
	p := runProc(t, name+"@"+ns, exec.Command(ipBin, append([]string{"netns", "exec", ns, bin}, args...)...))
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, p.output())
		}
	})
	return p
}

// kill ends the process at once with SIGKILL (a crash, a power cut) and
// waits for it.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// startEzsimIn starts ezsim inside ns and reads its announced fingerprint.
func startEzsimIn(t testing.TB, ns string, args ...string) *ezsim {
	t.Helper()
	p := startProcIn(t, ns, "ezsim", args...)
	l, _ := p.waitLine("listen: ", 0, 30*time.Second)
	s := &ezsim{proc: p, addr: strings.TrimSpace(strings.TrimPrefix(l, "listen: "))}
	if strings.Contains(strings.Join(args, " "), "--ssl") {
		l, _ := p.waitLine("fingerprint: ", 0, 30*time.Second)
		s.fingerprint = strings.TrimSpace(strings.TrimPrefix(l, "fingerprint: "))
	}
	return s
}

// echoer keeps reading what comes back from an echo device and reports when
// a marker has been seen.
type echoer struct {
	mu   sync.Mutex
	got  strings.Builder
	grow chan struct{}
	err  error
}

func startEchoer(t testing.TB, app *os.File) *echoer {
	e := &echoer{grow: make(chan struct{})}
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := app.Read(buf)
			e.mu.Lock()
			e.got.Write(buf[:n])
			close(e.grow)
			e.grow = make(chan struct{})
			if err != nil {
				e.err = err
				e.mu.Unlock()
				return
			}
			e.mu.Unlock()
		}
	}()
	return e
}

// wait waits until marker has come back; it returns how long that took.
func (e *echoer) wait(t testing.TB, marker string, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(timeout)
	for {
		e.mu.Lock()
		ok := strings.Contains(e.got.String(), marker)
		err := e.err
		grow := e.grow
		e.mu.Unlock()
		if ok {
			return time.Since(start)
		}
		if err != nil {
			t.Fatalf("application read failed while waiting for %q: %v", marker, err)
		}
		select {
		case <-grow:
		case <-deadline:
			t.Fatalf("%q did not come back within %v", marker, timeout)
		}
	}
}

// Acceptance 2: the device is in its own namespace; its link goes down
// (a pulled cable: packets vanish, no reset) while the port is idle and,
// separately, while the application is sending. With the default
// keep-alive and TCP_USER_TIMEOUT settings the port notices within its
// 10 s budget, says so, and carries data again soon after the cable is
// back. Both cases run in parallel to keep the wall time near 10 s.
func TestCablePull(t *testing.T) {
	for _, sending := range []bool{false, true} {
		name := "idle"
		if sending {
			name = "sending"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			lab := newNetLab(t)
			devNS := lab.netns("dev")
			_, devIf, _, devIP := lab.veth("", devNS)
			// --second-client replace: the device still holds the session
			// the host gave up on; the new one must not wait for the
			// device's keep-alive (that case is TestHalfOpenBusy).
			sim := startEzsimIn(t, devNS, "--listen", devIP+":1470", "--ssl", "--key-bits", "1024",
				"--serial", "echo", "--console", "off", "--second-client", "replace")
			link := tempLink(t)
			// Every link setting at its default: keep-alive and user
			// timeout (the 10 s budget), dial timeout and redial backoff
			// (back within about 1 s of the path).
			vsp := startVsp(t, link, "--device", devIP+":1470", "--tls", "legacy", "--pin", sim.fingerprint)
			app := openApp(t, link)
			echo := startEchoer(t, app)
			if _, err := app.Write([]byte("cable in\n")); err != nil {
				t.Fatal(err)
			}
			echo.wait(t, "cable in\n", 10*time.Second)

			stop := make(chan struct{})
			var wg sync.WaitGroup
			var werr atomic.Value
			if sending {
				wg.Add(1)
				go func() { // 20 KB/s of filler while the cable is pulled
					defer wg.Done()
					chunk := []byte(strings.Repeat(".", 511) + "\n")
					for {
						select {
						case <-stop:
							return
						case <-time.After(25 * time.Millisecond):
						}
						if _, err := app.Write(chunk); err != nil {
							werr.Store(err)
							return
						}
					}
				}()
			}
			from := vsp.lineCount()
			pulled := time.Now()
			lab.setLink(devNS, devIf, false)
			line, _ := vsp.waitLine(`"link lost"`, from, 40*time.Second)
			noticed := time.Since(pulled)
			t.Logf("%s: dead path noticed after %v (budget 10 s): %s", name, noticed.Round(10*time.Millisecond), line)
			if noticed > 15*time.Second {
				t.Errorf("dead path noticed after %v; default budget is 10 s", noticed)
			}
			close(stop)
			wg.Wait()
			if err, _ := werr.Load().(error); err != nil {
				t.Fatalf("application write failed during the outage: %v", err)
			}

			// Keep the cable out a little longer, so that the port is
			// redialing at its longest backoff, with a connect pending
			// whose SYNs go nowhere, when the path returns.
			time.Sleep(3 * time.Second)
			from = vsp.lineCount()
			lab.setLink(devNS, devIf, true)
			back := time.Now()
			marker := fmt.Sprintf("cable back %s\n", name)
			if _, err := app.Write([]byte(marker)); err != nil {
				t.Fatal(err)
			}
			echo.wait(t, marker, 20*time.Second)
			carrying := time.Since(back)
			vsp.waitLine(`"link up"`, from, time.Second)
			t.Logf("%s: carrying data again %v after the path returned", name, carrying.Round(10*time.Millisecond))
			if carrying > 5*time.Second {
				t.Errorf("data flowed again only %v after the path returned", carrying)
			}
		})
	}
}

// Acceptance 4: the host vanishes without closing (its namespace is
// removed) while the device holds the session. A new host is refused as
// busy until the device's keep-alive drops the old session; then it
// connects by itself.
func TestHalfOpenBusy(t *testing.T) {
	lab := newNetLab(t)
	devNS := lab.netns("dev")
	oldNS := lab.netns("old")
	oldIf, _, _, devIP1 := lab.veth(oldNS, devNS)
	// Device keep-alive 2 s, 3 probes: a half-open session is dropped
	// about 8 s after the last answer (the default 10 s x 4 takes 50 s),
	// long enough for the new host to be refused first even on a slow
	// machine.
	sim := startEzsimIn(t, devNS, "--listen", ":1470", "--ssl", "--key-bits", "1024",
		"--serial", "echo", "--console", "off", "--keepalive", "2s", "--keepalive-probes", "3")

	oldLink := tempLink(t)
	old := startProcIn(t, oldNS, "vsp", "run", "--log-format", "json", "--link", oldLink,
		"--device", devIP1+":1470", "--tls", "legacy", "--pin", sim.fingerprint)
	old.waitLine(`"link up"`, 0, 20*time.Second)
	oldApp := openApp(t, oldLink)
	expectEcho(t, oldApp, []byte("old host\n"))
	// The host's (delayed) ACK of the echo must reach the device before the
	// cut: with unacknowledged data the device's TCP retransmits for many
	// minutes instead of sending keep-alive probes.
	lab.waitSendQueueEmpty(devNS)

	// The old host vanishes: its cable first (so nothing, not even a FIN,
	// leaves), then the process and the whole namespace.
	lab.setLink(oldNS, oldIf, false)
	old.kill()
	lab.ip("netns", "del", oldNS)
	vanished := time.Now()

	// A new host on another link to the device.
	_, _, _, devIP2 := lab.veth("", devNS)
	link := tempLink(t)
	vsp := startProc(t, "vsp", "run", "--log-format", "json", "--link", link,
		"--device", devIP2+":1470", "--tls", "legacy", "--pin", sim.fingerprint, "--backoff-max", "300ms")
	busyLine, _ := vsp.waitLine(`"state":"device busy"`, 0, 20*time.Second)
	t.Logf("refused while the device holds the old session: %s", busyLine)
	vsp.waitLine(`"link up"`, 0, 30*time.Second)
	t.Logf("connected %v after the old host vanished", time.Since(vanished).Round(10*time.Millisecond))
	app := openApp(t, link)
	expectEcho(t, app, []byte("new host\n"))
	if !strings.Contains(sim.output(), "second client refused") {
		t.Errorf("the device never refused the new host: the old session was not held?\n%s", sim.output())
	}
}
