package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/vsp-dev/vsp/service/monitor"
	"github.com/vsp-dev/vsp/tlsconn"
)

// Values of the enumerated keys.
const (
	TLSOff    = string(tlsconn.ProfileOff)    // plain TCP
	TLSLegacy = string(tlsconn.ProfileLegacy) // TLS 1.0+ with the RSA-kex CBC suites ezTCP-class devices speak
	TLSModern = string(tlsconn.ProfileModern) // TLS 1.2+ with forward-secret AEAD suites

	TrustPin      = tlsconn.TrustPin      // the device certificate must match Trust.Pin
	TrustTOFU     = tlsconn.TrustTOFU     // learn the device's pin on first contact, then require it
	TrustCA       = tlsconn.TrustCA       // verify the chain against Trust.CAFile and the name
	TrustInsecure = tlsconn.TrustInsecure // accept any certificate: encryption without authentication

	StaleKeep    = "keep"    // hold device bytes that arrive while the app has the port closed
	StaleDiscard = "discard" // drop them, as a real UART with nobody reading would

	ConnectAlways = "always"  // connect: keep a session to the device for as long as the port exists
	ConnectOnOpen = "on-open" // connect: hold a session only while an application has the tty open

	TransportTCP = "tcp" // transport: a TCP (or TLS) session to a device in T2S mode
	TransportUDP = "udp" // transport: datagrams to and from a device in U2S mode

	ParityNone  = "none"
	ParityEven  = "even"
	ParityOdd   = "odd"
	ParityMark  = "mark"
	ParitySpace = "space"

	FlowNone    = "none"
	FlowRTSCTS  = "rtscts"
	FlowXONXOFF = "xonxoff"

	TraceHexdump = string(monitor.FormatHexdump) // [trace] format: hexdump -C style lines
	TraceJSON    = string(monitor.FormatJSON)    // one JSON object a line
	TraceASCII   = string(monitor.FormatASCII)   // printable text, escapes for the rest
)

// Defaults applied to keys a file leaves out (and to zero fields of a Port
// built in code).
const (
	DefaultTLS               = TLSModern
	DefaultBuffer            = 64 * KiB
	DefaultStaleData         = StaleDiscard
	DefaultConnect           = ConnectAlways
	DefaultTransport         = TransportTCP
	DefaultDatagramSize      = 1472 // what fits one Ethernet frame: 1500 - 20 (IPv4) - 8 (UDP)
	MaxDatagramSize          = 65507
	MaxReleaseAfter          = 24 * time.Hour
	DefaultDialTimeout       = 5 * time.Second
	DefaultKeepAliveIdle     = 3 * time.Second // 3 + 3×2 s: a silent dead path is dropped within 9 s
	DefaultKeepAliveInterval = 2 * time.Second
	DefaultKeepAliveCount    = 3
	DefaultUserTimeout       = 9 * time.Second
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = time.Second
	DefaultTTYMode           = os.FileMode(0o660)
	// [serial] has no defaults: vsp cannot know what the device's line
	// runs at, so a key left out stays "not set" (zero) and nothing is
	// checked or sent for it.

	MinBuffer = 1 * KiB
	MaxBuffer = 64 * MiB

	DefaultTraceFormat = TraceHexdump
	DefaultTraceFiles  = monitor.DefaultMaxFiles
	MinTraceSize       = 4 * KiB // trace.max_size, when set
	MaxTraceFiles      = 1000
)

// Port is one configured virtual serial port: the decoded contents of
// <dir>/<Name>.toml with defaults applied. See docs/configuration.md for
// the meaning of each key.
//
// A Port may also be built in code (by `vsp create`): zero fields then mean
// the default, as Validate and Encode treat them.
type Port struct {
	Name string // from the file name, without ".toml"
	File string // path the port was parsed from; used in error messages

	Link    string   // link: tty symlink; absolute, or a bare name inside the link directory
	Device  string   // device: host:port of a device in TCP-server mode
	Devices []string // devices: primary + backups, tried in order (exclusive with Device)
	Listen  string   // listen: [host]:port to accept a device in TCP-client mode

	DeviceMAC      string   // device_mac: with listen, the MAC the device must send first
	AllowFrom      []string // allow_from: with listen, the addresses (IP or CIDR) a device may connect from
	ReplaceSession bool     // replace_session: with listen, a new session replaces the current one

	TLS          string   // tls: TLSOff, TLSLegacy or TLSModern
	Buffer       ByteSize // buffer: outage buffer size
	StaleData    string   // stale_data: StaleKeep or StaleDiscard
	RFC2217      bool     // rfc2217: negotiate RFC 2217 and forward the app's serial settings
	StrictSerial bool     // strict_serial: hold data while the app's baud rate differs from Serial.Baud

	Connect      string        // connect: ConnectAlways or ConnectOnOpen
	ReleaseAfter time.Duration // release_after: with on-open, how long the session outlives the last close
	Transport    string        // transport: TransportTCP or TransportUDP
	DatagramSize int           // datagram_size: with udp, the largest datagram sent to the device

	Trust  Trust
	Net    Net
	TTY    TTY
	Serial Serial
	Trace  Trace

	pos index // where each key was in File; nil for a Port built in code
}

