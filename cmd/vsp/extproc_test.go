package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/config"
	"golang.org/x/sys/unix"
)

// `[tty] extproc = false` (and `vsp run --no-extproc`) gives the pty the
// kernel's line discipline back: the pty starts without EXTPROC, and an
// application's canonical-mode settings still reach the port (polled).
func TestExtprocOff(t *testing.T) {
	d := startDaemon(t)
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	link := tempLink(t)
	body := fmt.Sprintf("device = %q\ntls = \"off\"\nlink = %q\n[tty]\nextproc = false\n", freeAddr(t), link)
	if err := os.WriteFile(config.PortFile(d.dir, "poll"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	l, _ := d.waitLine(`"pty: port open","port":"poll"`, 0, 20*time.Second)
	if !strings.Contains(l, `"extproc":false`) {
		t.Fatalf("extproc = false: %s", l)
	}
	// The application's termios change is seen by polling.
	app := openApp(t, link)
	testenv.Termios(t, app, func(tio *unix.Termios) {
		tio.Lflag |= unix.ICANON | unix.ECHO
		tio.Cflag = tio.Cflag&^unix.CBAUD | unix.B19200
		tio.Ispeed, tio.Ospeed = 19200, 19200
	})
	d.waitState(t, "poll", 10*time.Second, func(st service.PortState) bool { return strings.Contains(st.AppSettings, "19200") })

	// The flag, for a foreground port.
	p := startProc(t, "vsp", "run", "--log-format", "json", "--link", filepath.Join(t.TempDir(), "ttyF"), "--device", freeAddr(t), "--tls", "off", "--no-extproc")
	if l, _ := p.waitLine(`"pty: port open"`, 0, 20*time.Second); !strings.Contains(l, `"extproc":false`) {
		t.Fatalf("--no-extproc: %s", l)
	}
}
