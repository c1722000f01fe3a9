package tlsconn_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func colonHex(s string) string {
	var parts []string
	for i := 0; i < len(s); i += 2 {
		parts = append(parts, s[i:i+2])
	}
	return strings.Join(parts, ":")
}

var pinTests = []struct {
	in   string
	want string // "" = error
}{
	{"sha256:" + hex64, "sha256:" + hex64},
	{"SHA256:" + strings.ToUpper(hex64), "sha256:" + hex64},
	{hex64, "sha256:" + hex64},
	{"  sha256:" + hex64 + "\n", "sha256:" + hex64},
	{"sha256:" + colonHex(hex64), "sha256:" + hex64},
	{"SHA256 Fingerprint=" + strings.ToUpper(colonHex(hex64)), "sha256:" + hex64},
	{"sha256=" + hex64, "sha256:" + hex64},
	{colonHex(hex64), "sha256:" + hex64},
	{"", ""},
	{"sha256:", ""},
	{"sha256:" + hex64[:62], ""},
	{"sha256:" + hex64 + "00", ""},
	{"sha256:" + hex64[:63] + "g", ""},
	{"sha1:0123456789abcdef0123456789abcdef01234567", ""},
	{"md5:" + hex64, ""},
	{"sha512:" + hex64 + hex64, ""},
	{"sha256:" + colonHex(hex64)[:94] + "::", ""},
	{"sha256:" + strings.Replace(colonHex(hex64), ":", "", 1) + ":", ""},
	{"sha256:" + hex64[:2] + " " + hex64[2:], ""},
	{"SHA-256:" + hex64, "sha256:" + hex64},
	{"sha256::" + colonHex(hex64), ""},
	{colonHex(hex64) + ":", ""},
	{"sha256:" + strings.Replace(colonHex(hex64), "01:23", "012:3", 1), ""},
}

