package rfc2217

import (
	"io"
	"testing"
	"time"
)

// An exact receive purge: the server's data sent before it answered
// PURGE-DATA is dropped by the client (and counted), the data it sends
// after arrives; a transmit purge drops nothing. The answer is in-band and
// written in order with the data.
func TestPurgeReceiveDropsDataBeforeAnswer(t *testing.T) {
	for _, tt := range []struct {
		name    string
		what    PurgeWhat
		dropped uint64
	}{{"receive", PurgeReceive, 5}, {"both", PurgeBoth, 5}, {"transmit", PurgeTransmit, 0}} {
		t.Run(tt.name, func(t *testing.T) {
			cl, srv, h := pair(t)
			echo(t, srv)
			if _, err := srv.Write([]byte("stale")); err != nil {
				t.Fatal(err)
			}
			if err := cl.Purge(tt.what); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, _, purges := h.snapshot(); len(purges) == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the server did not see the purge")
				}
				time.Sleep(time.Millisecond)
			}
			if _, err := srv.Write([]byte("fresh")); err != nil {
				t.Fatal(err)
			}
			want := "fresh"
			if tt.dropped == 0 {
				want = "stalefresh"
			}
			got := make([]byte, len(want))
			_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(cl, got); err != nil {
				t.Fatalf("read %q: %v", got, err)
			}
			if string(got) != want {
				t.Fatalf("read %q, want %q", got, want)
			}
			if d := cl.PurgeDropped(); d != tt.dropped {
				t.Errorf("PurgeDropped = %d, want %d", d, tt.dropped)
			}
		})
	}
}
