//go:build linux

package main

import (
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// setBaud is tcsetattr(TCSADRAIN) with a new speed.
func (r *rawTTY) setBaud(speed uint32) {
	r.t.Helper()
	tio, err := unix.IoctlGetTermios(r.fd, unix.TCGETS)
	if err != nil {
		r.t.Fatal(err)
	}
	tio.Cflag = tio.Cflag&^unix.CBAUD | speed
	if err := unix.IoctlSetTermios(r.fd, unix.TCSETSW, tio); err != nil {
		r.t.Fatalf("tcsetattr: %v", err)
	}
}

// readN reads n bytes within timeout.
func (r *rawTTY) readN(n int, timeout time.Duration) []byte {
	r.t.Helper()
	var got []byte
	buf := make([]byte, 256)
	deadline := time.Now().Add(timeout)
	for len(got) < n && r.wait(unix.POLLIN, time.Until(deadline)) {
		k, err := unix.Read(r.fd, buf[:min(len(buf), n-len(got))])
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		got = append(got, buf[:k]...)
	}
	return got
}

var speedApplied = regexp.MustCompile(`baud=(\d+) .*sio_tx=(\d+)`)

// Issue 18, order across settings changes: an application writes A,
// changes the speed with tcsetattr(TCSADRAIN), writes B; ezsim (RFC 2217,
// echo) logs with each speed it applies how many bytes it had sent on the
// line. A always reaches the line before the new speed; B after it as far
// as the pty can tell (pty.Port.SetSettingsHandler: bytes the application
// writes right after the change that are already queued when vsp measures
// it go before the command): counted and logged.
func TestSettingsInOrderWithData(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo", "--rfc2217")
	link := tempLink(t)
	startVsp(t, link, "--device", sim.addr, "--tls", "off", "--rfc2217", "--stale-data", "keep")
	app := openRawTTY(t, link)
	defer app.close()
	const cycles, size = 100, 16
	speeds := []struct {
		flag uint32
		baud int
	}{{unix.B19200, 19200}, {unix.B9600, 9600}}
	from, aAfter, bBefore := 0, 0, 0
	for i := range cycles {
		a := []byte(fmt.Sprintf("A%03d%s", i, "aaaaaaaaaaaa"))
		b := []byte(fmt.Sprintf("B%03d%s", i, "bbbbbbbbbbbb"))
		sp := speeds[i%2]
		app.write(a)
		app.setBaud(sp.flag)
		app.write(b)
		if got := app.readN(2*size, 10*time.Second); string(got) != string(a)+string(b) {
			t.Fatalf("cycle %d: echo %q, want %q", i, got, string(a)+string(b))
		}
		l, at := sim.waitLine(`msg="rfc2217: serial speed applied"`, from, 10*time.Second)
		from = at + 1
		m := speedApplied.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("cycle %d: cannot parse %q", i, l)
		}
		baud, _ := strconv.Atoi(m[1])
		sent, _ := strconv.Atoi(m[2])
		aEnd := i*2*size + size // every byte of A
		switch {
		case baud != sp.baud:
			t.Fatalf("cycle %d: ezsim applied %d bit/s, want %d", i, baud, sp.baud)
		case sent < aEnd:
			aAfter++
			t.Errorf("cycle %d: the speed change reached the line after %d bytes, before the end of A (%d)", i, sent, aEnd)
		case sent > aEnd:
			bBefore++
		}
	}
	t.Logf("%d cycles: A (or part of it) after the speed change in %d, B (or part of it) before it in %d", cycles, aAfter, bBefore)
}
