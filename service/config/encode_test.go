package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEncodeRoundTrip(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("plc1", "p.toml", []byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			data, err := p.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			q, err := Parse("plc1", "p.toml", data)
			if err != nil {
				t.Fatalf("Parse(Encode()): %v\n%s", err, data)
			}
			q.pos = nil
			if !reflect.DeepEqual(q, tc.want) {
				t.Errorf("round trip:\n got %+v\nwant %+v\nfile:\n%s", q, tc.want, data)
			}
			again, _ := q.Encode()
			if string(again) != string(data) {
				t.Errorf("Encode is not stable:\n%s\n---\n%s", data, again)
			}
		})
	}
}

func TestEncodeOnlyNonDefaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    *Port
		want string
	}{
		{"minimal", &Port{Name: "plc1", Link: "/dev/ttyVSP0", Device: "10.1.0.1:1470", Trust: Trust{Pin: strings.ToUpper(pinHex)}}, `# vsp port "plc1": the tty /dev/ttyVSP0 bridged to 10.1.0.1:1470.
# Keys left out have their default; see docs/configuration.md.
# The daemon reloads this file when it changes.

link = "/dev/ttyVSP0"
device = "10.1.0.1:1470"

[trust]
pin = "` + pin + `"
`},
		{"defaults spelled out are left out", want(func(p *Port) { p.File = "" }), `# vsp port "plc1": the tty /dev/ttyVSP0 bridged to 10.1.0.1:1470.
# Keys left out have their default; see docs/configuration.md.
# The daemon reloads this file when it changes.

link = "/dev/ttyVSP0"
device = "10.1.0.1:1470"

[trust]
pin = "` + pin + `"
`},
		{"listen, odd values", &Port{Name: "lab", Link: "ttyLab", Listen: "[::1]:1470", TLS: TLSOff, Buffer: 1500, StaleData: StaleKeep,
			Net: Net{BackoffMax: 90 * time.Second}, TTY: TTY{Group: "dialout", Mode: 0o600}, Serial: Serial{Baud: 9600, Parity: ParityOdd, Flow: FlowXONXOFF}},
			`# vsp port "lab": the tty ttyLab bridged to a device connecting to [::1]:1470.
# Keys left out have their default; see docs/configuration.md.
# The daemon reloads this file when it changes.

link = "ttyLab"
listen = "[::1]:1470"
tls = "off"
buffer = 1500
stale_data = "keep"

[net]
backoff_max = "1m30s"

[tty]
group = "dialout"
mode = "0600"

[serial]
baud = 9600
parity = "odd"
flow = "xonxoff"
`},
		{"failover, tofu", &Port{Name: "f", Link: "/dev/ttyF", Devices: []string{"a.lan:1", "b.lan:1"}, TLS: TLSLegacy, Buffer: 2 * MiB, Trust: Trust{Mode: TrustTOFU}},
			`# vsp port "f": the tty /dev/ttyF bridged to a.lan:1, b.lan:1.
# Keys left out have their default; see docs/configuration.md.
# The daemon reloads this file when it changes.

link = "/dev/ttyF"
devices = ["a.lan:1", "b.lan:1"]
tls = "legacy"
buffer = "2MiB"

[trust]
mode = "tofu"
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.p.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Encode:\n%s\nwant:\n%s", got, tc.want)
			}
			if _, err := Parse(tc.p.Name, "", got); err != nil {
				t.Errorf("Parse(Encode()): %v", err)
			}
		})
	}
}

func TestEncodeInvalid(t *testing.T) {
	p := &Port{Name: "plc1", Link: "/dev/ttyVSP0", Device: "10.1.0.1:1470"} // TLS on, no trust
	if _, err := p.Encode(); !errors.Is(err, ErrMissing) {
		t.Errorf("Encode of an invalid port: err = %v", err)
	}
}

func TestQuote(t *testing.T) {
	for _, tc := range []struct {
		s     string
		valid bool // as a link name
	}{
		{"plain", true}, {`quo"te`, true}, {`back\slash`, true}, {"ünï", true},
		{"tab\tnl\ncr\r", false}, {"ctl\x01\x7f", false},
	} {
		doc := "link = " + quote(tc.s) + "\ndevice = \"h.lan:1\"\ntls = \"off\"\n"
		p, err := Parse("q", "", []byte(doc))
		if tc.valid {
			if err != nil || p.Link != tc.s {
				t.Errorf("quote(%q): %s: %v", tc.s, doc, err)
			}
			continue
		}
		// The TOML decodes to the same string, which is then refused.
		want := fmt.Sprintf("q.toml:1:1: link: path contains a control character: %q", tc.s)
		if err == nil || err.Error() != want {
			t.Errorf("quote(%q): %s: %v, want %s", tc.s, doc, err, want)
		}
	}
}
