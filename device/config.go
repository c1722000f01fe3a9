package device

import (
	"crypto/rsa"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config describes one simulated device. The zero value is a CSE-H25 with
// factory defaults (IP 10.1.0.1, T2S on :1470, echo serial line, no SSL,
// console off, no flash file). New copies and validates it.
type Config struct {
	Model    string // CSE-H25 (default), CSE-M73, CSE-M32, CSE-H20, CSE-H21
	Firmware string // firmware version shown in status, default "2.0 Rev.A"; before 2.0 an unset password is not asked
	MAC      string // default 00:30:f9:00:00:01
	IP       string // device IP, shown in status and put in the certificate CN; default 10.1.0.1
	Mask     string // default 255.0.0.0
	Gateway  string // default 0.0.0.0
	DNS      string // default 0.0.0.0

	Mode   string // communication mode: T2S (default), COD, ATC or U2S
	Listen string // COM1 local address (T2S/ATC listen, U2S bind), default ":1470"; "127.0.0.1:0" picks a free port
	Peer   string // COD/ATC/U2S peer address host:port; U2S "0.0.0.0:0" = reply to the last sender

	ByteCount      int           // COD: connect when this many serial bytes arrived (0 = at once, earlier data discarded)
	GuardTime      int           // COD: group serial bytes until this many 10 ms units of silence (0 = send at once)
	DataFrame      int           // U2S: a datagram ends after this many 10 ms units of serial silence (0 = 1 unit)
	ReconnectDelay time.Duration // COD: wait after a dropped or failed connection before the next one; default 10s (simulator-configurable)
	ServerTLS      string        // T2S/ATA TLS server profile: "any" (default: TLS 1.0 AES256-SHA like the device, and newer versions when the client asks) or "device" (TLS 1.0 and RSA_AES_256_CBC_SHA only, exactly as the real device)
	ClientTLS      string        // COD TLS client profile: "device" (default: TLS 1.0 only, RSA_AES_256_CBC_SHA) or "modern" (TLS 1.2+)

	Serial string // COM1 backend: "echo" (default), "pty:PATH", or a serial device path
	Line   Serial // COM1 serial settings; zero fields take the defaults (19200 8N1, no flow control)
	COM2   *PortConfig

	SSL     bool
	KeyBits int             // 512, 768 or 1024 (default); used when flash holds no key
	Key     *rsa.PrivateKey // optional key used instead of generating one (shared keys for scale tests)

	SecondClient    string        // "refuse" (default): a second TCP client is closed at once; "replace": it replaces the first
	Timeout         time.Duration // T2S timeout: close a session idle that long; 0 = never (whole seconds on the device)
	EventByte       int           // T2S: 0 = drop serial data received while disconnected; N>0 = buffer up to N bytes and send on connect
	SendMAC         bool          // send the MAC as 12 hex digits + CR LF right after a connection is made
	KeepAlive       time.Duration // device keep-alive interval used when Timeout is 0; default 10s, negative = off
	KeepAliveProbes int           // unanswered keep-alive probes before the session is dropped; default 4
	Pacing          bool          // pace serial bytes at the configured baud rate (and TX interval)
	MultiMonitoring bool
	RFC2217         bool
	SSH             bool

	Console    string        // telnet console address such as ":23"; "" or "off" = no console
	Password   string        // console password; "" = none set (firmware 2.0A and later still ask for "sollae")
	LoginDelay time.Duration // delay imposed after 3 wrong passwords; default 5s
	Flash      string        // flash file path; "" = in-memory flash only
}

// PortConfig describes COM2 on the two-port models.
type PortConfig struct {
	Listen string // default: COM1's port + 1
	Serial string // backend, default "echo"
	Line   Serial
}

// Serial holds the settings of one serial port.
type Serial struct {
	Baud       int    `json:"baud"`        // one of Bauds; default 19200
	DataBits   int    `json:"data_bits"`   // 7 or 8; default 8
	Parity     string `json:"parity"`      // none, even, odd; default none
	StopBits   int    `json:"stop_bits"`   // 1 or 2; default 1
	Flow       string `json:"flow"`        // none, rtscts, xonxoff; default none
	DTRDSR     bool   `json:"dtr_dsr"`     // DTR/DSR handshake
	TXInterval int    `json:"tx_interval"` // delay between bytes sent to the serial line, in milliseconds
}

// Bauds lists the serial speeds the simulated products offer.
var Bauds = []int{1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600}

// SSLMaxBaud is the highest serial speed allowed with SSL on.
const SSLMaxBaud = 115200

// withDefaults fills zero fields.
func (s Serial) withDefaults() Serial {
	if s.Baud == 0 {
		s.Baud = 19200
	}
	if s.DataBits == 0 {
		s.DataBits = 8
	}
	if s.Parity == "" {
		s.Parity = "none"
	}
	if s.StopBits == 0 {
		s.StopBits = 1
	}
	if s.Flow == "" {
		s.Flow = "none"
	}
	s.Parity = strings.ToLower(s.Parity)
	s.Flow = strings.ToLower(s.Flow)
	return s
}

// check validates the values themselves (not the model limits).
func (s Serial) check() error {
	if !slices.Contains(Bauds, s.Baud) {
		return &LimitError{Rule: RuleBaud, Detail: fmt.Sprintf("baud rate %d not offered (one of %v)", s.Baud, Bauds)}
	}
	if s.DataBits != 7 && s.DataBits != 8 {
		return fmt.Errorf("%w: data bits %d (7 or 8)", ErrInvalid, s.DataBits)
	}
	if !slices.Contains([]string{"none", "even", "odd"}, s.Parity) {
		return fmt.Errorf("%w: parity %q (none, even, odd)", ErrInvalid, s.Parity)
	}
	if s.StopBits != 1 && s.StopBits != 2 {
		return fmt.Errorf("%w: stop bits %d (1 or 2)", ErrInvalid, s.StopBits)
	}
	if !slices.Contains([]string{"none", "rtscts", "xonxoff"}, s.Flow) {
		return fmt.Errorf("%w: flow control %q (none, rtscts, xonxoff)", ErrInvalid, s.Flow)
	}
	if s.TXInterval < 0 || s.TXInterval > 255 {
		return fmt.Errorf("%w: TX interval %d ms (0..255)", ErrInvalid, s.TXInterval)
	}
	return nil
}

// String renders the settings like "115200 8N1 none".
func (s Serial) String() string {
	p := "N"
	switch s.Parity {
	case "even":
		p = "E"
	case "odd":
		p = "O"
	}
	out := fmt.Sprintf("%d %d%s%d flow=%s", s.Baud, s.DataBits, p, s.StopBits, s.Flow)
	if s.DTRDSR {
		out += " dtr/dsr"
	}
	if s.TXInterval > 0 {
		out += fmt.Sprintf(" txi=%dms", s.TXInterval)
	}
	return out
}

// bitsPerChar is the number of bit times one character occupies on the line.
func (s Serial) bitsPerChar() int {
	n := 1 + s.DataBits + s.StopBits
	if s.Parity != "none" {
		n++
	}
	return n
}

// model describes one product.
type model struct {
	name            string
	ports           int
	multiMonitoring bool // has the Multi Monitoring feature
}

var models = []model{
	{name: "CSE-M32", ports: 2},
	{name: "CSE-H20", ports: 2},
	{name: "CSE-H21", ports: 2},
	{name: "CSE-M73", ports: 1, multiMonitoring: true},
	{name: "CSE-H25", ports: 1, multiMonitoring: true},
}

func lookupModel(name string) (model, bool) {
	for _, m := range models {
		if strings.EqualFold(m.name, name) {
			return m, true
		}
	}
	return model{}, false
}

// Models returns the names of the simulated products.
func Models() []string {
	out := make([]string, len(models))
	for i, m := range models {
		out[i] = m.name
	}
	return out
}

// Communication modes.
var modeNames = []string{"T2S", "COD", "ATC", "U2S"}

// settings is the persistent device configuration: what flash holds and the
// console edits.
type settings struct {
	IP              string   `json:"ip"`
	Mask            string   `json:"mask"`
	Gateway         string   `json:"gateway"`
	DNS             string   `json:"dns"`
	Mode            string   `json:"mode"`
	SSL             bool     `json:"ssl"`
	KeyBits         int      `json:"key_bits"`
	Peer            string   `json:"peer,omitempty"`
	ByteCount       int      `json:"byte_count,omitempty"`
	GuardTime       int      `json:"guard_time,omitempty"`
	DataFrame       int      `json:"data_frame,omitempty"`
	SecondClient    string   `json:"second_client"`
	TimeoutSec      int      `json:"timeout"`
	EventByte       int      `json:"event_byte"`
	SendMAC         bool     `json:"send_mac"`
	MultiMonitoring bool     `json:"multi_monitoring"`
	RFC2217         bool     `json:"rfc2217"`
	SSH             bool     `json:"ssh"`
	Password        string   `json:"password"`
	COM2            bool     `json:"com2"`
	Lines           []Serial `json:"serial"`
}

func (s settings) clone() settings {
	s.Lines = slices.Clone(s.Lines)
	return s
}

// settingsFromConfig derives the settings from a defaulted Config.
func settingsFromConfig(c *Config) settings {
	s := settings{
		IP: c.IP, Mask: c.Mask, Gateway: c.Gateway, DNS: c.DNS,
		Mode: c.Mode, SSL: c.SSL, KeyBits: c.KeyBits, SecondClient: c.SecondClient,
		Peer: c.Peer, ByteCount: c.ByteCount, GuardTime: c.GuardTime, DataFrame: c.DataFrame,
		TimeoutSec: int(c.Timeout / time.Second), EventByte: c.EventByte, SendMAC: c.SendMAC,
		MultiMonitoring: c.MultiMonitoring, RFC2217: c.RFC2217, SSH: c.SSH,
		Password: c.Password, COM2: c.COM2 != nil,
		Lines: []Serial{c.Line.withDefaults()},
	}
	if c.COM2 != nil {
		s.Lines = append(s.Lines, c.COM2.Line.withDefaults())
	}
	return s
}

// applyToConfig writes s back into c (used by ApplyFlashSettings).
func (s settings) applyToConfig(c *Config) {
	c.IP, c.Mask, c.Gateway, c.DNS = s.IP, s.Mask, s.Gateway, s.DNS
	c.Mode, c.SSL, c.KeyBits, c.SecondClient = s.Mode, s.SSL, s.KeyBits, s.SecondClient
	c.Peer, c.ByteCount, c.GuardTime, c.DataFrame = s.Peer, s.ByteCount, s.GuardTime, s.DataFrame
	c.Timeout = time.Duration(s.TimeoutSec) * time.Second
	c.EventByte, c.SendMAC = s.EventByte, s.SendMAC
	c.MultiMonitoring, c.RFC2217, c.SSH = s.MultiMonitoring, s.RFC2217, s.SSH
	c.Password = s.Password
	if len(s.Lines) > 0 {
		c.Line = s.Lines[0]
	}
	if s.COM2 {
		if c.COM2 == nil {
			c.COM2 = &PortConfig{}
		}
		if len(s.Lines) > 1 {
			c.COM2.Line = s.Lines[1]
		}
	} else {
		c.COM2 = nil
	}
}

// normalize fills zero settings with defaults.
func (s *settings) normalize() {
	if s.IP == "" {
		s.IP = "10.1.0.1"
	}
	if s.Mask == "" {
		s.Mask = "255.0.0.0"
	}
	if s.Gateway == "" {
		s.Gateway = "0.0.0.0"
	}
	if s.DNS == "" {
		s.DNS = "0.0.0.0"
	}
	if s.Mode == "" {
		s.Mode = "T2S"
	}
	s.Mode = strings.ToUpper(s.Mode)
	if s.KeyBits == 0 {
		s.KeyBits = 1024
	}
	if s.SecondClient == "" {
		s.SecondClient = "refuse"
	}
	if len(s.Lines) == 0 {
		s.Lines = []Serial{{}}
	}
	if s.COM2 && len(s.Lines) < 2 {
		s.Lines = append(s.Lines, Serial{})
	}
	for i := range s.Lines {
		s.Lines[i] = s.Lines[i].withDefaults()
	}
}

// validate checks s against the value ranges and the limits of m. The first
// violation is returned, as a *LimitError when a product limit is the cause.
func (s *settings) validate(m model) error {
	for _, a := range []struct{ name, v string }{{"ip", s.IP}, {"mask", s.Mask}, {"gateway", s.Gateway}, {"dns", s.DNS}} {
		if ip := net.ParseIP(a.v); ip == nil || ip.To4() == nil {
			return fmt.Errorf("%w: %s %q is not an IPv4 address", ErrInvalid, a.name, a.v)
		}
	}
	if !slices.Contains(modeNames, s.Mode) {
		return fmt.Errorf("%w: mode %q (T2S, COD, ATC, U2S)", ErrInvalid, s.Mode)
	}
	if s.KeyBits != 512 && s.KeyBits != 768 && s.KeyBits != 1024 {
		return &LimitError{Rule: RuleKeyBits, Detail: fmt.Sprintf("RSA key length %d not supported (512, 768 or 1024)", s.KeyBits)}
	}
	if s.SecondClient != "refuse" && s.SecondClient != "replace" {
		return fmt.Errorf("%w: second-client policy %q (refuse or replace)", ErrInvalid, s.SecondClient)
	}
	if s.TimeoutSec < 0 || s.TimeoutSec > 65535 {
		return fmt.Errorf("%w: timeout %d s (0..65535)", ErrInvalid, s.TimeoutSec)
	}
	if s.EventByte < 0 || s.EventByte > 1024 {
		return &LimitError{Rule: RuleEventByte, Detail: fmt.Sprintf("event byte %d out of range 0..1024 (512 or less recommended)", s.EventByte)}
	}
	if s.Peer != "" {
		if err := checkPeer(s.Peer); err != nil {
			return err
		}
	}
	if s.Mode == "COD" && (s.Peer == "" || peerUnset(s.Peer)) {
		return fmt.Errorf("%w: COD (TCP client) mode needs a peer address host:port", ErrInvalid)
	}
	if s.ByteCount < 0 || s.ByteCount > 65535 {
		return fmt.Errorf("%w: byte count %d (0..65535)", ErrInvalid, s.ByteCount)
	}
	if s.GuardTime < 0 || s.GuardTime > 65535 {
		return fmt.Errorf("%w: guard time %d (0..65535, 10 ms units)", ErrInvalid, s.GuardTime)
	}
	if s.DataFrame < 0 || s.DataFrame > 65535 {
		return fmt.Errorf("%w: data frame %d (0..65535, 10 ms units)", ErrInvalid, s.DataFrame)
	}
	if s.COM2 && m.ports < 2 {
		return &LimitError{Rule: RuleModelPorts, Detail: m.name + " has no COM2"}
	}
	if s.MultiMonitoring && !m.multiMonitoring {
		return &LimitError{Rule: RuleModelFeature, Detail: m.name + " has no Multi Monitoring feature"}
	}
	for i, l := range s.Lines {
		if err := l.check(); err != nil {
			return fmt.Errorf("COM%d: %w", i+1, err)
		}
	}
	if !s.SSL {
		return nil
	}
	for i, l := range s.Lines {
		if i == 1 && !s.COM2 {
			continue
		}
		if l.Baud > SSLMaxBaud {
			return &LimitError{Rule: RuleSSLMaxBaud, Detail: fmt.Sprintf("COM%d: serial speed %d bps exceeds the %d bps maximum with SSL on", i+1, l.Baud, SSLMaxBaud)}
		}
	}
	switch {
	case s.COM2:
		return &LimitError{Rule: RuleSSLCOM2, Detail: "COM2 is disabled on " + m.name + " with SSL on"}
	case s.MultiMonitoring:
		return &LimitError{Rule: RuleSSLMultiMonitoring, Detail: "Multi Monitoring is disabled with SSL on"}
	case s.RFC2217:
		return &LimitError{Rule: RuleSSLRFC2217, Detail: "Telnet COM Port Control (RFC 2217) is unavailable with SSL on"}
	case s.SSH:
		return &LimitError{Rule: RuleSSLSSH, Detail: "SSH is unavailable with SSL on"}
	case s.Mode == "U2S":
		return &LimitError{Rule: RuleSSLU2S, Detail: "SSL cannot be used in U2S (UDP) mode"}
	}
	return nil
}

// checkPeer validates a peer address host:port.
func checkPeer(peer string) error {
	host, port, err := net.SplitHostPort(peer)
	if err != nil || host == "" {
		return fmt.Errorf("%w: peer %q is not host:port", ErrInvalid, peer)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%w: peer %q: port out of range", ErrInvalid, peer)
	}
	return nil
}

// peerUnset reports the "no peer" address 0.0.0.0:0.
func peerUnset(peer string) bool {
	host, port, err := net.SplitHostPort(peer)
	return err == nil && (host == "0.0.0.0" || host == "::") && port == "0"
}

// withDefaults returns a copy of c with the environment defaults filled in.
func (c Config) withDefaults() Config {
	if c.Model == "" {
		c.Model = "CSE-H25"
	}
	if m, ok := lookupModel(c.Model); ok {
		c.Model = m.name
	}
	if c.Firmware == "" {
		c.Firmware = "2.0 Rev.A"
	}
	if c.MAC == "" {
		c.MAC = "00:30:f9:00:00:01"
	}
	if c.Listen == "" {
		c.Listen = ":1470"
	}
	if c.Serial == "" {
		c.Serial = "echo"
	}
	if c.Console == "off" {
		c.Console = ""
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 10 * time.Second
	}
	if c.KeepAliveProbes == 0 {
		c.KeepAliveProbes = 4
	}
	if c.ReconnectDelay == 0 {
		c.ReconnectDelay = 10 * time.Second
	}
	if c.ServerTLS == "" {
		c.ServerTLS = "any"
	}
	if c.ClientTLS == "" {
		c.ClientTLS = "device"
	}
	if c.LoginDelay == 0 {
		c.LoginDelay = 5 * time.Second
	}
	if c.COM2 != nil {
		p := *c.COM2
		if p.Serial == "" {
			p.Serial = "echo"
		}
		if p.Listen == "" {
			p.Listen = nextPort(c.Listen)
		}
		c.COM2 = &p
	}
	return c
}

// nextPort returns addr with its port incremented (port 0 stays 0).
func nextPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(n+1))
}

// parseMAC validates a MAC address and returns it in canonical form.
func parseMAC(s string) (net.HardwareAddr, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("%w: MAC address %q", ErrInvalid, s)
	}
	return hw, nil
}

// firmwareAtLeast2 reports whether the firmware version is 2.0 or later.
func firmwareAtLeast2(v string) bool {
	f, _, _ := strings.Cut(strings.TrimSpace(v), " ")
	major, _, _ := strings.Cut(f, ".")
	n, err := strconv.Atoi(major)
	return err != nil || n >= 2
}
