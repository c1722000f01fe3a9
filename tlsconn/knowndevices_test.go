package tlsconn

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

var knownDevicesCases = []struct {
	name, in string
	want     int    // entries; -1 = error
	errHas   string // the error names the file and line
}{
	{"empty", "", 0, ""},
	{"comments and blanks", "# x\n\n   \n# y\n", 0, ""},
	{"one", "10.1.0.1:1470 sha256:" + strings.Repeat("ab", 32) + " 2026-01-02T03:04:05Z\n", 1, ""},
	{"two, CRLF", "a:1 sha256:" + strings.Repeat("00", 32) + " 2026-01-02T03:04:05Z\r\nb:2 sha256:" + strings.Repeat("11", 32) + " 2026-01-02T03:04:05+09:00\r\n", 2, ""},
	{"missing field", "# c\na:1 sha256:" + strings.Repeat("ab", 32) + "\n", -1, "known:2"},
	{"bad pin", "a:1 sha1:abcd 2026-01-02T03:04:05Z\n", -1, "known:1"},
	{"bad time", "a:1 sha256:" + strings.Repeat("ab", 32) + " yesterday\n", -1, "known:1"},
}

func TestParseKnownDevices(t *testing.T) {
	for _, tc := range knownDevicesCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseKnownDevices("known", []byte(tc.in))
			if tc.want < 0 {
				if err == nil || !strings.Contains(err.Error(), tc.errHas) {
					t.Fatalf("err %v; want an error naming %s", err, tc.errHas)
				}
				return
			}
			if err != nil || len(got) != tc.want {
				t.Fatalf("got %d entries, %v; want %d", len(got), err, tc.want)
			}
		})
	}
}

// formatKnownDevices is what writeKnownDevices writes, without the file.
func formatKnownDevices(known []knownDevice) []byte {
	var b bytes.Buffer
	for _, k := range known {
		fmt.Fprintf(&b, "%s %s %s\n", k.addr, k.fingerprint, k.firstSeen.UTC().Format(time.RFC3339))
	}
	return b.Bytes()
}

// Any input either fails with an error or parses into entries that survive
// being written and read back unchanged; it never panics.
func FuzzParseKnownDevices(f *testing.F) {
	for _, tc := range knownDevicesCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parseKnownDevices("known", in)
		if err != nil {
			if !strings.Contains(err.Error(), "known") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		again, err := parseKnownDevices("known", formatKnownDevices(got))
		if err != nil {
			t.Fatalf("re-reading what was written: %v", err)
		}
		if len(again) != len(got) {
			t.Fatalf("round trip: %d entries, then %d", len(got), len(again))
		}
		for i := range got {
			if again[i].addr != got[i].addr || again[i].fingerprint != got[i].fingerprint || !again[i].firstSeen.Equal(got[i].firstSeen.Truncate(time.Second)) {
				t.Fatalf("round trip: %+v became %+v", got[i], again[i])
			}
		}
	})
}