// Trust is the [trust] table: how the device's TLS certificate is verified.
type Trust struct {
	Mode       string // mode: TrustPin, TrustTOFU, TrustCA or TrustInsecure
	Pin        string // pin: "sha256:" + 64 lowercase hex digits (normalised)
	CAFile     string // ca_file: PEM bundle; relative paths are relative to the port file
	ServerName string // server_name: expected certificate name, also sent as SNI
}

// Net is the [net] table: tuning of the TCP link to the device.
type Net struct {
	DialTimeout       time.Duration // dial_timeout
	KeepAliveIdle     time.Duration // keepalive_idle
	KeepAliveInterval time.Duration // keepalive_interval
	KeepAliveCount    int           // keepalive_count
	UserTimeout       time.Duration // user_timeout (TCP_USER_TIMEOUT)
	BackoffMin        time.Duration // backoff_min: first redial delay
	BackoffMax        time.Duration // backoff_max: redial delay cap
}

// TTY is the [tty] table: ownership and permissions of the PTY slave.
type TTY struct {
	Owner string      // owner: user name or numeric uid; "" = the daemon's user
	Group string      // group: group name or numeric gid; "" = the daemon's group
	Mode  os.FileMode // mode: permission bits, at most 0777
}

// Serial is the [serial] table: the serial settings the device's line
// actually runs at, as configured on the device. Each field is zero (not
// set) unless given: there is no default, since only the device knows.
type Serial struct {
	Baud     int    // baud: 50..4000000; 0 = not set
	DataBits int    // data_bits: 5..8; 0 = not set
	Parity   string // parity: none, even, odd, mark or space; "" = not set
	StopBits int    // stop_bits: 1 or 2; 0 = not set
	Flow     string // flow: none, rtscts or xonxoff; "" = not set
}

// Trace is the [trace] table: a file the port's traffic and events are
// written to, as `vsp monitor` shows them.
type Trace struct {
	File     string   // file: absolute path; created 0600; "" = no trace
	MaxSize  ByteSize // max_size: rotate before the file grows past this; 0 = never
	MaxFiles int      // max_files: files kept, the current one included
	Format   string   // format: TraceHexdump, TraceJSON or TraceASCII
}

// portSpecs is the schema of a port file.
var portSpecs = []spec{
	{key: "link", kind: kString, hint: "(the tty symlink path; TCP link tuning is the [net] table)"},
	{key: "device", kind: kString, hint: "(one address; use devices = [...] for a failover list)"},
	{key: "devices", kind: kStrings},
	{key: "listen", kind: kString},
	{key: "device_mac", kind: kString, hint: "(a string such as \"00:30:f9:00:00:01\")"},
	{key: "allow_from", kind: kStrings, hint: "(an array of IP addresses or CIDR prefixes)"},
	{key: "replace_session", kind: kBool},
	{key: "tls", kind: kString},
	{key: "buffer", kind: kSize},
	{key: "stale_data", kind: kString},
	{key: "rfc2217", kind: kBool},
	{key: "strict_serial", kind: kBool},
	{key: "connect", kind: kString},
	{key: "release_after", kind: kDuration},
	{key: "transport", kind: kString},
	{key: "datagram_size", kind: kInt},
	{key: "trust", kind: kTable},
	{key: "trust.mode", kind: kString},
	{key: "trust.pin", kind: kString},
	{key: "trust.ca_file", kind: kString},
	{key: "trust.server_name", kind: kString},
	{key: "net", kind: kTable},
	{key: "net.dial_timeout", kind: kDuration},
	{key: "net.keepalive_idle", kind: kDuration},
	{key: "net.keepalive_interval", kind: kDuration},
	{key: "net.keepalive_count", kind: kInt},
	{key: "net.user_timeout", kind: kDuration},
	{key: "net.backoff_min", kind: kDuration},
	{key: "net.backoff_max", kind: kDuration},
	{key: "tty", kind: kTable},
	{key: "tty.owner", kind: kString, hint: "(write a numeric uid as a string, e.g. \"1000\")"},
	{key: "tty.group", kind: kString, hint: "(write a numeric gid as a string, e.g. \"20\")"},
	{key: "tty.mode", kind: kMode},
	{key: "serial", kind: kTable},
	{key: "serial.baud", kind: kInt},
	{key: "serial.data_bits", kind: kInt},
	{key: "serial.parity", kind: kString},
	{key: "serial.stop_bits", kind: kInt, hint: "(1 or 2)"},
	{key: "serial.flow", kind: kString},
	{key: "trace", kind: kTable},
	{key: "trace.file", kind: kString, hint: "(an absolute path, e.g. \"/var/log/vsp/ttyVSP0.trace\")"},
	{key: "trace.max_size", kind: kSize},
	{key: "trace.max_files", kind: kInt},
	{key: "trace.format", kind: kString},
}

