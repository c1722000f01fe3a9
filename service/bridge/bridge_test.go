//go:build linux

package bridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/tlsconn"

	"github.com/vsp-dev/vsp/internal/testenv"
)

func TestRing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		size  int
		ops   []int // >0: write that many bytes; <0: discard that many
		queue int   // bytes queued at the end
	}{
		{"empty", 8, nil, 0},
		{"fill", 8, []int{8}, 8},
		{"overfill", 8, []int{12}, 8},
		{"wrap", 8, []int{6, -4, 5}, 7},
		{"wrap twice", 8, []int{7, -7, 7, -7, 8}, 8},
		{"discard too much", 8, []int{3, -5}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRing(tc.size)
			var model []byte // what a plain slice would hold
			next := byte(0)
			for _, op := range tc.ops {
				if op > 0 {
					p := make([]byte, op)
					for i := range p {
						p[i] = next
						next++
					}
					n := r.Write(p)
					if want := min(op, tc.size-len(model)); n != want {
						t.Fatalf("Write(%d) took %d, want %d", op, n, want)
					}
					model = append(model, p[:n]...)
				} else {
					r.Discard(-op)
					model = model[min(-op, len(model)):]
				}
				if r.Len() != len(model) || r.Free() != tc.size-len(model) {
					t.Fatalf("Len %d Free %d, want %d %d", r.Len(), r.Free(), len(model), tc.size-len(model))
				}
			}
			if r.Len() != tc.queue {
				t.Fatalf("queued %d, want %d", r.Len(), tc.queue)
			}
			// Draining with Peek/Discard gives the bytes in order.
			var got []byte
			for r.Len() > 0 {
				p := r.Peek()
				if len(p) == 0 {
					t.Fatal("Peek returned nothing with bytes queued")
				}
				got = append(got, p...)
				r.Discard(len(p))
			}
			if !bytes.Equal(got, model) {
				t.Fatalf("drained %v, want %v", got, model)
			}
		})
	}
}

// dialerOf dials d the way a bridge dials a device.
func dialerOf(d *testenv.Device) Dialer {
	return func(ctx context.Context) (net.Conn, tlsconn.Info, error) {
		addr := d.Addr()
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		return c, tlsconn.Info{Addr: addr}, err
	}
}

// startBridge runs a bridge between a real pty and dev; it returns the pty
// and the bridge.
func startBridge(t *testing.T, dev *testenv.Device, cfg BridgeConfig) (*pty.Port, *Bridge) {
	t.Helper()
	p, err := pty.Open(pty.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backoff == (tlsconn.Backoff{}) {
		cfg.Backoff = tlsconn.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	}
	b := NewBridge(p, dialerOf(dev), cfg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("bridge Run: %v", err)
		}
		if err := p.Close(); err != nil {
			t.Errorf("pty Close: %v", err)
		}
	})
	return p, b
}

