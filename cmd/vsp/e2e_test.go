//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cpty "github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// An application writes 1 MiB of patterned bytes through vsp -> TLS 1.0 ->
// ezsim (echo) and reads back exactly the same bytes, in order.
func TestEndToEndMiB(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint)
	app := openApp(t, link)

	data := pattern(1<<20, 3)
	errc := make(chan error, 1)
	go func() {
		_, err := app.Write(data)
		errc <- err
	}()
	expectRead(t, app, data, 60*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// The simulator stops and restarts three times under an application that
// holds the port open: the application never sees EOF, EIO or a hang-up,
// and what it wrote during the outages arrives after each reconnect.
func TestDeviceRestarts(t *testing.T) {
	flash := filepath.Join(t.TempDir(), "flash.json")
	addr := freeAddr(t)
	args := []string{"--listen", addr, "--ssl", "--key-bits", "512", "--serial", "echo", "--flash", flash, "--console", "off"}
	sim := startEzsim(t, args...)
	pin := sim.fingerprint
	link := tempLink(t)
	// At debug level every record is written: identical warnings are not
	// rate-limited, so each restart's "link lost" is there to wait for.
	vsp := startVsp(t, link, "--device", addr, "--tls", "legacy", "--pin", pin, "--log-level", "debug")
	app := openApp(t, link)

	hup := watchHangup(t, link)
	expectEcho(t, app, []byte("before\n"))
	for i := range 3 {
		from := vsp.lineCount() // this restart's lines: not an earlier "link lost"
		if err := sim.stop(); err != nil {
			t.Fatalf("stop ezsim: %v", err)
		}
		vsp.waitLine(`"link lost"`, from, 10*time.Second)
		// Written while the device is away: must be held and delivered.
		msg := []byte("during outage " + string(rune('A'+i)) + "\n")
		if _, err := app.Write(msg); err != nil {
			t.Fatalf("write during outage %d: %v", i, err)
		}
		sim = startEzsim(t, args...)
		if sim.fingerprint != pin {
			t.Fatalf("restart %d: flash did not keep the certificate: %s != %s", i, sim.fingerprint, pin)
		}
		vsp.waitLine(`"link up"`, from, 20*time.Second)
		expectRead(t, app, msg, 10*time.Second)
		expectEcho(t, app, []byte("after\n"))
	}
	if h := hup(); h != "" {
		t.Fatalf("application saw %s", h)
	}
}

// A wrong pin: the link is refused before any data is sent, and the error
// names both fingerprints.
func TestWrongPin(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	wrong := "sha256:" + strings.Repeat("ab", 32)
	link := tempLink(t)
	p := startProc(t, "vsp", "run", "--log-format", "json", "--link", link, "--device", sim.addr, "--tls", "legacy", "--pin", wrong)
	line, _ := p.waitLine(`"link down"`, 0, 20*time.Second)
	for _, fp := range []string{wrong, sim.fingerprint} {
		if !strings.Contains(line, strings.TrimPrefix(fp, "sha256:")) {
			t.Errorf("error does not name %s: %s", fp, line)
		}
	}
	// Nothing the application writes reaches the device (nothing echoes).
	app := openApp(t, link)
	if _, err := app.Write([]byte("secret\n")); err != nil {
		t.Fatal(err)
	}
	_ = app.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 16)
	if n, err := app.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %q, %v: want nothing", buf[:n], err)
	}
}