// Integer ranges, shared by the decoder and Validate.
const (
	minBaud, maxBaud             = 50, 4_000_000
	minDataBits, maxDataBits     = 5, 8
	minStopBits, maxStopBits     = 1, 2
	minKeepCount, maxKeepCount   = 1, 20
	maxKeepAliveSecs             = 32767 // Linux TCP_KEEPIDLE / TCP_KEEPINTVL limit
	maxUserTimeout               = time.Duration(1<<31-1) * time.Millisecond
	maxLinkLen                   = 4095
	maxNameLen                   = 64
	pinHexLen                    = 64
	maxOwnerLen                  = 32
	minBackoff                   = time.Millisecond
	minKeepAlive                 = time.Second
	minDialTimeout, maxDialTmout = time.Millisecond, time.Hour
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// PortFile is the file of port name in the port directory dir.
func PortFile(dir, name string) string { return filepath.Join(dir, name+Ext) }

// ValidName reports whether name can be a port name (and so a file name
// <name>.toml): 1 to 64 characters from [A-Za-z0-9_.-], starting with a
// letter or digit.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Load reads the port file at path and returns the port it describes, named
// after the file. It is the one loader for port files: the daemon uses it
// at start-up and on every reload. Only a regular file of at most
// maxFileSize bytes is read (see readFile); anything else — a FIFO, a
// socket, a device, a directory, a file that cannot be read — is an *Error
// for path, returned at once, never a wait. Errors are *Error values (joined
// when there are several), each with the file and line.
func Load(path string) (*Port, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(NameOf(path), path, data)
}

// readFile reads a configuration file: a regular file (a symlink is
// followed) of at most maxFileSize bytes. The path is checked before it is
// opened, so that no device is ever opened (opening a serial line, for
// one, raises its modem lines); the open itself is non-blocking, without
// becoming the controlling terminal, and the opened file is checked again
// (readOpened), so that a FIFO or device swapped in meanwhile is refused
// too and never blocks. Every problem is an *Error for path.
func readFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, readError(path, err)
	}
	if err := regular(path, fi); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0) // O_CLOEXEC: always added by os
	if err != nil {
		return nil, readError(path, err)
	}
	defer f.Close()
	return readOpened(path, f)
}

// readOpened reads f, opened from path, if it is a regular file of at most
// maxFileSize bytes that only root or this process's user may write
// (trustedFile).
func readOpened(path string, f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, readError(path, err)
	}
	if err := regular(path, fi); err != nil {
		return nil, err
	}
	if err := trustedFile(path, fi); err != nil {
		return nil, err
	}
	tooBig := &Error{File: path, Err: reasonf(ErrRead, "file is larger than %d bytes (1 MiB); is this really a configuration file?", maxFileSize)}
	if fi.Size() > maxFileSize {
		return nil, tooBig
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1)) // it may grow meanwhile
	if err != nil {
		return nil, readError(path, err)
	}
	if len(data) > maxFileSize {
		return nil, tooBig
	}
	return data, nil
}

// readError is err, from reading path, as an *Error of kind ErrRead that
// still matches err's cause (fs.ErrNotExist, fs.ErrPermission...).
func readError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err // the path is already in the message
	}
	return &Error{File: path, Err: fmt.Errorf("%w: %w", ErrRead, err)}
}

