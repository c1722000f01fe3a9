package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

var (
	pinHex = strings.Repeat("ab", 32)
	pin    = "sha256:" + pinHex
)

// want returns the port a minimal file parses to, changed by mod.
func want(mod func(*Port)) *Port {
	p := &Port{
		Name:      "plc1",
		File:      "p.toml",
		Link:      "/dev/ttyVSP0",
		Device:    "10.1.0.1:1470",
		TLS:       TLSModern,
		Buffer:    64 * KiB,
		StaleData: StaleDiscard,
		Connect:   ConnectAlways,
		Transport: TransportTCP,
		Trust:     Trust{Mode: TrustPin, Pin: pin},
		Net: Net{
			DialTimeout:       5 * time.Second,
			KeepAliveIdle:     3 * time.Second,
			KeepAliveInterval: 2 * time.Second,
			KeepAliveCount:    3,
			UserTimeout:       9 * time.Second,
			BackoffMin:        100 * time.Millisecond,
			BackoffMax:        time.Second,
		},
		TTY: TTY{Mode: 0o660},
		// Serial: not set; there is no default for the device's line.
	}
	if mod != nil {
		mod(p)
	}
	return p
}

const minimal = `link = "/dev/ttyVSP0"
device = "10.1.0.1:1470"
trust.pin = "sha256:` + "abababababababababababababababababababababababababababababababab" + `"
`