// socat's openssl client, a peer nobody here wrote, talks to ezsim.
func TestSocatClientToEzsim(t *testing.T) {
	socat := testenv.Tool(t, "socat")
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "1024", "--serial", "echo", "--console", "off")
	cmd := exec.Command(socat, "-T", "5", "-", "openssl:"+sim.addr+",verify=0")
	// Keep socat's stdin open until the echo is back: at EOF socat closes
	// the TLS session, and the device (like a real ezTCP) drops the session
	// and what it had not sent yet.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &testenv.Buffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-done
	}()
	if _, err := stdin.Write([]byte("ping through socat\n")); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(10 * time.Second)
	for !strings.Contains(out.String(), "ping through socat") {
		select {
		case <-deadline:
			t.Fatalf("socat got %q", out.String())
		case err := <-done:
			done <- err
			t.Fatalf("socat exited (%v) with %q", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	_ = stdin.Close()
}

// vsp talks to socat's openssl-listen as the device (a TLS server nobody
// here wrote), pinned to socat's certificate.
func TestVspToSocatServer(t *testing.T) {
	socat := testenv.Tool(t, "socat")
	openssl := testenv.Tool(t, "openssl")
	dir := t.TempDir()
	key, crt := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	out, err := exec.Command(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
		"-days", "2", "-subj", "/CN=127.0.0.1").CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	fpOut, err := exec.Command(openssl, "x509", "-in", crt, "-noout", "-fingerprint", "-sha256").Output()
	if err != nil {
		t.Fatal(err)
	}
	// "sha256 Fingerprint=AB:CD:..."
	fp := strings.TrimSpace(string(fpOut))
	fp = "sha256:" + strings.ToLower(strings.ReplaceAll(fp[strings.Index(fp, "=")+1:], ":", ""))

	addr := freeAddr(t)
	port := addr[strings.LastIndex(addr, ":")+1:]
	srv := exec.Command(socat, "openssl-listen:"+port+",bind=127.0.0.1,reuseaddr,fork,cert="+crt+",key="+key+",verify=0", "PIPE")
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	waitListen(t, addr)

	for _, prof := range []string{"modern", "legacy"} {
		t.Run(prof, func(t *testing.T) {
			link := tempLink(t)
			startVsp(t, link, "--device", addr, "--tls", prof, "--pin", fp)
			app := openApp(t, link)
			expectEcho(t, app, pattern(4096, 9))
		})
	}
}

// picocom opens the vsp port; a line typed into it comes back from the
// echo device and shows on picocom's terminal.
func TestPicocom(t *testing.T) {
	picocom := testenv.Tool(t, "picocom")
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "768", "--serial", "echo", "--console", "off")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "legacy", "--pin", sim.fingerprint)

	cmd := exec.Command(picocom, "-b", "115200", link)
	term, err := cpty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); term.Close() }()
	screen := &testenv.Buffer{}
	go func() { _, _ = io.Copy(screen, term) }()
	defer func() {
		if t.Failed() {
			t.Logf("picocom screen: %q", screen.String())
		}
	}()
	// picocom says so once it has opened the port and set it up.
	testenv.Eventually(t, 10*time.Second, "picocom's \"Terminal ready\"", func() bool {
		return strings.Contains(screen.String(), "Terminal ready")
	})
	for _, c := range "typed into picocom\r" {
		if _, err := term.Write([]byte(string(c))); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 10*time.Second, "the echoed line on picocom's screen", func() bool {
		return strings.Contains(screen.String(), "typed into picocom")
	})
}

// The README's first command: `vsp demo --check` starts the simulator and a
// port and proves a round trip.
func TestDemoCheck(t *testing.T) {
	link := tempLink(t)
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if code := run(ctx, []string{"vsp", "demo", "--check", "--link", link}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "OK") {
		t.Fatalf("output: %s", out.String())
	}
	if _, err := os.Lstat(link); !os.IsNotExist(err) {
		t.Fatalf("link %s left behind after demo: %v", link, err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--device", "nowhere"}, `--device: missing port: want host:port, e.g. "10.1.0.1:1470", got "nowhere"`},
		{[]string{"run", "--device", "127.0.0.1:1", "--tls", "old"}, "--tls"},
		{[]string{"run", "--device", "127.0.0.1:1", "--pin", "sha256:zz"}, "--pin"},
		{[]string{"run", "--device", "127.0.0.1:1", "--buffer", "lots"}, "--buffer"},
		{[]string{"run", "--device", "127.0.0.1:1", "--mode", "999"}, "--mode"},
		{[]string{"run", "--nope"}, "nope"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), append([]string{"vsp"}, tc.args...), nil, &out, &errOut)
		if code != exitUsage || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %s", tc.args, code, errOut.String(), tc.want)
		}
	}
}

func expectEcho(t testing.TB, app *os.File, msg []byte) {
	t.Helper()
	if _, err := app.Write(msg); err != nil {
		t.Fatal(err)
	}
	expectRead(t, app, msg, 10*time.Second)
}

func waitListen(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := (&net.Dialer{}).Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchHangup opens a second application fd on link and polls it for
// POLLHUP/POLLERR until the returned function is called; that function
// reports what was seen ("" for nothing).
func watchHangup(t testing.TB, link string) func() string {
	t.Helper()
	f, err := os.OpenFile(link, os.O_RDONLY|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := ""
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		fds := []unix.PollFd{{Fd: int32(f.Fd()), Events: unix.POLLHUP | unix.POLLERR}}
		for {
			select {
			case <-stop:
				return
			default:
			}
			n, err := unix.Poll(fds, 50)
			if err != nil && err != syscall.EINTR {
				mu.Lock()
				seen = "poll error " + err.Error()
				mu.Unlock()
				return
			}
			if n > 0 && fds[0].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
				mu.Lock()
				seen = "hang-up/error on the tty"
				mu.Unlock()
				return
			}
		}
	}()
	return func() string {
		close(stop)
		<-done
		f.Close()
		mu.Lock()
		defer mu.Unlock()
		return seen
	}
}