// openApp opens the pty's slave as an application does, in raw mode.
func openApp(t *testing.T, p *pty.Port) *os.File {
	t.Helper()
	f, err := os.OpenFile(p.Name(), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if _, err := term.MakeRaw(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	return f
}

func waitStats(t *testing.T, b *Bridge, what string, ok func(Stats) bool) Stats {
	t.Helper()
	return testenv.Await(t, 10*time.Second, "bridge: "+what, b.Stats, ok)
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// What the application writes while the device is away is held and
// delivered in order after the reconnect; nothing is lost.
func TestBridgeOutageBufferInOrder(t *testing.T) {
	dev := testenv.NewDevice(t)
	p, b := startBridge(t, dev, BridgeConfig{})
	app := openApp(t, p)
	waitStats(t, b, "link up", func(s Stats) bool { return s.State == StateUp })

	data := pattern(48 << 10)
	if _, err := app.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	dev.WaitGot(data[:1000], 10*time.Second)

	addr := dev.Addr()
	dev.Down()
	waitStats(t, b, "link down", func(s Stats) bool { return s.State != StateUp })
	if _, err := app.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	waitStats(t, b, "outage data buffered", func(s Stats) bool { return s.Buffered == len(data)-1000 })
	dev.Up(addr)
	dev.WaitGot(data, 10*time.Second)
	// The counter moves when a write to the link returns, which may be a
	// moment after the device has the bytes.
	s := waitStats(t, b, "buffer drained and counted", func(s Stats) bool {
		return s.Buffered == 0 && s.State == StateUp && s.ToDevice == uint64(len(data))
	})
	// The 1000 bytes of the first session went to a connection that then
	// died: the bridge may count them as possibly lost (it cannot know the
	// device handled them), but nothing sent after the outage.
	if s.ToDevice != uint64(len(data)) || s.PossiblyLost > 1000 || s.Reconnects < 1 {
		t.Fatalf("stats %+v: want %d bytes to the device, at most 1000 possibly lost, a reconnect", s, len(data))
	}
}

// With the buffer full and the link down, the bridge stops reading the
// pty: the application's write blocks (no error, nothing dropped), and
// completes once the link is back.
func TestBridgeBackpressure(t *testing.T) {
	dev := testenv.NewDevice(t)
	addr := dev.Addr()
	dev.Down()
	p, b := startBridge(t, dev, BridgeConfig{Buffer: 1024})
	app := openApp(t, p)

	data := pattern(256 << 10) // far more than the buffer and the pty queues
	wrote := make(chan error, 1)
	go func() {
		_, err := app.Write(data)
		wrote <- err
	}()
	waitStats(t, b, "buffer full", func(s Stats) bool { return s.Buffered == 1024 })
	// The write waits for room in the pty's queue, which only the bridge
	// (now not reading) can make.
	testenv.Blocked(t, 10*time.Second, "syscall", "os.(*File).Write") // Fd made the file blocking
	select {
	case err := <-wrote:
		t.Fatalf("the application's write of %d bytes returned (%v) with the link down and a 1 KiB buffer; want it blocked", len(data), err)
	default:
	}
	dev.Up(addr)
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the application's write did not complete after the link came back")
	}
	dev.WaitGot(data, 20*time.Second)
}

// Bytes from the device while no application has the port open are
// dropped and counted (stale data policy "discard"); an application that
// opens the port then gets only what comes after.
func TestBridgeStaleDiscard(t *testing.T) {
	dev := testenv.NewDevice(t)
	p, b := startBridge(t, dev, BridgeConfig{})
	waitStats(t, b, "link up", func(s Stats) bool { return s.State == StateUp })
	testenv.Eventually(t, 10*time.Second, "a device session", func() bool { return dev.Sessions() > 0 })
	dev.Send([]byte("stale"))
	waitStats(t, b, "stale bytes discarded", func(s Stats) bool { return s.Discarded == 5 })

	app := openApp(t, p)
	testenv.Eventually(t, 10*time.Second, "the application seen open", p.AppOpen)
	dev.Send([]byte("fresh"))
	got := make([]byte, 5)
	_ = app.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(app, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "fresh" {
		t.Fatalf("application read %q, want %q", got, "fresh")
	}
	// The bridge counts a write once it has returned, which may be after
	// the application read the bytes.
	waitStats(t, b, "5 bytes to the app and 5 discarded", func(s Stats) bool { return s.ToApp == 5 && s.Discarded == 5 })
}

// Cancelling Run is a normal end and leaves the pty usable.
func TestBridgeStopIsClean(t *testing.T) {
	dev := testenv.NewDevice(t)
	p, err := pty.Open(pty.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b := NewBridge(p, dialerOf(dev), BridgeConfig{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	waitStats(t, b, "link up", func(s Stats) bool { return s.State == StateUp })
	cancel()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if s := b.Stats(); s.State != StateStopped {
		t.Fatalf("state %q after Run, want %q", s.State, StateStopped)
	}
}
