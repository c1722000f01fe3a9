package service

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/service/config"
)

var macCases = []struct {
	in, want string
	ok       bool
}{
	{"00:30:f9:00:00:01", "0030F9000001", true},
	{"00-30-F9-00-00-01", "0030F9000001", true},
	{"0030f9000001", "0030F9000001", true},
	{" 0030.F900.0001 ", "0030F9000001", true},
	{"", "", false},
	{"00:30:f9:00:00", "", false},
	{"00:30:f9:00:00:0g", "", false},
	{"00:30:f9:00:00:01:02", "", false},
}

func TestNormalizeMAC(t *testing.T) {
	for _, tc := range macCases {
		got, err := NormalizeMAC(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("NormalizeMAC(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "service: MAC address") {
			t.Errorf("error %q does not name what is wrong", err)
		}
	}
}

func FuzzNormalizeMAC(f *testing.F) {
	for _, tc := range macCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := NormalizeMAC(s)
		if err != nil {
			return
		}
		if len(m) != 12 || strings.Trim(m, "0123456789ABCDEF") != "" {
			t.Fatalf("NormalizeMAC(%q) = %q", s, m)
		}
		if again, err := NormalizeMAC(m); err != nil || again != m {
			t.Fatalf("not idempotent: %q -> %q, %v", m, again, err)
		}
	})
}

// A port file with listen becomes a listen-mode spec: the host certificate
// goes next to the known-devices file, the trust settings are unused.
func TestSpecFromConfigListen(t *testing.T) {
	doc := "link = \"/dev/ttyVSP0\"\nlisten = \":1470\"\ntls = \"legacy\"\ndevice_mac = \"00:30:f9:00:00:01\"\nallow_from = [\"10.1.0.0/24\"]\n"
	p, err := config.Parse("cod1", "/etc/vsp/ports.d/cod1.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s, err := SpecFromConfig(p, Paths{KnownDevices: "/var/lib/vsp/known_devices"})
	if err != nil {
		t.Fatal(err)
	}
	want := ListenSpec{Addr: ":1470", CertFile: "/var/lib/vsp/cod1-listen.pem", DeviceMAC: "00:30:f9:00:00:01", AllowFrom: []string{"10.1.0.0/24"}}
	if !reflect.DeepEqual(s.Listen, want) || len(s.Devices) != 0 || s.Link.KnownDevices != "" || s.Link.Trust != "" {
		t.Errorf("spec %+v / %+v; want listen %+v and no device or trust", s.Listen, s.Link, want)
	}
	s.Devices = []string{"10.1.0.1:1470"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Errorf("devices and listen together: %v", err)
	}
}
