package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestEncoder(t *testing.T) {
	at := time.Date(2026, 11, 30, 5, 48, 39, 123456789, time.Local)
	data := Record{Time: at, Port: "p0", Kind: KindData, Dir: ToDevice, Data: []byte{1, 2, 'A', 'B', 'C', 0xff}}
	long := data
	long.Data = []byte("0123456789abcdefXY\r\n")
	for _, tc := range []struct {
		name string
		enc  Encoder
		rec  Record
		want string
	}{
		{"hexdump", Encoder{Format: FormatHexdump}, data,
			"2026-11-30 05:48:39.123456 app>dev 00000000  01 02 41 42 43 ff" + strings.Repeat("   ", 10) + "  |..ABC.|\n"},
		{"hexdump with port", Encoder{Format: FormatHexdump, ShowPort: true}, data,
			"2026-11-30 05:48:39.123456 p0 app>dev 00000000  01 02 41 42 43 ff" + strings.Repeat("   ", 10) + "  |..ABC.|\n"},
		{"hexdump two lines", Encoder{Format: FormatHexdump}, long,
			"2026-11-30 05:48:39.123456 app>dev 00000000  30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66  |0123456789abcdef|\n" +
				"2026-11-30 05:48:39.123456 app>dev 00000010  58 59 0d 0a" + strings.Repeat("   ", 12) + "  |XY..|\n"},
		{"ascii", Encoder{Format: FormatASCII}, long, "2026-11-30 05:48:39.123456 app>dev 0123456789abcdefXY\\r\\n\n"},
		{"ascii escapes", Encoder{Format: FormatASCII}, data, "2026-11-30 05:48:39.123456 app>dev \\x01\\x02ABC\\xff\n"},
		{"event", Encoder{}, Record{Time: at, Kind: KindLinkDown, Detail: "device closed the connection"},
			"2026-11-30 05:48:39.123456 -- link-down: device closed the connection\n"},
		{"held", Encoder{}, Record{Time: at, Kind: KindHeld, Bytes: 12, Detail: "in the outage buffer"},
			"2026-11-30 05:48:39.123456 -- held 12 bytes: in the outage buffer\n"},
		{"dropped", Encoder{}, Record{Time: at, Kind: KindDropped, Bytes: 1234, Records: 3},
			"2026-11-30 05:48:39.123456 -- dropped 1234 bytes not shown (3 records dropped: the reader fell behind)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(tc.enc.Append(nil, tc.rec)); got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}

func TestRecordJSONRoundTrip(t *testing.T) {
	r := Record{Time: time.Now().Round(0).UTC(), Port: "p0", Kind: KindData, Dir: ToApp, Data: []byte{0, 1, 0xfe}}
	line := Encoder{Format: FormatJSON}.Append(nil, r)
	if !bytes.Contains(line, []byte(`"hex":"0001fe"`)) || !bytes.HasSuffix(line, []byte("\n")) {
		t.Fatalf("json line %s", line)
	}
	var back Record
	if err := json.Unmarshal(line, &back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Data, r.Data) || back.Dir != r.Dir || !back.Time.Equal(r.Time) || back.Bytes != 3 {
		t.Errorf("round trip: %+v, want %+v", back, r)
	}
}

// FuzzRecordJSON: any input either fails to decode or decodes into a
// record that encodes and decodes to the same bytes.
func FuzzRecordJSON(f *testing.F) {
	f.Add([]byte(`{"time":"2026-11-30T05:48:39.123456Z","port":"p","kind":"data","dir":"app>dev","hex":"0102"}`))
	f.Add([]byte(`{"kind":"dropped","bytes":5,"records":1}`))
	f.Add([]byte(`{"hex":"zz"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if json.Unmarshal(b, &r) != nil {
			return
		}
		for _, f := range []Format{FormatHexdump, FormatASCII} {
			if out := (Encoder{Format: f}).Append(nil, r); !bytes.HasSuffix(out, []byte("\n")) && len(r.Data) > 0 {
				t.Fatalf("%s: no newline: %q", f, out)
			}
		}
		var back Record
		if err := json.Unmarshal(Encoder{Format: FormatJSON}.Append(nil, r), &back); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !bytes.Equal(back.Data, r.Data) {
			t.Fatalf("data %x became %x", r.Data, back.Data)
		}
	})
}

// With no observer nothing is recorded or copied; a slow observer loses
// records, the publisher never waits, and the loss is reported in place
// once the observer catches up.
func TestHubDrops(t *testing.T) {
	h := NewHub("p")
	if h.Active() {
		t.Fatal("a hub without observers is active")
	}
	if n := testing.AllocsPerRun(100, func() { h.Data(ToDevice, []byte("x")) }); n != 0 {
		t.Errorf("Data with no observer allocates %v times", n)
	}
	s := h.Subscribe()
	defer s.Close()
	total := QueueLen + 10
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range total {
			h.Data(ToApp, []byte("abcd"))
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publishing to an observer that does not read blocked")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range QueueLen {
		r, err := s.Next(ctx)
		if err != nil || r.Kind != KindData {
			t.Fatalf("record %d: %+v %v", i, r, err)
		}
	}
	r, err := s.Next(ctx)
	if err != nil || r.Kind != KindDropped || r.Records != 10 || r.Bytes != 40 {
		t.Fatalf("after the queue: %+v %v; want dropped 10 records, 40 bytes", r, err)
	}
	s.Close()
	if h.Active() {
		t.Error("hub still active after its only observer left")
	}
}

func TestTraceRotationAndMode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "t.trace")
	h := NewHub("p")
	tr, err := StartTrace(h, TraceConfig{File: file, MaxSize: 1000, MaxFiles: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		h.Data(ToDevice, bytes.Repeat([]byte{'z'}, 40))
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := filepath.Glob(file + "*")
	if len(names) != 3 {
		t.Fatalf("files %v; want 3", names)
	}
	for _, n := range names {
		fi, err := os.Stat(n)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(n)
		if fi.Mode().Perm() != 0o600 || fi.Size() > 1000 || !bytes.HasSuffix(b, []byte("|\n")) {
			t.Errorf("%s: mode %v, %d bytes, ends %q", n, fi.Mode(), fi.Size(), b[max(0, len(b)-5):])
		}
	}
}

func TestOpenTraceFile(t *testing.T) {
	dir := t.TempDir()
	wide := filepath.Join(dir, "wide")
	if err := os.WriteFile(wide, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := OpenTraceFile(wide)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if fi, _ := os.Stat(wide); fi.Mode().Perm() != 0o600 {
		t.Errorf("an existing trace file readable by others stays %v", fi.Mode())
	}
	// The user's own symlink is followed.
	own := filepath.Join(dir, "own")
	if err := os.Symlink(wide, own); err != nil {
		t.Fatal(err)
	}
	if f, err := OpenTraceFile(own); err != nil {
		t.Errorf("own symlink refused: %v", err)
	} else {
		f.Close()
	}
	if os.Geteuid() != 0 {
		t.Skip("planting another user's symlink needs root")
	}
	foreign := filepath.Join(dir, "foreign")
	if err := os.Symlink(wide, foreign); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTraceFile(foreign); err == nil || !strings.Contains(err.Error(), "symlink owned by uid 65534") {
		t.Errorf("foreign symlink: %v", err)
	}
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenTraceFile(other); err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
		t.Errorf("another user's file: %v", err)
	}
}

// Close: an observer gets what was queued, then ErrGone.
func TestHubClose(t *testing.T) {
	h := NewHub("p")
	s := h.Subscribe()
	defer s.Close()
	h.Data(ToApp, []byte("last"))
	h.Close()
	h.Close() // idempotent
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if r, err := s.Next(ctx); err != nil || string(r.Data) != "last" {
		t.Fatalf("first: %+v %v", r, err)
	}
	if _, err := s.Next(ctx); err != ErrGone {
		t.Fatalf("after the queue: %v, want ErrGone", err)
	}
}
