package pty

import (
	"bytes"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// TestReadReady: ReadReady never waits (0 at once with nothing written),
// returns what the application wrote once the master holds it, and a
// burst larger than one master read comes through Read and ReadReady
// together complete and in order.
func TestReadReady(t *testing.T) {
	p := openPort(t, Config{})
	a := openApp(t, p.Name())
	buf := make([]byte, 16<<10)
	start := time.Now()
	if n, err := p.ReadReady(buf); n != 0 || err != nil {
		t.Fatalf("ReadReady with nothing written = %d, %v; want 0, nil", n, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("ReadReady with nothing written took %v", d)
	}
	if _, err := a.f.Write([]byte("ready")); err != nil {
		t.Fatal(err)
	}
	var got []byte
	testenv.Eventually(t, waitTimeout, "ReadReady returns what the application wrote", func() bool {
		n, err := p.ReadReady(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
		return len(got) >= len("ready")
	})
	if string(got) != "ready" {
		t.Fatalf("ReadReady got %q, want %q", got, "ready")
	}
	for _, size := range []int{1, 100, 1 << 20} { // ReadReady's 1-byte path, a tail, a burst
		want := make([]byte, 64<<10)
		for i := range want {
			want[i] = byte(i*7 + i/251)
		}
		go func() { _, _ = a.f.Write(want) }()
		got = got[:0]
		p.SetReadDeadline(time.Now().Add(waitTimeout))
		for len(got) < len(want) {
			n, err := p.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:n]...)
			for {
				n, err := p.ReadReady(buf[:min(size, len(buf))])
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
				got = append(got, buf[:n]...)
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ReadReady %d: %d bytes, not what the application wrote", size, len(got))
		}
	}
}