// regular refuses, as an *Error for path, a file that is not a regular
// file.
func regular(path string, fi fs.FileInfo) error {
	m := fi.Mode()
	if m.IsRegular() {
		return nil
	}
	what := "not a regular file"
	switch {
	case m.IsDir():
		what = "a directory"
	case m&fs.ModeNamedPipe != 0:
		what = "a FIFO (named pipe)"
	case m&fs.ModeSocket != 0:
		what = "a socket"
	case m&fs.ModeCharDevice != 0:
		what = "a character device"
	case m&fs.ModeDevice != 0:
		what = "a block device"
	}
	return &Error{File: path, Err: reasonf(ErrRead, "%s, not a regular file: a configuration file must be a plain file (a symlink to one is fine)", what)}
}

// Parse decodes data as the port file of the port called name, applies the
// defaults and validates the result. file is only used in messages; when
// empty it is name + ".toml". Every problem found is reported, as *Error
// values joined with errors.Join.
func Parse(name, file string, data []byte) (*Port, error) {
	if file == "" {
		file = name + ".toml"
	}
	var errs []*Error
	if !ValidName(name) {
		errs = append(errs, nameError(file, name))
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a BOM some editors add
	d, terr := parseDocument(file, data, portSpecs)
	if terr != nil {
		return nil, joinErrors(append(errs, terr))
	}
	p := &Port{Name: name, File: file, pos: d.ix}
	p.Link = d.str("link")
	p.Device = d.str("device")
	p.Devices = d.strs("devices")
	if d.has("devices") && len(p.Devices) == 0 {
		d.errorf("devices", ErrInvalid, `want at least one address, e.g. devices = ["10.1.0.1:1470", "10.1.0.2:1470"]`)
	}
	p.Listen = d.str("listen")
	p.DeviceMAC = d.str("device_mac")
	p.AllowFrom = d.strs("allow_from")
	p.ReplaceSession = d.boolean("replace_session")
	p.TLS = d.str("tls")
	if d.has("tls") && p.TLS == "" {
		d.errorf("tls", ErrInvalid, "want one of off, legacy, modern; got \"\"")
	}
	p.Buffer = d.size("buffer")
	p.StaleData = d.str("stale_data")
	p.RFC2217 = d.boolean("rfc2217")
	p.StrictSerial = d.boolean("strict_serial")
	p.Connect = d.str("connect")
	p.ReleaseAfter = d.duration("release_after")
	p.Transport = d.str("transport")
	p.DatagramSize = d.integer("datagram_size", 1, MaxDatagramSize)

	p.Trust.Mode = d.str("trust.mode")
	p.Trust.Pin = d.str("trust.pin")
	p.Trust.CAFile = d.str("trust.ca_file")
	p.Trust.ServerName = d.str("trust.server_name")
	for _, k := range []string{"trust.mode", "trust.pin", "trust.ca_file", "trust.server_name", "link", "device", "listen", "device_mac", "stale_data", "connect", "transport", "serial.parity", "serial.flow", "trace.file", "trace.format"} {
		if d.has(k) && d.str(k) == "" && !d.bad[k] {
			d.errorf(k, ErrInvalid, "empty string; leave the key out instead")
		}
	}

	p.Net.DialTimeout = d.duration("net.dial_timeout")
	p.Net.KeepAliveIdle = d.duration("net.keepalive_idle")
	p.Net.KeepAliveInterval = d.duration("net.keepalive_interval")
	p.Net.KeepAliveCount = d.integer("net.keepalive_count", minKeepCount, maxKeepCount)
	p.Net.UserTimeout = d.duration("net.user_timeout")
	p.Net.BackoffMin = d.duration("net.backoff_min")
	p.Net.BackoffMax = d.duration("net.backoff_max")

	p.TTY.Owner = d.str("tty.owner")
	p.TTY.Group = d.str("tty.group")
	p.TTY.Mode = os.FileMode(d.mode("tty.mode"))

	p.Serial.Baud = d.integer("serial.baud", minBaud, maxBaud)
	p.Serial.DataBits = d.integer("serial.data_bits", minDataBits, maxDataBits)
	p.Serial.Parity = d.str("serial.parity")
	p.Serial.StopBits = d.integer("serial.stop_bits", minStopBits, maxStopBits)
	p.Serial.Flow = d.str("serial.flow")

	p.Trace.File = d.str("trace.file")
	p.Trace.MaxSize = d.size("trace.max_size")
	p.Trace.MaxFiles = d.integer("trace.max_files", 1, MaxTraceFiles)
	p.Trace.Format = d.str("trace.format")

	p.SetDefaults()
	errs = append(errs, d.errs...)
	errs = append(errs, p.validate(d.bad)...)
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	if p.Trust.Pin != "" {
		p.Trust.Pin, _ = tlsconn.ParsePin(p.Trust.Pin) // validated above
	}
	return p, nil
}

func nameError(file, name string) *Error {
	return &Error{File: file, Err: reasonf(ErrName, "port name %q (the file name without .toml) must be 1 to %d characters from A-Z a-z 0-9 _ . -, starting with a letter or digit", name, maxNameLen)}
}

// SetDefaults fills every zero field of p with its default. Trust.Mode
// defaults to "pin" when a pin is set and TLS is on; otherwise it stays
// empty, which Validate rejects when TLS is on.
func (p *Port) SetDefaults() {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	defDur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(n *int, v int) {
		if *n == 0 {
			*n = v
		}
	}
	def(&p.Transport, DefaultTransport)
	if p.Transport == TransportUDP {
		def(&p.TLS, TLSOff) // U2S has no TLS (ezTCP SSL application note)
		defInt(&p.DatagramSize, DefaultDatagramSize)
	}
	def(&p.TLS, DefaultTLS)
	def(&p.Connect, DefaultConnect)
	if p.Buffer == 0 {
		p.Buffer = DefaultBuffer
	}
	def(&p.StaleData, DefaultStaleData)
	if p.Trust.Mode == "" && p.Trust.Pin != "" && p.TLS != TLSOff {
		p.Trust.Mode = TrustPin
	}
	defDur(&p.Net.DialTimeout, DefaultDialTimeout)
	defDur(&p.Net.KeepAliveIdle, DefaultKeepAliveIdle)
	defDur(&p.Net.KeepAliveInterval, DefaultKeepAliveInterval)
	defInt(&p.Net.KeepAliveCount, DefaultKeepAliveCount)
	defDur(&p.Net.UserTimeout, DefaultUserTimeout)
	defDur(&p.Net.BackoffMin, DefaultBackoffMin)
	defDur(&p.Net.BackoffMax, DefaultBackoffMax)
	if p.TTY.Mode == 0 {
		p.TTY.Mode = DefaultTTYMode
	}
	if p.Trace.File != "" { // no trace, no trace defaults
		def(&p.Trace.Format, DefaultTraceFormat)
		defInt(&p.Trace.MaxFiles, DefaultTraceFiles)
	}
}

// Addrs returns the device addresses to dial in order: Devices, or Device
// alone. It is empty for a port in listen mode.
func (p *Port) Addrs() []string {
	if len(p.Devices) > 0 {
		return append([]string(nil), p.Devices...)
	}
	if p.Device != "" {
		return []string{p.Device}
	}
	return nil
}

// LinkPath returns the absolute symlink path: Link itself when absolute,
// else Link inside linkDir.
func (p *Port) LinkPath(linkDir string) string {
	if filepath.IsAbs(p.Link) {
		return p.Link
	}
	return filepath.Join(linkDir, p.Link)
}

// CAFilePath returns Trust.CAFile with a relative path resolved against the
// directory of the port file.
func (p *Port) CAFilePath() string {
	if p.Trust.CAFile == "" || filepath.IsAbs(p.Trust.CAFile) || p.File == "" {
		return p.Trust.CAFile
	}
	return filepath.Join(filepath.Dir(p.File), p.Trust.CAFile)
}

// Validate checks the port as a whole: each value's syntax and range, and
// keys that must or must not go together. Zero fields count as their
// default. When p came from Parse or Load, errors carry the file and line
// of the key concerned; all problems are reported, joined.
func (p *Port) Validate() error {
	return joinErrors(p.validate(nil))
}

func (p *Port) validate(skip map[string]bool) []*Error {
	q := *p
	q.SetDefaults()
	v := validator{file: p.File, ix: p.pos, skip: skip}
	if !ValidName(q.Name) && p.pos == nil {
		v.errs = append(v.errs, nameError(p.File, q.Name))
	}

	// Where the tty goes.
	switch {
	case q.Link == "":
		v.errorf("link", ErrMissing, `required: the tty symlink, e.g. link = "/dev/ttyVSP0" (or a bare name such as "ttyVSP0" for the default link directory)`)
	default:
		if err := checkLink(q.Link); err != nil {
			v.errorf("link", ErrInvalid, "%v", err)
		}
	}

	// Where the device is.
	var set []string
	for _, k := range []struct {
		key string
		on  bool
	}{{"device", q.Device != ""}, {"devices", q.Devices != nil}, {"listen", q.Listen != ""}} {
		if k.on || v.reported(k.key) {
			set = append(set, k.key)
		}
	}
	switch len(set) {
	case 0:
		v.errorf("device", ErrMissing, `required: the device's host:port, e.g. device = "10.1.0.1:1470" (or devices = [...] for failover, or listen = ":1470" when the device connects to us)`)
	case 1:
	default:
		first := set[0]
		for _, k := range set[1:] {
			v.errorf(k, ErrConflict, "cannot be used together with %s%s: %s", first, v.at(first), endpointHelp)
		}
	}
	if q.Device != "" {
		if err := checkHostPort(q.Device, false); err != nil {
			v.errorf("device", ErrInvalid, "%v", err)
		}
	}
	if q.Devices != nil && len(q.Devices) == 0 {
		v.errorf("devices", ErrInvalid, "want at least one address")
	}
	seen := map[string]int{}
	for i, a := range q.Devices {
		k := fmt.Sprintf("devices[%d]", i)
		if err := checkHostPort(a, false); err != nil {
			v.errorf(k, ErrInvalid, "%v", err)
		} else if j, dup := seen[a]; dup {
			v.errorf(k, ErrConflict, "%q is listed twice (also devices[%d])", a, j)
		} else {
			seen[a] = i
		}
	}
	if q.Listen != "" {
		if err := checkHostPort(q.Listen, true); err != nil {
			v.errorf("listen", ErrInvalid, "%v", err)
		}
	}
	if q.DeviceMAC != "" {
		if q.Listen == "" {
			v.errorf("device_mac", ErrConflict, "only with listen: it is the MAC a connecting device must send first")
		} else if _, err := ParseMAC(q.DeviceMAC); err != nil {
			v.errorf("device_mac", ErrInvalid, "%v", err)
		}
	}
	if len(q.AllowFrom) > 0 && q.Listen == "" {
		v.errorf("allow_from", ErrConflict, "only with listen: it limits who may connect as the device")
	}
	for _, a := range q.AllowFrom {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				v.errorf("allow_from", ErrInvalid, "want IP addresses or CIDR prefixes such as \"10.1.0.0/24\", got %q", a)
			}
		}
	}
	if q.ReplaceSession && q.Listen == "" {
		v.errorf("replace_session", ErrConflict, "only with listen: it decides what a second device session does")
	}

	if _, err := tlsconn.ParseProfile(q.TLS); err != nil {
		v.errorf("tls", ErrInvalid, "%s", reasonOf(err))
	}
	if q.Buffer < MinBuffer || q.Buffer > MaxBuffer {
		v.errorf("buffer", ErrInvalid, "want %v..%v, got %v", MinBuffer, MaxBuffer, q.Buffer)
	}
	v.enum("stale_data", q.StaleData, StaleKeep, StaleDiscard)
	v.policy(&q)
	if q.RFC2217 && q.StrictSerial {
		v.errorf("strict_serial", ErrConflict, "has no effect with rfc2217 = true%s: the app's serial settings are forwarded to the device, so they always match", v.at("rfc2217"))
	}

	v.trust(&q)

	// [net]
	v.durRange("net.dial_timeout", q.Net.DialTimeout, minDialTimeout, maxDialTmout)
	v.durRange("net.keepalive_idle", q.Net.KeepAliveIdle, minKeepAlive, maxKeepAliveSecs*time.Second)
	v.durRange("net.keepalive_interval", q.Net.KeepAliveInterval, minKeepAlive, maxKeepAliveSecs*time.Second)
	v.intRange("net.keepalive_count", q.Net.KeepAliveCount, minKeepCount, maxKeepCount)
	v.durRange("net.user_timeout", q.Net.UserTimeout, time.Millisecond, maxUserTimeout)
	v.durRange("net.backoff_min", q.Net.BackoffMin, minBackoff, time.Hour)
	v.durRange("net.backoff_max", q.Net.BackoffMax, minBackoff, time.Hour)
	if q.Net.BackoffMax < q.Net.BackoffMin && !v.skip["net.backoff_min"] {
		key, other := "net.backoff_max", "net.backoff_min"
		if v.ix != nil {
			if _, ok := v.ix[pathKey(key)]; !ok {
				key, other = other, key
			}
		}
		v.errorf(key, ErrConflict, "backoff_min (%v) must not exceed backoff_max (%v)%s", q.Net.BackoffMin, q.Net.BackoffMax, v.at(other))
	}

	// [tty]
	v.account("tty.owner", q.TTY.Owner)
	v.account("tty.group", q.TTY.Group)
	if q.TTY.Mode&^0o777 != 0 {
		v.errorf("tty.mode", ErrInvalid, "want permission bits only, at most 0777, got %#o", uint32(q.TTY.Mode))
	}

	// [serial]: each key only when set.
	if q.Serial.Baud != 0 {
		v.intRange("serial.baud", q.Serial.Baud, minBaud, maxBaud)
	}
	if q.Serial.DataBits != 0 {
		v.intRange("serial.data_bits", q.Serial.DataBits, minDataBits, maxDataBits)
	}
	if q.Serial.Parity != "" {
		v.enum("serial.parity", q.Serial.Parity, ParityNone, ParityEven, ParityOdd, ParityMark, ParitySpace)
	}
	if q.Serial.StopBits != 0 {
		v.intRange("serial.stop_bits", q.Serial.StopBits, minStopBits, maxStopBits)
	}
	if q.Serial.Flow != "" {
		v.enum("serial.flow", q.Serial.Flow, FlowNone, FlowRTSCTS, FlowXONXOFF)
	}

	// [trace]
	if q.Trace.File != "" && !filepath.IsAbs(q.Trace.File) {
		v.errorf("trace.file", ErrInvalid, "want an absolute path, got %q", q.Trace.File)
	}
	if q.Trace.MaxSize != 0 && (q.Trace.MaxSize < MinTraceSize || q.Trace.MaxSize > 1<<40) {
		v.errorf("trace.max_size", ErrInvalid, "want %v..1TiB (or leave it out: no rotation), got %v", MinTraceSize, q.Trace.MaxSize)
	}
	if q.Trace.File != "" {
		v.intRange("trace.max_files", q.Trace.MaxFiles, 1, MaxTraceFiles)
		v.enum("trace.format", q.Trace.Format, TraceHexdump, TraceJSON, TraceASCII)
	} else {
		for _, k := range []string{"trace.max_size", "trace.max_files", "trace.format"} {
			if v.ix != nil {
				if _, ok := v.ix[pathKey(k)]; ok {
					v.errorf(k, ErrMissing, "needs trace.file, the file to write the trace to")
				}
			}
		}
	}
	if q.StrictSerial && q.Serial.Baud == 0 && !q.RFC2217 {
		v.errorf("strict_serial", ErrMissing, "needs serial.baud, the device's configured speed, to compare the application's with")
	}
	return v.errs
}

