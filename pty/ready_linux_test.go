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
		werr := make(chan error, 1)
		go func() { _, err := a.f.Write(want); werr <- err }()
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
		if err := <-werr; err != nil {
			t.Fatalf("application write: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ReadReady %d: %d bytes, not what the application wrote", size, len(got))
		}
	}
}

// ReadReady leaves a due handler call to Read, which places it among the
// bytes, and counts what it returns as Read does: a change measured after
// "aaaa" comes between "aaaa" and "bb" whether the bytes come through
// Read or ReadReady.
func TestReadReadyLeavesHandlerCallsToRead(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	var l orderLog
	p.SetSettingsHandler(l.handler)
	a := openApp(t, p.Name())
	if _, err := a.f.Write([]byte("aaaa")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return inq(t, p) == 4 })
	p.queue(pendingChange{kind: SettingsChanged, s: Settings{Baud: 1200}, target: -1}, true) // after aaaa
	if _, err := a.f.Write([]byte("bb")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return inq(t, p) == 6 })
	buf := make([]byte, 16)
	if n, err := p.ReadReady(buf); n != 0 || err != nil {
		t.Fatalf("ReadReady with a handler call pending = %d, %v; want 0, nil", n, err)
	}
	n, err := p.Read(buf)
	must(t, err)
	l.data(buf[:n])
	n, err = p.ReadReady(buf)
	must(t, err)
	if n == 0 { // the handler is called by the next Read
		n, err = p.Read(buf)
		must(t, err)
	}
	l.data(buf[:n])
	want := "aaaa<" + Settings{Baud: 1200}.String() + ">bb"
	if got := l.String(); got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
	if got := p.rdTotal.Load(); got != 6 {
		t.Fatalf("rdTotal %d after 6 bytes", got)
	}
}
