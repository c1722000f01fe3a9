package service

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/tlsconn"
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

// device is a loopback TCP "device" the test can take away and bring back
// on the same address; it records what it receives.
type device struct {
	t    *testing.T
	addr string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	got   bytes.Buffer
	grow  chan struct{}
}

func newDevice(t *testing.T) *device {
	d := &device{t: t, grow: make(chan struct{})}
	d.up("127.0.0.1:0")
	t.Cleanup(d.down)
	return d
}

func (d *device) up(addr string) {
	d.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	d.ln, d.addr = ln, ln.Addr().String()
	d.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns = append(d.conns, c)
			d.mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					d.mu.Lock()
					d.got.Write(buf[:n])
					close(d.grow)
					d.grow = make(chan struct{})
					d.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
}

// down closes the listener and every session, like a device that reboots.
func (d *device) down() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln != nil {
		d.ln.Close()
		d.ln = nil
	}
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

func (d *device) sessions() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// send writes p on the newest session.
func (d *device) send(p []byte) {
	d.t.Helper()
	d.mu.Lock()
	c := d.conns[len(d.conns)-1]
	d.mu.Unlock()
	if _, err := c.Write(p); err != nil {
		d.t.Fatal(err)
	}
}

// waitGot waits until the device has received want, in order.
func (d *device) waitGot(want []byte, timeout time.Duration) {
	d.t.Helper()
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		got, grow := d.got.Bytes(), d.grow
		if bytes.Equal(got, want) {
			d.mu.Unlock()
			return
		}
		if len(got) > len(want) || !bytes.Equal(got, want[:len(got)]) {
			d.mu.Unlock()
			d.t.Fatalf("device got %d bytes that differ from the %d expected", len(got), len(want))
		}
		n := len(got)
		d.mu.Unlock()
		select {
		case <-grow:
		case <-deadline:
			d.t.Fatalf("device got %d of %d bytes after %v", n, len(want), timeout)
		}
	}
}

func (d *device) dialer() Dialer {
	return func(ctx context.Context) (net.Conn, tlsconn.Info, error) {
		d.mu.Lock()
		addr := d.addr
		d.mu.Unlock()
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
		return c, tlsconn.Info{Addr: addr}, err
	}
}

// startBridge runs a bridge between a real pty and dev; it returns the pty
// and the bridge.
func startBridge(t *testing.T, dev *device, cfg BridgeConfig) (*pty.Port, *Bridge) {
	t.Helper()
	p, err := pty.Open(pty.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Backoff == (tlsconn.Backoff{}) {
		cfg.Backoff = tlsconn.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	}
	b := NewBridge(p, dev.dialer(), cfg, nil)
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := b.Stats()
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge: %s: not after 10s; stats %+v", what, s)
		}
		time.Sleep(5 * time.Millisecond)
	}
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
	dev := newDevice(t)
	p, b := startBridge(t, dev, BridgeConfig{})
	app := openApp(t, p)
	waitStats(t, b, "link up", func(s Stats) bool { return s.State == StateUp })

	data := pattern(48 << 10)
	if _, err := app.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	dev.waitGot(data[:1000], 10*time.Second)

	addr := dev.addr
	dev.down()
	waitStats(t, b, "link down", func(s Stats) bool { return s.State != StateUp })
	if _, err := app.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	waitStats(t, b, "outage data buffered", func(s Stats) bool { return s.Buffered == len(data)-1000 })
	dev.up(addr)
	dev.waitGot(data, 10*time.Second)
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
	dev := newDevice(t)
	addr := dev.addr
	dev.down()
	p, b := startBridge(t, dev, BridgeConfig{Buffer: 1024})
	app := openApp(t, p)

	data := pattern(256 << 10) // far more than the buffer and the pty queues
	wrote := make(chan error, 1)
	go func() {
		_, err := app.Write(data)
		wrote <- err
	}()
	waitStats(t, b, "buffer full", func(s Stats) bool { return s.Buffered == 1024 })
	select {
	case err := <-wrote:
		t.Fatalf("the application's write of %d bytes returned (%v) with the link down and a 1 KiB buffer; want it blocked", len(data), err)
	case <-time.After(300 * time.Millisecond):
	}
	dev.up(addr)
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the application's write did not complete after the link came back")
	}
	dev.waitGot(data, 20*time.Second)
}

// Bytes from the device while no application has the port open are
// dropped and counted (stale data policy "discard"); an application that
// opens the port then gets only what comes after.
func TestBridgeStaleDiscard(t *testing.T) {
	dev := newDevice(t)
	p, b := startBridge(t, dev, BridgeConfig{})
	waitStats(t, b, "link up", func(s Stats) bool { return s.State == StateUp })
	for dev.sessions() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	dev.send([]byte("stale"))
	waitStats(t, b, "stale bytes discarded", func(s Stats) bool { return s.Discarded == 5 })

	app := openApp(t, p)
	deadline := time.Now().Add(10 * time.Second)
	for !p.AppOpen() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	dev.send([]byte("fresh"))
	got := make([]byte, 5)
	_ = app.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(app, got); err != nil {
		t.Fatal(err)
	}
	if string(got) != "fresh" {
		t.Fatalf("application read %q, want %q", got, "fresh")
	}
	if s := b.Stats(); s.ToApp != 5 || s.Discarded != 5 {
		t.Fatalf("stats %+v: want 5 bytes to the app and 5 discarded", s)
	}
}

// Cancelling Run is a normal end and leaves the pty usable.
func TestBridgeStopIsClean(t *testing.T) {
	dev := newDevice(t)
	p, err := pty.Open(pty.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	b := NewBridge(p, dev.dialer(), BridgeConfig{}, nil)
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
