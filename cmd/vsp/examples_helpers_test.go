//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// exampleBuild builds the programs in docs/examples once per test binary.
var exampleBuild struct {
	once sync.Once
	dir  string
	err  error
	out  []byte
}

// exampleBin returns the path of the built example docs/examples/name.
func exampleBin(t *testing.T, name string) string {
	t.Helper()
	b := &exampleBuild
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "vsp-examples-")
		if b.err != nil {
			return
		}
		root, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			b.err = err
			return
		}
		cmd := exec.Command("go", "build", "-o", b.dir+string(filepath.Separator),
			"./docs/examples/modbuspoll", "./docs/examples/xmodem")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(root)))
		b.out, b.err = cmd.CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("build examples: %v\n%s", b.err, b.out)
	}
	return filepath.Join(b.dir, name)
}

// bgProc is an example program running in the background.
type bgProc struct {
	cmd  *exec.Cmd
	out  *testenv.Buffer
	done chan struct{} // closed when the process has exited; err is then set
	err  error
}

// startBg starts bin, stops it (SIGINT, then SIGKILL) when the test ends,
// and logs its output if the test failed.
func startBg(t *testing.T, bin string, args ...string) *bgProc {
	t.Helper()
	p := &bgProc{cmd: exec.Command(bin, args...), out: &testenv.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", filepath.Base(bin), p.out.String())
		}
	})
	return p
}

// wait waits until the output contains substr.
func (p *bgProc) wait(t *testing.T, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), substr) {
		select {
		case <-p.done:
			// All its output is in by now (Wait copies it before
			// returning): it may have printed substr just before exiting.
			if strings.Contains(p.out.String(), substr) {
				return
			}
			t.Fatalf("%s exited (%v) before printing %q:\n%s", p.cmd.Path, p.err, substr, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q after %v:\n%s", p.cmd.Path, substr, timeout, p.out.String())
		}
	}
}

// runExample runs bin to completion (at most a minute) and returns its
// combined output; it fails the test if bin fails.
func runExample(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out := &testenv.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out.String())
		}
	case <-time.After(time.Minute):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s: still running after a minute:\n%s", filepath.Base(bin), strings.Join(args, " "), out.String())
	}
	return out.String()
}

// examplePort starts ezsim with its serial side on a pty at the returned
// equipment path, and vsp bridging a port at the returned link to it over
// TLS 1.0 (legacy profile, pinned), as with a real ezTCP.
func examplePort(t *testing.T) (equip, link string) {
	t.Helper()
	equip = filepath.Join(t.TempDir(), "equipment")
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "pty:"+equip, "--console", "off")
	link = tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint)
	return equip, link
}
