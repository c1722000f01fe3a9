//go:build linux

package pty

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// Many ports share one OpenWatcher: each sees its own application's opens
// and closes, and closing a port stops its watch without disturbing the
// others.
func TestOpenWatcherShared(t *testing.T) {
	w, err := NewOpenWatcher(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
		if err := w.Close(); err != nil { // idempotent
			t.Error(err)
		}
	}()
	const n = 5
	ports := make([]*Port, n)
	for i := range ports {
		ports[i] = openPort(t, Config{PollInterval: -1, Watcher: w})
		drain(t, ports[i])
	}
	if got := len(w.ports); got != n {
		t.Fatalf("watcher tracks %d ports, want %d", got, n)
	}
	// Open and close port 2's slave: only port 2 reports it.
	a := openApp(t, ports[2].Name())
	waitEvent(t, ports[2], AppOpened, nil)
	if !ports[2].AppOpen() {
		t.Fatal("port 2: AppOpen false after an application opened it")
	}
	for i, p := range ports {
		if i != 2 && p.AppOpen() {
			t.Fatalf("port %d: AppOpen true; only port 2 was opened", i)
		}
	}
	if err := a.f.Close(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ports[2], AppClosed, nil)
	if ports[2].AppOpen() {
		t.Fatal("port 2: AppOpen true after the application closed it")
	}
	// Closing port 0 removes its watch; the others still work.
	if err := ports[0].Close(); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	left := len(w.ports)
	w.mu.Unlock()
	if left != n-1 {
		t.Fatalf("watcher tracks %d ports after one closed, want %d", left, n-1)
	}
	b := openApp(t, ports[4].Name())
	waitEvent(t, ports[4], AppOpened, nil)
	if err := b.f.Close(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ports[4], AppClosed, nil)
}

// inotify merges an event with an identical one queued before it. Opens
// and closes made while the watcher is busy (here: blocked on its lock)
// queue up, and each must still count once: three opens, then two closes,
// then the last close.
func TestMergedOpensCloses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		shared bool
	}{{"shared", true}, {"own", false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{PollInterval: -1}
			if tc.shared {
				w, err := NewOpenWatcher(nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { w.Close() })
				cfg.Watcher = w
			}
			p := openPort(t, cfg)
			w := p.opw
			// hold runs f while the watcher is stuck on its lock after the
			// first of f's events, so that the rest queue up behind it.
			hold := func(first func(), rest ...func()) {
				t.Helper()
				w.mu.Lock()
				first()
				testenv.Blocked(t, waitTimeout, "sync.Mutex.Lock", "pty.(*OpenWatcher).run")
				for _, f := range rest {
					f()
				}
				w.mu.Unlock()
			}
			count := func(want int64) {
				t.Helper()
				testenv.Eventually(t, waitTimeout, fmt.Sprintf("open count %d", want), func() bool { return p.opens.Load() == want })
			}
			var a, b, c *app
			hold(func() { a = openApp(t, p.Name()) },
				func() { b = openApp(t, p.Name()) },
				func() { c = openApp(t, p.Name()) })
			count(3)
			waitEvent(t, p, AppOpened, nil)
			hold(func() { a.f.Close() }, func() { b.f.Close() })
			count(1)
			noEventQueued(t, p, AppClosed)
			if !p.AppOpen() {
				t.Fatal("AppOpen false while an application still has the port open")
			}
			c.f.Close()
			waitEvent(t, p, AppClosed, nil)
			if p.AppOpen() {
				t.Fatal("AppOpen true after the last application closed")
			}
		})
	}
}

// holdForeignPTY is run by python3 in a mount namespace with its own devpts
// instance: it opens pseudo-terminals there until it holds the one numbered
// argv[1], says so, and keeps them until its stdin closes.
const holdForeignPTY = `
import fcntl, os, struct, sys
TIOCGPTN, TIOCSPTLCK = 0x80045430, 0x40045431
want, held = int(sys.argv[1]), []
while True:
    m = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY)
    fcntl.ioctl(m, TIOCSPTLCK, struct.pack("i", 0))
    n = struct.unpack("I", fcntl.ioctl(m, TIOCGPTN, b"\0" * 4))[0]
    held += [m, os.open("/dev/pts/%d" % n, os.O_RDWR | os.O_NOCTTY)]
    if n >= want:
        break
print("holding /dev/pts/%d" % n, flush=True)
sys.stdin.read()
`

// A process in a container (its own devpts instance) that holds its own
// /dev/pts/N, the same name as the port's slave, does not keep the port
// open: the application's close is reported.
func TestCloseWithForeignSameName(t *testing.T) {
	python := testenv.Tool(t, "python3")
	unshare := testenv.Tool(t, "unshare")
	if os.Geteuid() != 0 {
		testenv.Missing(t, "a mount namespace with its own devpts needs root")
	}
	p := openPort(t, Config{})
	num := strings.TrimPrefix(p.Name(), "/dev/pts/")
	cmd := exec.Command(unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts && exec "$0" -c "$1" "$2"`,
		python, holdForeignPTY, num)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("foreign pty holder: %v", err)
	}
	if strings.TrimSpace(line) != "holding "+p.Name() {
		t.Fatalf("foreign pty holder says %q; want it to hold its own %s", line, p.Name())
	}
	a := openApp(t, p.Name())
	waitEvent(t, p, AppOpened, nil)
	a.f.Close()
	waitEvent(t, p, AppClosed, nil)
	if p.AppOpen() {
		t.Fatal("AppOpen true after the application closed")
	}
}
