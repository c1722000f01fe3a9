package config

import (
	"strings"
	"testing"
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

func TestNormalizePin(t *testing.T) {
	colons := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{pin, true},
		{pinHex, true},
		{"SHA256:" + strings.ToUpper(pinHex), true},
		{"sha256:" + colons, true},
		{colons, true},
		{" " + pin + " ", true},
		{"SHA256 Fingerprint=" + colons, true}, // openssl x509 -noout -fingerprint -sha256
		{"sha256=" + pinHex, true},
		{"SHA-256:" + pinHex, true},
		{"sha256:" + strings.Replace(colons, "AB:AB", "ABA:B", 1), false},
		{"md5:" + pinHex, false},
		{"sha256:" + pinHex[:62], false},
		{"sha256:" + pinHex + "ab", false},
		{"sha256:" + pinHex[:63] + "g", false},
		{"sha1:" + pinHex, false},
		{"sha256::" + colons, false},
		{colons + ":", false},
		{"", false},
	} {
		got, err := NormalizePin(tc.in)
		if tc.ok != (err == nil) || (tc.ok && got != pin) {
			t.Errorf("NormalizePin(%q) = %q, %v", tc.in, got, err)
		}
	}
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
