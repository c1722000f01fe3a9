//go:build linux

package bridge

import (
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// Under connect on-open the bridge holds no session while nobody has the
// port open, and dials when an application has written (before its open
// is reported) or opens it.
func TestBridgeOnOpen(t *testing.T) {
	dev := testenv.NewDevice(t)
	p, b := startBridge(t, dev, BridgeConfig{OnOpen: true, ReleaseAfter: time.Hour})
	waitStats(t, b, "idle", func(s Stats) bool { return s.State == StateIdle })
	if dev.Sessions() != 0 {
		t.Fatal("a session without an application")
	}

	// Bytes written (the open not reported yet) are queued, dialed for
	// and delivered in order.
	app := openApp(t, p)
	data := pattern(3000)
	if _, err := app.Write(data[:1000]); err != nil {
		t.Fatal(err)
	}
	dev.WaitGot(data[:1000], 10*time.Second)
	b.SetAppOpen(true)
	if _, err := app.Write(data[1000:]); err != nil {
		t.Fatal(err)
	}
	dev.WaitGot(data, 10*time.Second)
	if s := b.Stats(); s.Connects != 1 || s.State != StateUp || dev.Sessions() != 1 {
		t.Fatalf("stats %+v, device sessions %d; want the one session up", s, dev.Sessions())
	}
}

// With ReleaseAfter 0 the last close releases the session at once, once
// the queue is empty; bytes written afterwards dial again and are
// delivered, then that session is released too (nobody has the port
// open).
func TestBridgeOnOpenRelease(t *testing.T) {
	dev := testenv.NewDevice(t)
	p, b := startBridge(t, dev, BridgeConfig{OnOpen: true})
	app := openApp(t, p)
	b.SetAppOpen(true)
	waitStats(t, b, "up", func(s Stats) bool { return s.State == StateUp })
	b.SetAppOpen(false)
	s := waitStats(t, b, "released", func(s Stats) bool { return s.State == StateIdle && s.Releases == 1 })
	if s.PossiblyLost != 0 || s.Connects != 1 {
		t.Fatalf("stats %+v: want one session, released, nothing possibly lost", s)
	}
	if _, err := app.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	dev.WaitGot([]byte("after"), 10*time.Second)
	waitStats(t, b, "released again", func(s Stats) bool {
		return s.State == StateIdle && s.Releases == 2 && s.Connects == 2 && s.Buffered == 0
	})
}

// A U2S link splits writes at the datagram size, accepts datagrams only
// from the device's address and counts the others.
func TestUDPLink(t *testing.T) {
	dev, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	u := &udpLink{device: dev.LocalAddr().String(), size: 100, log: slog.New(slog.DiscardHandler), udpCounts: new(udpCounts)}
	conn, info, err := u.dial(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if info.Addr != dev.LocalAddr().String() {
		t.Fatalf("info addr %q", info.Addr)
	}
	if _, err := conn.Write(pattern(250)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2000)
	var from *net.UDPAddr
	for _, want := range []int{100, 100, 50} {
		_ = dev.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, a, err := dev.ReadFromUDP(buf)
		if err != nil || n != want {
			t.Fatalf("datagram of %d bytes (%v), want %d", n, err, want)
		}
		from = a
	}
	stranger, err := net.DialUDP("udp4", nil, from)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if _, err := stranger.Write([]byte("intruder")); err != nil {
		t.Fatal(err)
	}
	// On loopback a datagram is in the receiver's queue when sendto
	// returns: the stranger's is ahead of the device's reply.
	if _, err := dev.WriteToUDP([]byte("reply"), from); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	small := make([]byte, 3)
	got := ""
	for len(got) < 5 {
		n, err := conn.Read(small)
		if err != nil {
			t.Fatal(err)
		}
		got += string(small[:n])
	}
	if got != "reply" {
		t.Fatalf("read %q, want the device's reply", got)
	}
	st := u.stats()
	if st.ToDevice != 3 || st.FromDevice != 1 || st.DroppedFromDevice != 1 || st.LastDroppedFrom != stranger.LocalAddr().String() {
		t.Fatalf("stats %+v", st)
	}
}
