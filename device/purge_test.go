package device

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/rfc2217"
)

// The echo backend's flush: input drops what the plug holds (echoed, not
// yet read) and advances the epoch; output has nothing to drop.
func TestLoopbackFlush(t *testing.T) {
	for _, tt := range []struct {
		name          string
		input, output bool
		in            int
		epoch         uint64
		read          string
	}{
		{"input", true, false, 3, 1, "d"},
		{"output", false, true, 0, 0, "abcd"},
		{"both", true, true, 3, 1, "d"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			l := newLoopback()
			defer l.Close()
			if _, err := l.write(context.Background(), []byte("abc")); err != nil {
				t.Fatal(err)
			}
			in, out, err := l.flush(tt.input, tt.output)
			if err != nil || in != tt.in || out != 0 {
				t.Fatalf("flush = %d, %d, %v; want %d, 0", in, out, err, tt.in)
			}
			if _, err := l.write(context.Background(), []byte("d")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 16)
			n, epoch, err := l.read(buf)
			if err != nil || string(buf[:n]) != tt.read || epoch != tt.epoch || l.inputEpoch() != tt.epoch {
				t.Fatalf("read %q epoch %d (now %d), %v; want %q epoch %d", buf[:n], epoch, l.inputEpoch(), err, tt.read, tt.epoch)
			}
		})
	}
}

// RFC 2217 PURGE-DATA (receive) against the echo backend is exact: bytes
// the client wrote before the purge never come back after the device's
// answer, wherever they were when the purge came (on the plug, in the
// device's hand while it paces the line, in flight to the client: the
// client drops those), and bytes written after it all come back. What the
// device dropped is counted in its status.
func TestRFC2217PurgeEchoExact(t *testing.T) {
	for _, pacing := range []bool{false, true} {
		t.Run(fmt.Sprintf("pacing=%v", pacing), func(t *testing.T) {
			d := startDevice(t, Config{Console: "off", RFC2217: true, Pacing: pacing, Line: Serial{Baud: 115200}})
			p := d.Port("COM1")
			cl := dialRFC2217(t, p)
			// Read only after the purge is sent: an echo read before it
			// would be data that came before the flush (on a tty, the
			// flush drops it from the input queue).
			var acc []byte
			buf := make([]byte, 4096)
			readLine := func() (string, error) {
				_ = cl.SetReadDeadline(time.Now().Add(10 * time.Second))
				for {
					if i := bytes.IndexByte(acc, '\n'); i >= 0 {
						l := string(acc[:i+1])
						acc = acc[i+1:]
						return l, nil
					}
					n, err := cl.Read(buf)
					acc = append(acc, buf[:n]...)
					if err != nil {
						return string(acc), err
					}
				}
			}
			const cycles = 100
			stale := []byte(strings.Repeat("12345678", 4))
			for i := range cycles {
				if _, err := cl.Write(stale); err != nil {
					t.Fatal(err)
				}
				if err := cl.Purge(rfc2217.PurgeReceive); err != nil {
					t.Fatal(err)
				}
				want := fmt.Sprintf("fresh %d\n", i)
				if _, err := cl.Write([]byte(want)); err != nil {
					t.Fatal(err)
				}
				if got, err := readLine(); got != want {
					t.Fatalf("cycle %d: read %q (%v), want %q", i, got, err, want)
				}
			}
			purged, dropped := p.Counters().Purged, cl.PurgeDropped()
			t.Logf("%d stale bytes: %d purged by the device, %d dropped by the client", cycles*len(stale), purged, dropped)
			if purged+dropped != uint64(cycles*len(stale)) {
				t.Errorf("purged %d + dropped %d, want %d", purged, dropped, cycles*len(stale))
			}
		})
	}
}
