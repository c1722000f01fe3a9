//go:build linux

package bridge

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/monitor"
	"github.com/vsp-dev/vsp/tlsconn"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// The benchmarks below measure the bridge's byte path with real parts: a
// real PTY (the application's side opened in raw mode), the bridge, a
// loopback TLS link made by tlsconn.Client, and an in-process echo
// "device" (crypto/tls server copying back what it reads). Allocations are
// per message (one op = one 1-byte round trip, or one streamed chunk).
// CI runs them with a short -benchtime (make bench-short) so they cannot
// rot; docs/performance.md has the figures and what they led to.

// benchEcho is a TLS (or plain TCP) echo server on loopback.
type benchEcho struct {
	ln  net.Listener
	fp  string
	wg  sync.WaitGroup
	tls *tls.Config
}

func newBenchEcho(tb testing.TB, useTLS bool) *benchEcho {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	e := &benchEcho{ln: ln}
	if useTLS {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1),
			Subject:      pkix.Name{CommonName: "bench"},
			NotBefore:    time.Now().Add(-time.Hour),
			NotAfter:     time.Now().Add(time.Hour),
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			tb.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		e.fp = tlsconn.Fingerprint(leaf)
		e.tls = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}}}
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if e.tls != nil {
				c = tls.Server(c, e.tls)
			}
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		// Echo goroutines end when the bridge (closed before this cleanup
		// runs, see startBenchBridge) closes its end.
		e.wg.Wait()
	})
	return e
}

// startBenchBridge runs a bridge from a fresh PTY to e and returns the
// application's side of the PTY (raw mode), once the link is up and the
// bridge has seen the application open the port.
func startBenchBridge(tb testing.TB, e *benchEcho, hub *monitor.Hub) *os.File {
	tb.Helper()
	p, err := pty.Open(pty.Config{}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	cfg := tlsconn.Config{Profile: tlsconn.ProfileOff}
	if e.tls != nil {
		cfg = tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: e.fp}
	}
	addr := e.ln.Addr().String()
	b, f := runBridgeApp(tb, p, p, hub, func(ctx context.Context) (net.Conn, tlsconn.Info, error) {
		return tlsconn.Dial(ctx, addr, cfg, nil)
	})
	testenv.Eventually(tb, 10*time.Second, "the link up and the application seen open", func() bool {
		return b.Stats().State == StateUp && p.AppOpen()
	})
	return f
}

// runBridgeApp runs a bridge between ep (the pty p, or a wrapper of it) and
// the links dial opens, observed through hub (nil: not), opens p's application side (raw mode) and returns
// both. Cleanup closes the application side, stops the bridge and closes p.
func runBridgeApp(tb testing.TB, p *pty.Port, ep Endpoint, hub *monitor.Hub, dial Dialer) (*Bridge, *os.File) {
	tb.Helper()
	b := NewBridge(ep, dial, BridgeConfig{}, nil)
	b.hub = hub // nil: unobserved
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	f, err := os.OpenFile(p.Name(), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		cancel()
		<-done
		p.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		f.Close()
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("bridge Run: %v", err)
		}
		if err := p.Close(); err != nil {
			tb.Errorf("pty Close: %v", err)
		}
	})
	testenv.Termios(tb, f, testenv.Raw)
	return b, f
}

func benchPingPong(b *testing.B, useTLS bool, hub *monitor.Hub) {
	f := startBenchBridge(b, newBenchEcho(b, useTLS), hub)
	var out, in [1]byte
	roundTrip := func(i int) {
		out[0] = byte(i)
		if _, err := f.Write(out[:]); err != nil {
			b.Fatal(err)
		}
		_ = f.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(f, in[:]); err != nil {
			b.Fatal(err)
		}
		if in != out {
			b.Fatalf("round trip %d: sent %#x, got %#x", i, out[0], in[0])
		}
	}
	for i := range 20 { // warm up the link and the TLS session
		roundTrip(i)
	}
	b.SetBytes(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		roundTrip(i)
	}
}

// BenchmarkBridgePingPong: one op is a 1-byte round trip application →
// bridge → link → echo → link → bridge → application.
func BenchmarkBridgePingPong(b *testing.B) {
	b.Run("tls", func(b *testing.B) { benchPingPong(b, true, nil) })
	b.Run("plain", func(b *testing.B) { benchPingPong(b, false, nil) })
}

