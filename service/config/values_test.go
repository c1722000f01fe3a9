package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		err  string
	}{
		{in: "65536", want: 65536},
		{in: "512B", want: 512},
		{in: "64KiB", want: 64 * KiB},
		{in: "64 kib", want: 64 * KiB},
		{in: " 1MiB ", want: MiB},
		{in: "2GiB", want: 2 << 30},
		{in: "64KB", err: `ambiguous unit "KB"`},
		{in: "1M", err: `ambiguous unit "M"`},
		{in: "KiB", err: "want a size"},
		{in: "", err: "want a size"},
		{in: "1.5MiB", err: "want a size"},
		{in: "-1", err: "want a size"},
		{in: "99999999999999999999", err: "too large"},
		{in: "9999999999999MiB", err: "too large"},
	} {
		got, err := ParseByteSize(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("ParseByteSize(%q) = %v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseByteSize(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, err := ParseByteSize(got.String()); err != nil || back != got {
			t.Errorf("ParseByteSize(%v.String()) = %v, %v", got, back, err)
		}
	}
	for s, want := range map[ByteSize]string{0: "0B", 1000: "1000B", 1536: "1536B", 2048: "2KiB", 3 * MiB: "3MiB"} {
		if got := s.String(); got != want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(s), got, want)
		}
	}
}

var modeCases = []struct {
	in   string
	want os.FileMode // 0 = error
}{
	{"0660", 0o660},
	{"660", 0o660},
	{"0o600", 0o600},
	{"0O777", 0o777},
	{"0", 0},
	{"0000", 0},
	{"", 0},
	{"0o", 0},
	{"01000", 0},
	{"4755", 0},
	{"0668", 0},
	{"-660", 0},
	{"+660", 0},
	{"0_660", 0},
	{"rw-rw----", 0},
}

func TestParseMode(t *testing.T) {
	for _, tc := range modeCases {
		got, err := ParseMode(tc.in)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("ParseMode(%q) = %#o, %v; want %#o", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseMode(f *testing.F) {
	for _, tc := range modeCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err != nil {
			if m != 0 {
				t.Fatalf("ParseMode(%q) = %#o with error %v", s, m, err)
			}
			return
		}
		if m == 0 || m&^0o777 != 0 {
			t.Fatalf("ParseMode(%q) = %#o", s, m)
		}
		if again, err := ParseMode(fmt.Sprintf("%04o", uint32(m))); err != nil || again != m {
			t.Fatalf("ParseMode round trip: %q -> %#o -> %#o, %v", s, m, again, err)
		}
	})
}

var macCases = []struct {
	in, want string // want "" = error
}{
	{"00:30:f9:00:00:01", "00:30:f9:00:00:01"},
	{"00-30-F9-00-00-01", "00:30:f9:00:00:01"},
	{"0030f9000001", "00:30:f9:00:00:01"},
	{" 0030.F900.0001 ", "00:30:f9:00:00:01"},
	{"", ""},
	{"00:30:f9:00:00", ""},
	{"00:30:f9:00:00:0g", ""},
	{"00:30:f9:00:00:01:02", ""},
	{"0x0030f9000001", ""},
}

func TestParseMAC(t *testing.T) {
	for _, tc := range macCases {
		got, err := ParseMAC(tc.in)
		if (err == nil) != (tc.want != "") || (err == nil && got.String() != tc.want) {
			t.Errorf("ParseMAC(%q) = %v, %v; want %q", tc.in, got, err, tc.want)
		}
		if err != nil && !strings.Contains(err.Error(), "want 6 hex bytes") {
			t.Errorf("error %q does not say what is wanted", err)
		}
	}
}

func FuzzParseMAC(f *testing.F) {
	for _, tc := range macCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			return
		}
		if len(m) != 6 {
			t.Fatalf("ParseMAC(%q) = %v", s, m)
		}
		if again, err := ParseMAC(m.String()); err != nil || again.String() != m.String() {
			t.Fatalf("not idempotent: %q -> %v -> %v, %v", s, m, again, err)
		}
	})
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{in: "5s", want: 5 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "1m30s", want: 90 * time.Second},
		{in: "0s", wantErr: "positive"},
		{in: "-1s", wantErr: "positive"},
		{in: "5", wantErr: "want a duration"},
		{in: "", wantErr: "want a duration"},
		{in: "5 s", wantErr: "want a duration"},
	} {
		got, err := ParseDuration(tc.in)
		if got != tc.want || tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v, %q", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"5s", "0s", "-1s", "1h2m3.5s", "5"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d <= 0 {
			t.Fatalf("ParseDuration(%q) = %v", s, d)
		}
		if again, err := ParseDuration(d.String()); err != nil || again != d {
			t.Fatalf("round trip: %q -> %v -> %v, %v", s, d, again, err)
		}
	})
}