const endpointHelp = `use device for one address, devices for a failover list, or listen when the device connects to us`

func (v *validator) trust(q *Port) {
	t := q.Trust
	fields := []struct{ key, val string }{
		{"trust.mode", t.Mode}, {"trust.pin", t.Pin}, {"trust.ca_file", t.CAFile}, {"trust.server_name", t.ServerName},
	}
	if q.Listen != "" {
		// The device is the TLS client and (ezTCP) presents no
		// certificate: nothing is required here, and the [trust] table is
		// not used in listen mode (see service/listen.go); device_mac is
		// the identity check.
		return
	}
	if q.TLS == TLSOff {
		for _, f := range fields {
			if f.val != "" {
				v.errorf(f.key, ErrConflict, "has no effect with tls = \"off\"%s: there is no certificate to check; remove the [trust] table or turn TLS on", v.at("tls"))
			}
		}
		return
	}
	if q.TLS != TLSLegacy && q.TLS != TLSModern {
		return // already reported
	}
	if t.Pin != "" && (t.Mode == "" || t.Mode == TrustPin) {
		if _, err := tlsconn.ParsePin(t.Pin); err != nil {
			v.errorf("trust.pin", ErrInvalid, "%s", reasonOf(err))
		}
	}
	if t.CAFile != "" && strings.ContainsRune(t.CAFile, 0) {
		v.errorf("trust.ca_file", ErrInvalid, "path contains a NUL byte")
	}
	if t.ServerName != "" && checkHost(t.ServerName) != nil {
		v.errorf("trust.server_name", ErrInvalid, "want a DNS name or IP address, got %q", t.ServerName)
	}
	noEffect := func(key, mode string) {
		v.errorf(key, ErrConflict, "has no effect with trust.mode = %q%s", mode, v.at("trust.mode"))
	}
	switch t.Mode {
	case "":
		if v.reported("trust.pin") {
			break // given, but with the wrong type
		}
		at := "trust.mode"
		if !v.present("trust") && v.present("tls") {
			at = "tls"
		}
		v.errorfAt("trust.mode", at, ErrMissing, `required with tls = %q: set trust.pin = "sha256:…" (recommended), or trust.mode = "tofu", "ca" or "insecure"`, q.TLS)
	case TrustPin:
		if t.Pin == "" {
			v.errorf("trust.pin", ErrMissing, `required with trust.mode = "pin": the device certificate's SHA-256 fingerprint, "sha256:<64 hex digits>"`)
		}
		if t.CAFile != "" {
			noEffect("trust.ca_file", t.Mode)
		}
	case TrustTOFU:
		if t.Pin != "" {
			v.errorf("trust.pin", ErrConflict, "cannot be used with trust.mode = \"tofu\"%s: tofu learns the pin on first contact; use mode = \"pin\" to require this one", v.at("trust.mode"))
		}
		if t.CAFile != "" {
			noEffect("trust.ca_file", t.Mode)
		}
	case TrustCA:
		if t.CAFile == "" {
			v.errorf("trust.ca_file", ErrMissing, `required with trust.mode = "ca": a PEM file of CA certificates`)
		}
		if t.Pin != "" {
			noEffect("trust.pin", t.Mode)
		}
	case TrustInsecure:
		for _, f := range fields[1:] {
			if f.val != "" {
				noEffect(f.key, t.Mode)
			}
		}
	default:
		v.enum("trust.mode", t.Mode, TrustPin, TrustTOFU, TrustCA, TrustInsecure)
	}
}

