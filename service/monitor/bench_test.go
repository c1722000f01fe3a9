package monitor

import (
	"testing"
	"time"
)

// BenchmarkEncode: each format's cost for a 4 KiB chunk (a pty read).
func BenchmarkEncode(b *testing.B) {
	r := Record{Time: time.Now(), Port: "p", Kind: KindData, Dir: ToApp, Data: make([]byte, 4096)}
	for _, f := range []Format{FormatHexdump, FormatJSON, FormatASCII} {
		b.Run(string(f), func(b *testing.B) {
			var buf []byte
			b.SetBytes(4096)
			b.ReportAllocs()
			for b.Loop() {
				buf = Encoder{Format: f}.Append(buf[:0], r)
			}
		})
	}
}

// BenchmarkHubUnobserved: what the byte path pays per chunk when nobody
// observes the port (one atomic load).
func BenchmarkHubUnobserved(b *testing.B) {
	h := NewHub("p")
	p := make([]byte, 4096)
	b.ReportAllocs()
	for b.Loop() {
		h.Data(ToDevice, p)
	}
}