func TestCheckHostPort(t *testing.T) {
	for _, tc := range []struct {
		in      string
		listen  bool
		wantErr string
	}{
		{in: "10.1.0.1:1470"},
		{in: "[fd00::1]:1470"},
		{in: "[fe80::1%eth0]:1470"},
		{in: "plc-1.example.com:1"},
		{in: "plc_1:65535"},
		{in: "plc.:1470"},
		{in: ":1470", listen: true},
		{in: "0.0.0.0:1470", listen: true},
		{in: ":1470", wantErr: "missing host"},
		{in: "10.1.0.1", wantErr: "missing port"},
		{in: "10.1.0.1:", wantErr: "want a port number"},
		{in: "10.1.0.1:0", wantErr: "want a port number"},
		{in: "10.1.0.1:65536", wantErr: "want a port number"},
		{in: "10.1.0.1:+80", wantErr: "want a port number"},
		{in: "10.1.0.1:telnet", wantErr: "want a port number"},
		{in: "fd00::1:1470", wantErr: "brackets"},
		{in: "[fd00::g]:1470", wantErr: "invalid IPv6"},
		{in: "300.1.1.1:1", wantErr: "invalid IPv4"},
		{in: "-plc:1", wantErr: "invalid host name"},
		{in: "plc..lan:1", wantErr: "invalid host name"},
		{in: "pl c:1", wantErr: "invalid host name"},
		{in: strings.Repeat("a", 64) + ".lan:1", wantErr: "invalid host name"},
		{in: "a:b:c", wantErr: "want host:port"},
	} {
		err := checkHostPort(tc.in, tc.listen)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("checkHostPort(%q, %v) = %v, want %q", tc.in, tc.listen, err, tc.wantErr)
		}
	}
}

func TestSuggest(t *testing.T) {
	d := &document{specs: map[string]spec{}}
	for _, s := range portSpecs {
		d.specs[s.key] = s
	}
	for _, tc := range []struct {
		path  []string
		table bool
		want  string
	}{
		{[]string{"devcie"}, false, "device"},
		{[]string{"dial_timeout"}, false, "net.dial_timeout"},
		{[]string{"net", "keepalive"}, false, "net.keepalive_idle"},
		{[]string{"serial", "partiy"}, false, "serial.parity"},
		{[]string{"net", "keepalive_cnt"}, false, "net.keepalive_count"},
		{[]string{"Serial"}, true, "serial"},
		{[]string{"link"}, true, ""},
		{[]string{"zzzzzz"}, false, ""},
		{[]string{strings.Repeat("x", 100)}, false, ""},
	} {
		if got := d.suggest(tc.path, tc.table); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"65536", "64KiB", "1 MiB", "512b", "3k", "", "9223372036854775807GiB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseByteSize(s)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "config: ") {
				t.Fatalf("ParseByteSize(%q) = %v, %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseByteSize(%q) = %v", s, n)
		}
		if back, err := ParseByteSize(n.String()); err != nil || back != n {
			t.Fatalf("round trip: %q -> %v -> %v, %v", s, n, back, err)
		}
	})
}