var validCases = []struct {
	name string
	doc  string
	want *Port
}{
	{"minimal", minimal, want(nil)},
	{"plain TCP", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntls = \"off\"\n",
		want(func(p *Port) { p.TLS = TLSOff; p.Trust = Trust{} })},
	{"bare link name, host name, legacy", "link = \"ttyPLC\"\ndevice = \"plc-1.lan:1470\"\ntls = \"legacy\"\n[trust]\npin = \"" + pin + "\"\n",
		want(func(p *Port) { p.Link = "ttyPLC"; p.Device = "plc-1.lan:1470"; p.TLS = TLSLegacy })},
	{"pin with colons and capitals is normalised",
		"link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n[trust]\npin = \"SHA256:" + strings.TrimSuffix(strings.Repeat("AB:", 32), ":") + "\"\n",
		want(nil)},
	{"bare hex pin", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntrust = { pin = \"" + pinHex + "\" }\n", want(nil)},
	{"failover list and IPv6", "link = \"/dev/ttyVSP0\"\ndevices = [\"10.1.0.1:1470\", \"[fd00::2]:1470\"]\ntls = \"off\"\n",
		want(func(p *Port) {
			p.Device = ""
			p.Devices = []string{"10.1.0.1:1470", "[fd00::2]:1470"}
			p.TLS = TLSOff
			p.Trust = Trust{}
		})},
	{"listen mode with tofu", "link = \"/dev/ttyVSP0\"\nlisten = \":1470\"\n[trust]\nmode = \"tofu\"\n",
		want(func(p *Port) { p.Device = ""; p.Listen = ":1470"; p.Trust = Trust{Mode: TrustTOFU} })},
	{"ca", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n[trust]\nmode = \"ca\"\nca_file = \"ca.pem\"\nserver_name = \"plc1.example\"\n",
		want(func(p *Port) { p.Trust = Trust{Mode: TrustCA, CAFile: "ca.pem", ServerName: "plc1.example"} })},
	{"insecure spelled out", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntrust.mode = \"insecure\"\n",
		want(func(p *Port) { p.Trust = Trust{Mode: TrustInsecure} })},
	{"integer buffer and octal integer mode", minimal + "buffer = 4096\n[tty]\nmode = 0o600\n",
		want(func(p *Port) { p.Buffer = 4096; p.TTY.Mode = 0o600 })},
	{"every key", `# a full file
link = "/dev/ttyVSP3"
device = "192.168.7.20:1470"
tls = "legacy"
buffer = "1 MiB"
stale_data = "keep"
rfc2217 = false
strict_serial = true

[trust]
mode = "pin"
pin = "` + pin + `"
server_name = "ezTCP"

[net]
dial_timeout = "2s"
keepalive_idle = "10s"
keepalive_interval = "3s"
keepalive_count = 5
user_timeout = "30s"
backoff_min = "250ms"
backoff_max = "1m"

[tty]
owner = "scada"
group = "dialout"
mode = "0600"

[serial]
baud = 9600
data_bits = 7
parity = "even"
stop_bits = 2
flow = "rtscts"

[trace]
file = "/var/log/vsp/plc1.trace"
max_size = "1MiB"
max_files = 3
format = "json"
`, want(func(p *Port) {
		p.Link = "/dev/ttyVSP3"
		p.Device = "192.168.7.20:1470"
		p.TLS = TLSLegacy
		p.Buffer = MiB
		p.StaleData = StaleKeep
		p.StrictSerial = true
		p.Trust.ServerName = "ezTCP"
		p.Net = Net{2 * time.Second, 10 * time.Second, 3 * time.Second, 5, 30 * time.Second, 250 * time.Millisecond, time.Minute}
		p.TTY = TTY{Owner: "scada", Group: "dialout", Mode: 0o600}
		p.Serial = Serial{9600, 7, ParityEven, 2, FlowRTSCTS}
		p.Trace = Trace{File: "/var/log/vsp/plc1.trace", MaxSize: MiB, MaxFiles: 3, Format: TraceJSON}
	})},
	{"trace defaults", minimal + "[trace]\nfile = \"/tmp/t.trace\"\n",
		want(func(p *Port) {
			p.Trace = Trace{File: "/tmp/t.trace", MaxFiles: DefaultTraceFiles, Format: TraceHexdump}
		})},
	{"rfc2217", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:2217\"\ntls = \"off\"\nrfc2217 = true\n",
		want(func(p *Port) { p.Device = "10.1.0.1:2217"; p.TLS = TLSOff; p.Trust = Trust{}; p.RFC2217 = true })},
	{"BOM and CRLF", "\xef\xbb\xbflink = \"/dev/ttyVSP0\"\r\ndevice = \"10.1.0.1:1470\"\r\ntls = \"off\"\r\n",
		want(func(p *Port) { p.TLS = TLSOff; p.Trust = Trust{} })},
	{"on-open with release_after", minimal + "connect = \"on-open\"\nrelease_after = \"2s\"\n",
		want(func(p *Port) { p.Connect = ConnectOnOpen; p.ReleaseAfter = 2 * time.Second })},
	{"udp: tls off by default, datagram size", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntransport = \"udp\"\n",
		want(func(p *Port) {
			p.TLS = TLSOff
			p.Trust = Trust{}
			p.Transport = TransportUDP
			p.DatagramSize = DefaultDatagramSize
		})},
	{"udp on-open, small datagrams", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntransport = \"udp\"\ntls = \"off\"\ndatagram_size = 512\nconnect = \"on-open\"\n",
		want(func(p *Port) {
			p.TLS = TLSOff
			p.Trust = Trust{}
			p.Transport = TransportUDP
			p.DatagramSize = 512
			p.Connect = ConnectOnOpen
		})},
	{"numeric owner", minimal + "[tty]\nowner = \"1000\"\ngroup = \"20\"\n",
		want(func(p *Port) { p.TTY.Owner = "1000"; p.TTY.Group = "20" })},
}

func TestParseValid(t *testing.T) {
	for _, tc := range validCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse("plc1", "p.toml", []byte(tc.doc))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got.pos = nil
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// errorCases: each wants the exact error lines, in order.
var errorCases = []struct {
	name string
	doc  string
	want []string
	kind error // errors.Is must hold for the first error
}{
	{"syntax error", "link = \"/dev/ttyVSP0\"\ndevice = 10.1.0.1:1470\n",
		[]string{`p.toml:2:14: expected newline but got U+002E '.'`}, ErrSyntax},
	{"unterminated string", "link = \"/dev/ttyVSP0\n",
		[]string{`p.toml:1:21: basic strings cannot have new lines`}, ErrSyntax},
	{"duplicate key", minimal + "link = \"/dev/ttyVSP1\"\n",
		[]string{`p.toml:4:1: link: key link is already defined`}, ErrSyntax},
	{"key and table both called link", minimal + "[link]\ndial_timeout = \"1s\"\n",
		[]string{`p.toml:4:2: link: key link should be a table, not a value`}, ErrSyntax},
	{"unknown key with suggestion", minimal + "tsl = \"off\"\n",
		[]string{`p.toml:4:1: tsl: unknown key (did you mean "tls"?)`}, ErrUnknownKey},
	{"unknown key in wrong table", minimal + "[tty]\nbaud = 9600\n",
		[]string{`p.toml:5:1: tty.baud: unknown key (did you mean "serial.baud"?)`}, ErrUnknownKey},
	{"wrong case", minimal + "TLS = \"off\"\n",
		[]string{`p.toml:4:1: TLS: unknown key (did you mean "tls"?)`}, ErrUnknownKey},
	{"unknown key without suggestion", minimal + "colour = \"blue\"\n",
		[]string{`p.toml:4:1: colour: unknown key (see docs/configuration.md for the keys of this file)`}, ErrUnknownKey},
	{"quoted key with a dot", minimal + "[net]\n\"dial.timeout\" = \"1s\"\n",
		[]string{`p.toml:5:1: net."dial.timeout": unknown key (did you mean "net.dial_timeout"?)`}, ErrUnknownKey},
	{"unknown table", minimal + "\n[trsut]\nmode = \"pin\"\n",
		[]string{`p.toml:5:2: trsut: unknown table (did you mean "trust"?)`}, ErrUnknownKey},
	{"old [link] table name", "[link]\ndial_timeout = \"1s\"\n",
		[]string{
			`p.toml:1:1: device: required: the device's host:port, e.g. device = "10.1.0.1:1470" (or devices = [...] for failover, or listen = ":1470" when the device connects to us)`,
			`p.toml:1:1: trust.mode: required with tls = "modern": set trust.pin = "sha256:…" (recommended), or trust.mode = "tofu", "ca" or "insecure"`,
			`p.toml:1:2: link: want a string, got a table (the tty symlink path; TCP link tuning is the [net] table)`,
		}, ErrMissing},
	{"wrong type", minimal + "buffer = true\n",
		[]string{`p.toml:4:1: buffer: want an integer number of bytes or a string such as "64KiB" or "1MiB", got boolean true`}, ErrType},
	{"float stop bits", minimal + "[serial]\nstop_bits = 1.5\n",
		[]string{`p.toml:5:1: serial.stop_bits: want an integer, got float 1.5 (1 or 2)`}, ErrType},
	{"missing link", "device = \"10.1.0.1:1470\"\ntls = \"off\"\n",
		[]string{`p.toml:1:1: link: required: the tty symlink, e.g. link = "/dev/ttyVSP0" (or a bare name such as "ttyVSP0" for the default link directory)`}, ErrMissing},
	{"relative link path", strings.Replace(minimal, "/dev/ttyVSP0", "dev/ttyVSP0", 1),
		[]string{`p.toml:1:1: link: want an absolute path ("/dev/ttyVSP0") or a bare name ("ttyVSP0") for the default link directory, got "dev/ttyVSP0"`}, ErrInvalid},
	{"missing device", "link = \"/dev/ttyVSP0\"\ntls = \"off\"\n",
		[]string{`p.toml:1:1: device: required: the device's host:port, e.g. device = "10.1.0.1:1470" (or devices = [...] for failover, or listen = ":1470" when the device connects to us)`}, ErrMissing},
	{"device without port", strings.Replace(minimal, "10.1.0.1:1470", "10.1.0.1", 1),
		[]string{`p.toml:2:1: device: missing port: want host:port, e.g. "10.1.0.1:1470", got "10.1.0.1"`}, ErrInvalid},
	{"port out of range", strings.Replace(minimal, "10.1.0.1:1470", "10.1.0.1:70000", 1),
		[]string{`p.toml:2:1: device: want a port number 1..65535, got "70000" in "10.1.0.1:70000"`}, ErrInvalid},
	{"bad IPv4", strings.Replace(minimal, "10.1.0.1:1470", "10.1.0.256:1470", 1),
		[]string{`p.toml:2:1: device: invalid IPv4 address "10.1.0.256" in "10.1.0.256:1470"`}, ErrInvalid},
	{"unbracketed IPv6", strings.Replace(minimal, "10.1.0.1:1470", "fd00::2", 1),
		[]string{`p.toml:2:1: device: want host:port with the IPv6 address in brackets, e.g. "[fd00::2]:1470", got "fd00::2"`}, ErrInvalid},
	{"device and devices", minimal + "devices = [\"10.1.0.2:1470\"]\n",
		[]string{`p.toml:4:1: devices: cannot be used together with device (line 2): use device for one address, devices for a failover list, or listen when the device connects to us`}, ErrConflict},
	{"device and listen", minimal + "listen = \":1470\"\n",
		[]string{`p.toml:4:1: listen: cannot be used together with device (line 2): use device for one address, devices for a failover list, or listen when the device connects to us`}, ErrConflict},
	{"bad entry in devices, duplicate", "link = \"/dev/ttyVSP0\"\ntls = \"off\"\ndevices = [\"10.1.0.1:1470\",\n  \"10.1.0.2\",\n  \"10.1.0.1:1470\"]\n",
		[]string{
			`p.toml:4:3: devices[1]: missing port: want host:port, e.g. "10.1.0.1:1470", got "10.1.0.2"`,
			`p.toml:5:3: devices[2]: "10.1.0.1:1470" is listed twice (also devices[0])`,
		}, ErrInvalid},
	{"empty devices", "link = \"/dev/ttyVSP0\"\ntls = \"off\"\ndevices = []\n",
		[]string{`p.toml:3:1: devices: want at least one address, e.g. devices = ["10.1.0.1:1470", "10.1.0.2:1470"]`}, ErrInvalid},
	{"devices of numbers", "link = \"/dev/ttyVSP0\"\ntls = \"off\"\ndevices = [1, 2]\n",
		[]string{`p.toml:3:1: devices: want an array of strings, e.g. ["10.1.0.1:1470", "10.1.0.2:1470"], got an array`}, ErrType},
	{"mistyped pin is not also missing", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n[trust]\npin = 0xab\n",
		[]string{`p.toml:4:1: trust.pin: want a string, got integer 171`}, ErrType},
	{"mistyped trust table", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntrust = \"pin\"\n",
		[]string{`p.toml:3:1: trust: want a table, got string "pin"`}, ErrType},
	{"listen port 0", "link = \"/dev/ttyVSP0\"\ntls = \"off\"\nlisten = \":0\"\n",
		[]string{`p.toml:3:1: listen: want a port number 1..65535, got "0" in ":0"`}, ErrInvalid},
	{"tls enum", minimal + "tls = \"tls1.2\"\n",
		[]string{`p.toml:4:1: tls: invalid TLS profile "tls1.2": want off, legacy or modern`}, ErrInvalid},
	{"buffer too small", minimal + "buffer = 100\n",
		[]string{`p.toml:4:1: buffer: want 1KiB..64MiB, got 100B`}, ErrInvalid},
	{"buffer too large", minimal + "buffer = \"128MiB\"\n",
		[]string{`p.toml:4:1: buffer: want 1KiB..64MiB, got 128MiB`}, ErrInvalid},
	{"buffer ambiguous unit", minimal + "buffer = \"64KB\"\n",
		[]string{`p.toml:4:1: buffer: size "64KB": ambiguous unit "KB"; use KiB or MiB (powers of 1024)`}, ErrInvalid},
	{"buffer zero", minimal + "buffer = 0\n",
		[]string{`p.toml:4:1: buffer: want 1KiB..64MiB, got 0`}, ErrInvalid},
	{"stale_data enum", minimal + "stale_data = \"drop\"\n",
		[]string{`p.toml:4:1: stale_data: want one of keep, discard; got "drop"`}, ErrInvalid},
	{"bad pin", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n\n[trust]\nmode = \"pin\"\n\npin = \"abc\"\n",
		[]string{`p.toml:7:1: trust.pin: invalid pin "abc": want sha256:<64 hex digits>, got 3 hex digits`}, ErrInvalid},
	{"TLS without trust", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntls = \"legacy\"\n",
		[]string{`p.toml:3:1: trust.mode: required with tls = "legacy": set trust.pin = "sha256:…" (recommended), or trust.mode = "tofu", "ca" or "insecure"`}, ErrMissing},
	{"mode pin without pin", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n[trust]\nmode = \"pin\"\n",
		[]string{`p.toml:3:2: trust.pin: required with trust.mode = "pin": the device certificate's SHA-256 fingerprint, "sha256:<64 hex digits>"`}, ErrMissing},
	{"mode ca without ca_file, with pin", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntrust = { mode = \"ca\", pin = \"x\" }\n",
		[]string{
			`p.toml:3:1: trust.ca_file: required with trust.mode = "ca": a PEM file of CA certificates`,
			`p.toml:3:24: trust.pin: has no effect with trust.mode = "ca" (line 3)`,
		}, ErrMissing},
	{"tofu with pin", minimal + "trust.mode = \"tofu\"\n",
		[]string{`p.toml:3:1: trust.pin: cannot be used with trust.mode = "tofu" (line 4): tofu learns the pin on first contact; use mode = "pin" to require this one`}, ErrConflict},
	{"insecure with ca_file", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n[trust]\nmode = \"insecure\"\nca_file = \"/etc/ca.pem\"\n",
		[]string{`p.toml:5:1: trust.ca_file: has no effect with trust.mode = "insecure" (line 4)`}, ErrConflict},
	{"trust mode enum", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n[trust]\nmode = \"none\"\n",
		[]string{`p.toml:4:1: trust.mode: want one of pin, tofu, ca, insecure; got "none"`}, ErrInvalid},
	{"trust with tls off", minimal + "tls = \"off\"\n",
		[]string{`p.toml:3:1: trust.pin: has no effect with tls = "off" (line 4): there is no certificate to check; remove the [trust] table or turn TLS on`}, ErrConflict},
	{"empty string", minimal + "stale_data = \"\"\n",
		[]string{`p.toml:4:1: stale_data: empty string; leave the key out instead`}, ErrInvalid},
	{"bad duration", minimal + "[net]\ndial_timeout = \"5\"\n",
		[]string{`p.toml:5:1: net.dial_timeout: want a duration such as "5s", "250ms" or "1m30s", got "5"`}, ErrInvalid},
	{"negative duration", minimal + "[net]\nuser_timeout = \"-1s\"\n",
		[]string{`p.toml:5:1: net.user_timeout: want a positive duration, got "-1s"`}, ErrInvalid},
	{"integer duration", minimal + "[net]\nbackoff_max = 5\n",
		[]string{`p.toml:5:1: net.backoff_max: want a duration string, e.g. "5s" or "250ms", got integer 5`}, ErrType},
	{"keepalive below a second", minimal + "[net]\nkeepalive_idle = \"500ms\"\n",
		[]string{`p.toml:5:1: net.keepalive_idle: want 1s..9h6m7s, got 500ms`}, ErrInvalid},
	{"keepalive_count range", minimal + "[net]\nkeepalive_count = 0\n",
		[]string{`p.toml:5:1: net.keepalive_count: want 1..20, got 0`}, ErrInvalid},
	{"allow_from without listen", minimal + "allow_from = [\"10.1.0.2\"]\n",
		[]string{`p.toml:4:1: allow_from: only with listen: it limits who may connect as the device`}, ErrConflict},
	{"allow_from not an address", "link = \"/dev/ttyVSP0\"\nlisten = \":1470\"\ntls = \"off\"\nallow_from = [\"plc.local\"]\n",
		[]string{`p.toml:4:1: allow_from: want IP addresses or CIDR prefixes such as "10.1.0.0/24", got "plc.local"`}, ErrInvalid},
	{"backoff order", minimal + "[net]\nbackoff_min = \"10s\"\n",
		[]string{`p.toml:5:1: net.backoff_min: backoff_min (10s) must not exceed backoff_max (1s)`}, ErrConflict},
	{"decimal mode", minimal + "[tty]\nmode = 660\n",
		[]string{`p.toml:5:1: tty.mode: want an octal mode written as a string ("0660") or as 0o660, got decimal 660`}, ErrInvalid},
	{"mode too large", minimal + "[tty]\nmode = \"4755\"\n",
		[]string{`p.toml:5:1: tty.mode: want at most "0777" (no setuid, setgid or sticky bits), got "4755"`}, ErrInvalid},
	{"mode not octal", minimal + "[tty]\nmode = \"rw-rw----\"\n",
		[]string{`p.toml:5:1: tty.mode: want an octal mode such as "0660", got "rw-rw----"`}, ErrInvalid},
	{"bad owner, numeric group", minimal + "[tty]\nowner = \"scada user\"\ngroup = 20\n",
		[]string{
			`p.toml:5:1: tty.owner: want a user/group name or a numeric id, got "scada user"`,
			`p.toml:6:1: tty.group: want a string, got integer 20 (write a numeric gid as a string, e.g. "20")`,
		}, ErrInvalid},
	{"serial ranges", minimal + "[serial]\nbaud = 10\ndata_bits = 9\nstop_bits = 3\nparity = \"Even\"\nflow = \"hardware\"\n",
		[]string{
			`p.toml:5:1: serial.baud: want 50..4000000, got 10`,
			`p.toml:6:1: serial.data_bits: want 5..8, got 9`,
			`p.toml:7:1: serial.stop_bits: want 1..2, got 3`,
			`p.toml:8:1: serial.parity: want one of none, even, odd, mark, space; got "Even"`,
			`p.toml:9:1: serial.flow: want one of none, rtscts, xonxoff; got "hardware"`,
		}, ErrInvalid},
	{"trace values", minimal + "[trace]\nfile = \"t.trace\"\nmax_size = 100\nmax_files = 0\nformat = \"binary\"\n",
		[]string{
			`p.toml:5:1: trace.file: want an absolute path, got "t.trace"`,
			`p.toml:6:1: trace.max_size: want 4KiB..1TiB (or leave it out: no rotation), got 100B`,
			`p.toml:7:1: trace.max_files: want 1..1000, got 0`,
			`p.toml:8:1: trace.format: want one of hexdump, json, ascii; got "binary"`,
		}, ErrInvalid},
	{"trace without file", minimal + "[trace]\nmax_files = 2\n",
		[]string{`p.toml:5:1: trace.max_files: needs trace.file, the file to write the trace to`}, ErrMissing},
	{"rfc2217 with strict_serial", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntls = \"off\"\nrfc2217 = true\nstrict_serial = true\n",
		[]string{`p.toml:5:1: strict_serial: has no effect with rfc2217 = true (line 4): the app's serial settings are forwarded to the device, so they always match`}, ErrConflict},
	{"strict_serial without a speed to compare", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntls = \"off\"\nstrict_serial = true\n[serial]\nparity = \"even\"\n",
		[]string{`p.toml:4:1: strict_serial: needs serial.baud, the device's configured speed, to compare the application's with`}, ErrMissing},
	{"connect value", minimal + "connect = \"lazy\"\n",
		[]string{`p.toml:4:1: connect: want one of always, on-open; got "lazy"`}, ErrInvalid},
	{"on-open in listen mode", "link = \"/dev/ttyVSP0\"\nlisten = \":1470\"\ntls = \"off\"\nconnect = \"on-open\"\n",
		[]string{`p.toml:4:1: connect: "on-open" cannot be used with listen (line 2): in listen mode the device connects to vsp, so vsp has nothing to dial when the application opens the tty`}, ErrConflict},
	{"release_after without on-open", minimal + "release_after = \"2s\"\n",
		[]string{`p.toml:4:1: release_after: only with connect = "on-open": it is how long the device session outlives the last close of the tty`}, ErrConflict},
	{"release_after range", minimal + "connect = \"on-open\"\nrelease_after = \"48h\"\n",
		[]string{`p.toml:5:1: release_after: want 0s..24h0m0s, got 48h0m0s`}, ErrInvalid},
	{"udp with tls", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntransport = \"udp\"\ntls = \"legacy\"\ntrust.mode = \"insecure\"\n",
		[]string{`p.toml:4:1: tls: "legacy" cannot be used with transport = "udp" (line 3): the ezTCP cannot use SSL in U2S (UDP) mode (ezTCP SSL application note); set tls = "off" or use TCP`}, ErrConflict},
	{"udp with rfc2217, failover, bad size", "link = \"/dev/ttyVSP0\"\ndevices = [\"10.1.0.1:1470\", \"10.1.0.2:1470\"]\ntransport = \"udp\"\nrfc2217 = true\ndatagram_size = 70000\n",
		[]string{
			`p.toml:2:1: devices: a failover list cannot be used with transport = "udp" (line 3): UDP has no session whose loss would show the primary is gone; give one device`,
			`p.toml:4:1: rfc2217: cannot be used with transport = "udp" (line 3): RFC 2217 is a Telnet option on a TCP session`,
			`p.toml:5:1: datagram_size: want 1..65507, got 70000`,
		}, ErrConflict},
	{"datagram_size without udp", minimal + "datagram_size = 512\n",
		[]string{`p.toml:4:1: datagram_size: only with transport = "udp": it is the largest datagram sent to the device`}, ErrConflict},
	{"transport value", minimal + "transport = \"sctp\"\n",
		[]string{`p.toml:4:1: transport: want one of tcp, udp; got "sctp"`}, ErrInvalid},
	{"many problems at once, in file order", "link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1\"\ntls = \"off\"\nbufer = \"1MiB\"\n[serial]\nbaud = 0\n",
		[]string{
			`p.toml:2:1: device: missing port: want host:port, e.g. "10.1.0.1:1470", got "10.1.0.1"`,
			`p.toml:4:1: bufer: unknown key (did you mean "buffer"?)`,
			`p.toml:6:1: serial.baud: want 50..4000000, got 0`,
		}, ErrInvalid},
}

func TestParseErrors(t *testing.T) {
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse("plc1", "p.toml", []byte(tc.doc))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", p)
			}
			if p != nil {
				t.Errorf("Parse returned a port with an error")
			}
			got := strings.Split(err.Error(), "\n")
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Parse error:\n got %q\nwant %q", got, tc.want)
			}
			errs := Errors(err)
			if len(errs) != len(tc.want) {
				t.Fatalf("Errors() = %d errors, want %d", len(errs), len(tc.want))
			}
			for _, e := range errs {
				if e.File != "p.toml" || e.Line < 1 || e.Col < 1 {
					t.Errorf("error without position: %#v", e)
				}
			}
			if !errors.Is(errs[0], tc.kind) {
				t.Errorf("errors.Is(%v, %v) = false", errs[0], tc.kind)
			}
		})
	}
}

