package bridge

import (
	"strings"
	"testing"
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
		if err != nil && !strings.Contains(err.Error(), "bridge: MAC address") {
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