func TestParsePin(t *testing.T) {
	for _, tt := range pinTests {
		got, err := tlsconn.ParsePin(tt.in)
		if tt.want == "" {
			if err == nil || !errors.Is(err, tlsconn.ErrInvalidPin) {
				t.Errorf("ParsePin(%q) = %q, %v; want ErrInvalidPin", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePin(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParsePin(f *testing.F) {
	for _, tt := range pinTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := tlsconn.ParsePin(s)
		if err != nil {
			if got != "" || !errors.Is(err, tlsconn.ErrInvalidPin) {
				t.Fatalf("ParsePin(%q) = %q, %v", s, got, err)
			}
			return
		}
		if len(got) != len("sha256:")+64 || !strings.HasPrefix(got, "sha256:") || strings.ToLower(got) != got {
			t.Fatalf("ParsePin(%q) = %q: not normalised", s, got)
		}
		again, err := tlsconn.ParsePin(got)
		if err != nil || again != got {
			t.Fatalf("ParsePin not idempotent: %q -> %q -> %q, %v", s, got, again, err)
		}
	})
}

func TestParseProfile(t *testing.T) {
	tests := []struct {
		in   string
		want tlsconn.Profile
		err  bool
	}{
		{"", tlsconn.ProfileModern, false},
		{"modern", tlsconn.ProfileModern, false},
		{"legacy", tlsconn.ProfileLegacy, false},
		{"off", tlsconn.ProfileOff, false},
		{"MODERN", "", true}, // one spelling, as in a port file
		{" legacy", "", true},
		{"none", "", true},
		{"plain", "", true},
		{"tls", "", true},
		{"ssl3", "", true},
		{"legacyy", "", true},
	}
	for _, tt := range tests {
		got, err := tlsconn.ParseProfile(tt.in)
		if tt.err {
			if !errors.Is(err, tlsconn.ErrInvalidProfile) {
				t.Errorf("ParseProfile(%q) = %q, %v; want ErrInvalidProfile", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseProfile(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if s := tlsconn.Profile("").String(); s != "modern" {
		t.Errorf("zero Profile prints %q", s)
	}
}

func FuzzParseProfile(f *testing.F) {
	for _, s := range []string{"", "off", "legacy", "modern", "Modern", "plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := tlsconn.ParseProfile(s)
		if err != nil {
			if p != "" || !errors.Is(err, tlsconn.ErrInvalidProfile) {
				t.Fatalf("ParseProfile(%q) = %q, %v", s, p, err)
			}
			return
		}
		if s != "" && string(p) != s {
			t.Fatalf("ParseProfile(%q) = %q: not the name given", s, p)
		}
		if again, err := tlsconn.ParseProfile(p.String()); err != nil || again != p {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, p, again, err)
		}
	})
}

func TestValidate(t *testing.T) {
	pin := "sha256:" + hex64
	tests := []struct {
		name string
		cfg  tlsconn.Config
		want error // nil = valid
	}{
		{"off", tlsconn.Config{Profile: tlsconn.ProfileOff}, nil},
		{"legacy pin", tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: pin}, nil},
		{"zero profile pin", tlsconn.Config{Pin: strings.ToUpper(hex64)}, nil},
		{"insecure", tlsconn.Config{Profile: tlsconn.ProfileLegacy, InsecureSkipVerify: true}, nil},
		{"trust insecure", tlsconn.Config{Trust: "insecure"}, nil},
		{"trust pin", tlsconn.Config{Trust: "pin", Pin: pin}, nil},
		{"tofu", tlsconn.Config{Trust: "tofu", KnownDevices: "/tmp/k"}, nil},
		{"ca", tlsconn.Config{Trust: "ca", CAFile: "/tmp/ca.pem"}, nil},
		{"timeouts", tlsconn.Config{Pin: pin, DialTimeout: time.Second, KeepAlive: tlsconn.KeepAlive{Idle: -1}}, nil},

		{"zero value", tlsconn.Config{}, tlsconn.ErrNoTrust},
		{"legacy no trust", tlsconn.Config{Profile: tlsconn.ProfileLegacy}, tlsconn.ErrNoTrust},
		{"trust pin without pin", tlsconn.Config{Trust: "pin"}, tlsconn.ErrNoTrust},
		{"bad pin", tlsconn.Config{Pin: "sha256:abc"}, tlsconn.ErrInvalidPin},
		{"bad profile", tlsconn.Config{Profile: "ssl3", Pin: pin}, tlsconn.ErrInvalidProfile},
		{"pin and insecure", tlsconn.Config{Pin: pin, InsecureSkipVerify: true}, tlsconn.ErrInvalidConfig},
		{"pin with profile off", tlsconn.Config{Profile: tlsconn.ProfileOff, Pin: pin}, tlsconn.ErrInvalidConfig},
		{"insecure with profile off", tlsconn.Config{Profile: tlsconn.ProfileOff, InsecureSkipVerify: true}, tlsconn.ErrInvalidConfig},
		{"negative timeout", tlsconn.Config{Pin: pin, DialTimeout: -1}, tlsconn.ErrInvalidConfig},
		{"unknown trust", tlsconn.Config{Trust: "blind"}, tlsconn.ErrInvalidConfig},
		{"trust mode spelt otherwise", tlsconn.Config{Trust: "CA", CAFile: "/tmp/ca.pem"}, tlsconn.ErrInvalidConfig},
		{"tofu without file", tlsconn.Config{Trust: "tofu"}, tlsconn.ErrInvalidConfig},
		{"ca without file", tlsconn.Config{Trust: "ca"}, tlsconn.ErrInvalidConfig},
		{"tofu with pin", tlsconn.Config{Trust: "tofu", KnownDevices: "/tmp/k", Pin: pin}, tlsconn.ErrInvalidConfig},
		{"pin mode with insecure", tlsconn.Config{Trust: "pin", Pin: pin, InsecureSkipVerify: true}, tlsconn.ErrInvalidConfig},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: Validate() = %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "tlsconn: ") {
			t.Errorf("%s: error not prefixed: %v", tt.name, err)
		}
	}
}