func TestErrorFields(t *testing.T) {
	_, err := Parse("plc1", "/etc/vsp/ports.d/plc1.toml", []byte("link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\n\n[trust]\nmode = \"pin\"\n\npin = \"abc\"\n"))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not an *Error", err)
	}
	if e.File != "/etc/vsp/ports.d/plc1.toml" || e.Line != 7 || e.Col != 1 || e.Key != "trust.pin" || !errors.Is(e, ErrInvalid) {
		t.Errorf("got %#v", e)
	}
	const msg = `/etc/vsp/ports.d/plc1.toml:7:1: trust.pin: invalid pin "abc": want sha256:<64 hex digits>, got 3 hex digits`
	if e.Error() != msg {
		t.Errorf("Error() = %q, want %q", e.Error(), msg)
	}
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Key: "link", Err: errors.New("x")}, "link: x"},
		{Error{File: "f", Err: errors.New("x")}, "f: x"},
		{Error{File: "f", Line: 2, Key: "k", Err: errors.New("x")}, "f:2:1: k: x"},
		{Error{Line: 2, Col: 3, Err: errors.New("x")}, "2:3: x"},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("%#v.Error() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestParseName(t *testing.T) {
	for _, name := range []string{"", "-x", ".x", "a b", strings.Repeat("a", 65), "ä"} {
		_, err := Parse(name, "", []byte(minimal))
		if !errors.Is(err, ErrName) {
			t.Errorf("Parse(%q): err = %v, want ErrName", name, err)
		}
	}
	for _, name := range []string{"a", "PLC-1.line_2", strings.Repeat("a", 64)} {
		if _, err := Parse(name, "", []byte(minimal)); err != nil {
			t.Errorf("Parse(%q): %v", name, err)
		}
	}
	_, err := Parse("a b", "", []byte(minimal+"tsl = 1\n"))
	if len(Errors(err)) != 2 {
		t.Errorf("name and content problems should both be reported, got %v", err)
	}
}