// validator collects errors at the positions of keys.
type validator struct {
	file string
	ix   index
	skip map[string]bool
	errs []*Error
}

func (v *validator) errorf(key string, kind error, format string, args ...any) {
	v.errorfAt(key, key, kind, format, args...)
}

// reported reports whether key, or a table or array containing it, was
// already reported while decoding: a key with a value of the wrong type
// counts as given, so "missing" errors would be noise.
func (v *validator) reported(key string) bool {
	for {
		if v.skip[key] {
			return true
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return false
		}
		key = key[:i]
	}
}

// present reports whether key appears in the document.
func (v *validator) present(key string) bool {
	_, ok := v.ix[pathKey(key)]
	return ok
}

// errorfAt reports a problem with key at the position of another key.
func (v *validator) errorfAt(key, at string, kind error, format string, args ...any) {
	if v.reported(key) {
		return
	}
	p := v.ix.lookup(at)
	v.errs = append(v.errs, &Error{File: v.file, Line: p.line, Col: p.col, Key: key, Err: reasonf(kind, format, args...)})
}

// at returns " (line N)" for a key present in the document, for messages
// that mention a second key.
func (v *validator) at(key string) string {
	if v.ix == nil {
		return ""
	}
	if p, ok := v.ix[pathKey(key)]; ok {
		return fmt.Sprintf(" (line %d)", p.line)
	}
	return ""
}

