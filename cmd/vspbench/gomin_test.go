//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary be the go-min relay too: goMinPath
// re-executes os.Executable(), which under go test is this binary.
func TestMain(m *testing.M) {
	if addr, ok := os.LookupEnv(goRelayEnv); ok {
		os.Exit(goRelay(addr, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestGoMinEndsWithApp: the go-min relays end by themselves, with exit
// status 0, once the application closes the tty (the master reads EIO), as
// a redirector should; and Stop ends one whose tty was never opened.
func TestGoMinEndsWithApp(t *testing.T) {
	for _, raw := range []bool{false, true} {
		g := &goMinPath{dir: t.TempDir(), raw: raw}
		t.Run(g.Name(), func(t *testing.T) {
			tty, err := g.Start()
			if err != nil {
				t.Fatal(errors.Join(err, g.Stop()))
			}
			defer g.Stop()
			app, err := openApp(tty)
			if err != nil {
				t.Fatal(err)
			}
			if err := app.waitEcho(10 * time.Second); err != nil {
				t.Fatal(err)
			}
			if _, err := app.rtt(20, 5*time.Second); err != nil {
				t.Fatal(err)
			}
			if err := app.Close(); err != nil {
				t.Fatal(err)
			}
			select {
			case <-g.relay.done:
				if g.relay.err != nil {
					t.Fatalf("relay exited with %v", g.relay.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("relay still running 10 s after the application closed the tty")
			}
			if err := g.Stop(); err != nil {
				t.Fatal(err)
			}

			if _, err := g.Start(); err != nil {
				t.Fatal(errors.Join(err, g.Stop()))
			}
			relay := g.relay
			if err := g.Stop(); err != nil {
				t.Fatal(err)
			}
			if !relay.exited() {
				t.Fatal("relay still running after Stop")
			}
		})
	}
}

// TestGoRelayPorts: the relay process refuses a number of ports that is
// not a positive number, before it opens anything.
func TestGoRelayPorts(t *testing.T) {
	for _, v := range []string{"0", "-1", "x", ""} {
		t.Run(v, func(t *testing.T) {
			t.Setenv(goRelayPortsEnv, v)
			var stdout, stderr bytes.Buffer
			if code := goRelay("127.0.0.1:1", &stdout, &stderr); code != 2 || stdout.Len() != 0 || !strings.Contains(stderr.String(), goRelayPortsEnv) {
				t.Errorf("exit %d, stdout %q, stderr %q; want 2, nothing, a complaint about %s", code, stdout.String(), stderr.String(), goRelayPortsEnv)
			}
		})
	}
}
