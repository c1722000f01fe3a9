package config

import (
	"errors"
	"strings"
	"testing"
)

// The listen-mode keys device_mac and replace_session: valid only with
// listen, a well-formed MAC, and kept by Encode.
func TestListenKeys(t *testing.T) {
	const listen = "link = \"/dev/ttyVSP0\"\nlisten = \":1470\"\ntls = \"legacy\"\n"
	tests := []struct {
		name    string
		doc     string
		wantErr error
		errText string
		mac     string
		replace bool
	}{
		{"mac and replace", listen + "device_mac = \"00:30:f9:00:00:01\"\nreplace_session = true\n", nil, "", "00:30:f9:00:00:01", true},
		{"listen alone needs no trust", listen, nil, "", "", false},
		{"bad mac", listen + "device_mac = \"00:30:f9\"\n", ErrInvalid, "p.toml:4:1: device_mac: want 6 hex bytes", "", false},
		{"mac without listen", minimal + "device_mac = \"0030F9000001\"\n", ErrConflict, "p.toml:4:1: device_mac: only with listen", "", false},
		{"replace without listen", minimal + "replace_session = true\n", ErrConflict, "p.toml:4:1: replace_session: only with listen", "", false},
		{"mac of the wrong type", listen + "device_mac = 12\n", ErrType, "device_mac", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("plc1", "p.toml", []byte(tc.doc))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("Parse: %v; want %v containing %q", err, tc.wantErr, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.DeviceMAC != tc.mac || p.ReplaceSession != tc.replace {
				t.Fatalf("got device_mac %q replace_session %v", p.DeviceMAC, p.ReplaceSession)
			}
			data, err := p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			q, err := Parse("plc1", "p.toml", data)
			if err != nil {
				t.Fatalf("Parse(Encode()): %v\n%s", err, data)
			}
			if q.DeviceMAC != tc.mac || q.ReplaceSession != tc.replace {
				t.Errorf("round trip lost the listen keys:\n%s", data)
			}
		})
	}
}