func (v *validator) enum(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.errorf(key, ErrInvalid, "want one of %s; got %q", strings.Join(allowed, ", "), val)
}

func (v *validator) intRange(key string, n, lo, hi int) {
	if n < lo || n > hi {
		v.errorf(key, ErrInvalid, "want %d..%d, got %d", lo, hi, n)
	}
}

func (v *validator) durRange(key string, d, lo, hi time.Duration) {
	if d < lo || d > hi {
		v.errorf(key, ErrInvalid, "want %v..%v, got %v", lo, hi, d)
	}
}

var accountRE = regexp.MustCompile(`^(?:[0-9]+|[A-Za-z_][A-Za-z0-9_.-]*\$?)$`)

func (v *validator) account(key, s string) {
	if s == "" {
		return
	}
	if len(s) > maxOwnerLen || !accountRE.MatchString(s) {
		v.errorf(key, ErrInvalid, "want a user/group name or a numeric id, got %q", s)
	}
}

// reasonOf is the message of an error from a parser of another package
// without that package's prefix: a *Error already says where the value is.
func reasonOf(err error) string {
	return strings.TrimPrefix(err.Error(), "tlsconn: ")
}

// checkLink validates the tty symlink path.
func checkLink(s string) error {
	switch {
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("path contains a control character: %q", s)
	case len(s) > maxLinkLen:
		return fmt.Errorf("path is longer than %d bytes", maxLinkLen)
	case filepath.IsAbs(s):
		if filepath.Clean(s) != s {
			return fmt.Errorf("want a clean absolute path such as %q, got %q", filepath.Clean(s), s)
		}
		if s == "/" {
			return fmt.Errorf("want a file path such as \"/dev/ttyVSP0\", got %q", s)
		}
	case strings.ContainsRune(s, '/') || s == "." || s == "..":
		return fmt.Errorf("want an absolute path (\"/dev/ttyVSP0\") or a bare name (\"ttyVSP0\") for the default link directory, got %q", s)
	}
	return nil
}
