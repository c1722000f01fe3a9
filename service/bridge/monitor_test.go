//go:build linux

package bridge

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/monitor"
	"github.com/vsp-dev/vsp/tlsconn"
)

// nextData returns the next data record in dir, skipping events.
func nextData(t *testing.T, s *monitor.Sub, dir string) monitor.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		r, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("no %s record: %v", dir, err)
		}
		if r.Kind == monitor.KindData && r.Dir == dir {
			return r
		}
	}
}

// A port's observers see both directions; SetTrace switches the trace file
// while data flows, without a restart (same bridge, no new connect); the
// hub, and so a monitor, survives Restart.
func TestPortObserversAcrossSetTraceAndRestart(t *testing.T) {
	dev := testenv.NewDevice(t)
	dir := t.TempDir()
	spec := PortSpec{
		Name:    "obs",
		PTY:     pty.Config{Link: filepath.Join(dir, "tty")},
		Devices: []string{dev.Addr()},
		Link:    tlsconn.Config{Profile: tlsconn.ProfileOff},
		Bridge:  BridgeConfig{StaleData: StaleKeep},
	}
	p, err := StartPort(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Close() }()
	testenv.Await(t, 10*time.Second, "link up", p.Status, func(s Status) bool { return s.State == StateUp })
	sub := p.Hub().Subscribe()
	defer sub.Close()
	app, err := os.OpenFile(spec.PTY.Link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	testenv.Termios(t, app, testenv.Raw)

	if _, err := app.Write([]byte("one")); err != nil {
		t.Fatal(err)
	}
	if r := nextData(t, sub, monitor.ToDevice); string(r.Data) != "one" || r.Port != "obs" {
		t.Fatalf("record %+v", r)
	}
	dev.Send([]byte("back"))
	if r := nextData(t, sub, monitor.ToApp); string(r.Data) != "back" {
		t.Fatalf("record %+v", r)
	}

	trace := filepath.Join(dir, "trace")
	connects := p.Status().Connects
	bridge := p.bridge
	spec.Trace = monitor.TraceConfig{File: trace}
	if !OnlyTraceDiffers(p.Spec(), spec) {
		t.Fatal("OnlyTraceDiffers: false for a change of Trace alone")
	}
	done := make(chan struct{})
	go func() { // traffic while the trace is switched
		defer close(done)
		for range 50 {
			if _, err := app.Write([]byte("x")); err != nil {
				return
			}
		}
	}()
	if err := p.SetTrace(spec.Trace); err != nil {
		t.Fatal(err)
	}
	<-done
	for n := 0; n < 50; { // the bridge has read every x: "traced" is a read of its own
		n += len(nextData(t, sub, monitor.ToDevice).Data)
	}
	if _, err := app.Write([]byte("traced")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "the trace file holds what was written", func() bool {
		b, _ := os.ReadFile(trace)
		return bytes.Contains(b, []byte("|traced|"))
	})
	if p.bridge != bridge || p.Status().Connects != connects || p.Status().Trace != trace {
		t.Errorf("SetTrace restarted the bridge or left no trace: %+v", p.Status())
	}

	spec.Bridge.Buffer = 128 << 10 // anything else: a restart on the same tty
	if OnlyTraceDiffers(p.Spec(), spec) {
		t.Fatal("OnlyTraceDiffers: true for a change of the buffer")
	}
	hub := p.Hub()
	if p, err = p.Restart(spec, nil); err != nil {
		t.Fatal(err)
	}
	if p.Hub() != hub {
		t.Fatal("Restart replaced the port's hub: monitors would go deaf")
	}
	if _, err := app.Write([]byte("after restart")); err != nil {
		t.Fatal(err)
	}
	for r := nextData(t, sub, monitor.ToDevice); !bytes.HasSuffix(r.Data, []byte("after restart")); {
		r = nextData(t, sub, monitor.ToDevice) // the x's, then this
	}
}