func benchStream(b *testing.B, useTLS bool, chunk int, hub *monitor.Hub) {
	f := startBenchBridge(b, newBenchEcho(b, useTLS), hub)
	data := make([]byte, chunk)
	for i := range data {
		data[i] = byte(i*7 + i/251)
	}
	b.SetBytes(int64(chunk))
	b.ReportAllocs()
	b.ResetTimer()
	// Stream b.N chunks, writing and reading concurrently, and check every
	// byte. (b.N, not b.Loop: the writer runs ahead of the reader.)
	n := b.N
	werr := make(chan error, 1)
	go func() {
		for range n {
			if _, err := f.Write(data); err != nil {
				werr <- err
				return
			}
		}
		werr <- nil
	}()
	got := make([]byte, chunk)
	_ = f.SetReadDeadline(time.Now().Add(time.Minute + time.Duration(n)*10*time.Millisecond))
	for i := range n {
		if _, err := io.ReadFull(f, got); err != nil {
			b.Fatalf("chunk %d: %v", i, err)
		}
		if !bytes.Equal(got, data) {
			b.Fatalf("chunk %d: corrupted echo", i)
		}
	}
	if err := <-werr; err != nil {
		b.Fatal(err)
	}
}

// BenchmarkBridgeStream: one op is a chunk written by the application and
// echoed back through the bridge (throughput as MB/s of payload).
func BenchmarkBridgeStream(b *testing.B) {
	b.Run("tls/4KiB", func(b *testing.B) { benchStream(b, true, 4<<10, nil) })
	b.Run("tls/32KiB", func(b *testing.B) { benchStream(b, true, 32<<10, nil) })
	b.Run("plain/32KiB", func(b *testing.B) { benchStream(b, false, 32<<10, nil) })
}

// observedHub is a hub with what a busy port may have attached: one
// monitor (a client reading JSON records as fast as it can) and one trace
// file (hexdump).
func observedHub(b *testing.B) *monitor.Hub {
	h := monitor.NewHub("bench")
	tr, err := monitor.StartTrace(h, monitor.TraceConfig{File: filepath.Join(b.TempDir(), "bench.trace")}, nil)
	if err != nil {
		b.Fatal(err)
	}
	sub := h.Subscribe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		enc := monitor.Encoder{Format: monitor.FormatJSON}
		var buf []byte
		for {
			r, err := sub.Next(ctx)
			if err != nil {
				return
			}
			buf = enc.Append(buf[:0], r)
			_, _ = io.Discard.Write(buf)
		}
	}()
	b.Cleanup(func() {
		cancel()
		<-done
		sub.Close()
		_ = tr.Close()
	})
	return h
}

// BenchmarkBridgeObserved: the ping-pong and the stream with one monitor
// and one trace file attached, and with one monitor that never reads (docs/performance.md compares them with the
// unobserved runs above).
func BenchmarkBridgeObserved(b *testing.B) {
	b.Run("pingpong/plain", func(b *testing.B) { benchPingPong(b, false, observedHub(b)) })
	b.Run("stream/plain/32KiB", func(b *testing.B) { benchStream(b, false, 32<<10, observedHub(b)) })
	b.Run("pingpong/plain/stalled", func(b *testing.B) { benchPingPong(b, false, stalledHub(b)) })
	b.Run("stream/plain/32KiB/stalled", func(b *testing.B) { benchStream(b, false, 32<<10, stalledHub(b)) })
}

// stalledHub is a hub with one monitor that never reads (acceptance 3 of
// issue 15): its queue fills at once, and from then on every record is
// dropped and counted.
func stalledHub(b *testing.B) *monitor.Hub {
	h := monitor.NewHub("bench")
	sub := h.Subscribe()
	b.Cleanup(sub.Close)
	return h
}

// BenchmarkRing: the outage buffer's queue and drain, 1 KiB at a time.
func BenchmarkRing(b *testing.B) {
	r := newRing(DefaultBuffer)
	p := make([]byte, 1<<10)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if r.Write(p) != len(p) {
			b.Fatal("ring full: the drain below should prevent that")
		}
		// Drain as the bridge's flush does, a chunk at a time, keeping the
		// ring half full (a ring that empties gives its memory back).
		for r.Len() > DefaultBuffer/2 {
			r.Discard(min(len(r.Peek()), len(p)))
		}
	}
}

// The tests below cover the two changes made on the strength of these
// benchmarks and of cmd/vspbench's scale scenario (docs/performance.md).

// TestRingAllocatesOnDemand: an idle ring holds no memory; it takes it for
// an outage and gives it back when drained, without changing what it
// reports.
func TestRingAllocatesOnDemand(t *testing.T) {
	r := newRing(1 << 10)
	if r.buf != nil || r.Free() != 1<<10 || r.Cap() != 1<<10 {
		t.Fatalf("new ring: buf %d bytes, Free %d, Cap %d", len(r.buf), r.Free(), r.Cap())
	}
	if n := r.Write([]byte("queued")); n != 6 || r.buf == nil || r.Free() != 1<<10-6 {
		t.Fatalf("Write took %d, buf %d bytes, Free %d", n, len(r.buf), r.Free())
	}
	if got := string(r.Peek()); got != "queued" {
		t.Fatalf("Peek = %q", got)
	}
	r.Discard(6)
	if r.buf != nil || r.Len() != 0 || r.Free() != 1<<10 {
		t.Fatalf("drained ring: buf %d bytes, Len %d, Free %d", len(r.buf), r.Len(), r.Free())
	}
}

