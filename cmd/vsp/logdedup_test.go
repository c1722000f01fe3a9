//go:build linux

package main

import (
	"net"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// Identical warnings are logged once per minute; the count of those left
// out is not lost when the daemon stops first: it is written at exit
// (docs/troubleshooting.md, "The same warning only once").
func TestRepeatedWarningsCountedAtExit(t *testing.T) {
	// A "device" that accepts and hangs up at once: the port redials with
	// backoff, and each failure logs the same warning.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	var dials atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dials.Add(1)
			_ = c.Close()
		}
	}()
	p := runProc(t, "vsp run", exec.Command(bins.Build(t, "vsp"), "run", "--device", ln.Addr().String(), "--tls", "legacy",
		"--trust", "tofu", "--known-devices", t.TempDir()+"/known", "--link", tempLink(t), "--socket", t.TempDir()+"/s"))
	testenv.Eventually(t, 30*time.Second, "4 dials", func() bool { return dials.Load() >= 4 })
	if err := p.stop(); err != nil {
		t.Fatalf("%v\n%s", err, p.output())
	}
	out := p.output()
	// The record without its time and count, and without the ports of the
	// connection ("read tcp 127.0.0.1:58572->127.0.0.1:45503: …"; the local
	// one is new at each dial): records that differ only there are the
	// same warning (docs/troubleshooting.md).
	ports := regexp.MustCompile(`tcp (\S+?):\d+->(\S+?):\d+:`)
	rest := func(l string) string {
		l = l[strings.Index(l, " level="):]
		if i := strings.Index(l, " repeated="); i >= 0 {
			l = l[:i]
		}
		return ports.ReplaceAllString(l, "tcp $1:*->$2:*:")
	}
	// The handshake fails with "EOF" or "connection reset by peer" as
	// the hang-up races it: each text is its own warning, logged once,
	// its repeats counted at exit.
	logged := map[string]bool{}
	counted := 0
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "level=WARN") && !strings.Contains(l, "level=ERROR") {
			continue
		}
		if !strings.Contains(l, " repeated=") {
			logged[rest(l)] = true
			continue
		}
		counted++
		if !logged[rest(l)] {
			t.Errorf("a count of a warning not logged before it: %s", l)
		}
	}
	if counted == 0 {
		t.Fatalf("want a warning, then its count at exit (repeated=N); got:\n%s", out)
	}
}