func TestValidateBuilt(t *testing.T) {
	// A Port built in code: zero fields mean the default.
	p := &Port{Name: "plc1", Link: "/dev/ttyVSP0", Device: "10.1.0.1:1470", Trust: Trust{Pin: pin}}
	if err := p.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if p.Trust.Mode != "" || p.Buffer != 0 {
		t.Error("Validate modified the port")
	}
	p.SetDefaults()
	w := want(nil)
	w.File = ""
	if !reflect.DeepEqual(p, w) {
		t.Errorf("SetDefaults:\n got %+v\nwant %+v", p, w)
	}

	bad := &Port{Name: "x y", Device: "h", TLS: "on", Serial: Serial{Baud: 7}, Devices: []string{}}
	err := bad.Validate()
	want := []string{
		`port name "x y" (the file name without .toml) must be 1 to 64 characters from A-Z a-z 0-9 _ . -, starting with a letter or digit`,
		`link: required: the tty symlink, e.g. link = "/dev/ttyVSP0" (or a bare name such as "ttyVSP0" for the default link directory)`,
		`devices: cannot be used together with device: use device for one address, devices for a failover list, or listen when the device connects to us`,
		`device: missing port: want host:port, e.g. "10.1.0.1:1470", got "h"`,
		`devices: want at least one address`,
		`tls: invalid TLS profile "on": want off, legacy or modern`,
		`serial.baud: want 50..4000000, got 7`,
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("Validate:\n got %q\nwant %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plc1.toml")
	if err := os.WriteFile(path, []byte(minimal), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "plc1" || p.File != path {
		t.Errorf("Load: name %q file %q", p.Name, p.File)
	}
	p.Trust.CAFile = "ca.pem"
	if got := p.CAFilePath(); got != filepath.Join(dir, "ca.pem") {
		t.Errorf("CAFilePath = %q", got)
	}
	if got := p.LinkPath("/run/vsp"); got != "/dev/ttyVSP0" {
		t.Errorf("LinkPath = %q", got)
	}
	p.Link = "ttyX"
	if got := p.LinkPath("/run/vsp"); got != "/run/vsp/ttyX" {
		t.Errorf("LinkPath = %q", got)
	}

	_, err = Load(filepath.Join(dir, "missing.toml"))
	var e *Error
	if !errors.As(err, &e) || e.File != filepath.Join(dir, "missing.toml") || !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrRead) {
		t.Errorf("Load(missing) = %v", err)
	}
	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrRead) {
		t.Errorf("Load(big) = %v", err)
	}
}

func TestAddrs(t *testing.T) {
	for _, tc := range []struct {
		p    Port
		want []string
	}{
		{Port{Device: "a:1"}, []string{"a:1"}},
		{Port{Devices: []string{"a:1", "b:2"}}, []string{"a:1", "b:2"}},
		{Port{Listen: ":1"}, nil},
	} {
		if got := tc.p.Addrs(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Addrs(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