// lateOpen is a pty whose open notification has not arrived (yet): what a
// port sees for a moment after every open under load, and for good when its
// inotify watch could not be set up.
type lateOpen struct{ *pty.Port }

func (lateOpen) AppOpen() bool { return false }

// TestBridgeReplyToFreshOpen: an application that opens the port and writes
// at once gets the reply, even before the pty reports the open; device
// bytes nobody asked for are still discarded.
func TestBridgeReplyToFreshOpen(t *testing.T) {
	e := newBenchEcho(t, false)
	p, err := pty.Open(pty.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := e.ln.Addr().String()
	var mu sync.Mutex
	var link net.Conn
	b, f := runBridgeApp(t, p, lateOpen{p}, nil, func(ctx context.Context) (net.Conn, tlsconn.Info, error) {
		c, info, err := tlsconn.Dial(ctx, addr, tlsconn.Config{Profile: tlsconn.ProfileOff}, nil)
		mu.Lock()
		link = c
		mu.Unlock()
		return c, info, err
	})
	waitStats(t, b, "link up", func(s Stats) bool { return s.State == StateUp })
	if _, err := f.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	_ = f.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatalf("no reply: %v (stats %+v)", err, b.Stats())
	}
	if string(got) != "ping" {
		t.Fatalf("reply %q, want %q", got, "ping")
	}
	if s := b.Stats(); s.Discarded != 0 {
		t.Fatalf("%d reply bytes discarded", s.Discarded)
	}
	// Once the application has been quiet for longer than openGrace,
	// unsolicited device bytes are discarded again (the pty says no
	// application has the port open).
	b.appWrote.Store(time.Now().Add(-openGrace - time.Second).UnixNano())
	mu.Lock()
	c := link
	mu.Unlock()
	// Bytes written on the bridge's own link come back from the echo
	// device without the application having asked for anything.
	if _, err := c.Write([]byte("unsolicited")); err != nil {
		t.Fatal(err)
	}
	waitStats(t, b, "unsolicited bytes discarded", func(s Stats) bool { return s.Discarded == uint64(len("unsolicited")) })
}

// chunks is a readyReader with queued chunks; an empty chunk stands for
// "nothing ready now".
type chunks struct {
	q     [][]byte
	calls int
}

func (c *chunks) ReadReady(b []byte) (int, error) {
	c.calls++
	if len(c.q) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.q[0])
	if c.q[0] = c.q[0][n:]; len(c.q[0]) == 0 {
		c.q = c.q[1:]
	}
	return n, nil
}

// TestReadBurst: after a full master read, readBurst adds what is ready
// while another full read fits, and stops at once when nothing is ready
// or on an error, keeping what it has.
func TestReadBurst(t *testing.T) {
	full := bytes.Repeat([]byte{'x'}, burstMin)
	tests := []struct {
		name  string
		q     [][]byte
		buf   int
		want  int // bytes in buf afterwards, from the first read's burstMin on
		calls int
	}{
		{"fills the buffer", [][]byte{full, full, full, full}, 16 << 10, 4 * burstMin, 3},
		{"nothing ready", [][]byte{{}}, 16 << 10, burstMin, 1},
		{"some ready", [][]byte{[]byte("tail"), {}}, 16 << 10, burstMin + 4, 2},
		{"error keeps what it has", [][]byte{full}, 16 << 10, 2 * burstMin, 2},
		{"no room for another read", [][]byte{full}, 2*burstMin - 1, burstMin, 0},
	}
	var b Bridge
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &chunks{q: tc.q}
			buf := make([]byte, tc.buf)
			if got := b.readBurst(c, buf, burstMin); got != tc.want || c.calls != tc.calls {
				t.Fatalf("readBurst = %d after %d ReadReady calls, want %d after %d", got, c.calls, tc.want, tc.calls)
			}
		})
	}
}

// TestBridgeBurst: a burst much larger than a PTY master read (which
// readBurst sends in 16 KiB pieces) reaches the device and comes back
// complete and in order.
func TestBridgeBurst(t *testing.T) {
	f := startBenchBridge(t, newBenchEcho(t, true), nil)
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i*7 + i/251)
	}
	werr := make(chan error, 1)
	go func() {
		_, err := f.Write(want)
		werr <- err
	}()
	got := make([]byte, len(want))
	_ = f.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatal(err)
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the burst came back different")
	}
}
