package device

import "errors"

// Sentinel errors. Callers test them with errors.Is; every error the package
// returns is prefixed "device: " and wraps one of these or a *LimitError where
// a caller needs to tell the cases apart.
var (
	// ErrClosed is returned by Start after Close, and by operations on a
	// closed device.
	ErrClosed = errors.New("device: closed")
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("device: already started")
	// ErrFlashCorrupt reports a flash file that exists but cannot be decoded;
	// the device falls back to factory defaults and leaves the file alone.
	ErrFlashCorrupt = errors.New("device: flash file corrupt")
	// ErrModeUnsupported reports a communication mode the simulator does not
	// know (all of T2S, COD, ATC and U2S are implemented).
	ErrModeUnsupported = errors.New("device: communication mode not implemented")
	// ErrNoKey reports an operation that needs the RSA key before one exists.
	ErrNoKey = errors.New("device: no RSA key")
	// ErrNoCert reports an operation that needs the host certificate before
	// one exists.
	ErrNoCert = errors.New("device: no host certificate")
	// ErrSaveCode reports "ssl save" with a code other than aa55cc33.
	ErrSaveCode = errors.New("device: wrong save code")
	// ErrInvalid reports a malformed setting value (not a model limit).
	ErrInvalid = errors.New("device: invalid setting")
	// ErrNoSuchPort reports a port name the model does not have.
	ErrNoSuchPort = errors.New("device: no such port")
)

// LimitError reports a setting refused because of a product limit, such as
// the 115,200 bps ceiling with SSL on. Rule is a stable identifier (see the
// Rule* constants); the running configuration is left unchanged.
type LimitError struct {
	Rule   string // one of the Rule* constants
	Detail string // human-readable explanation naming the rule
}

func (e *LimitError) Error() string {
	return "device: " + e.Detail + " (rule " + e.Rule + ")"
}

// Rules reported in LimitError.Rule.
const (
	RuleSSLMaxBaud         = "ssl-max-baud"         // SSL on: serial speed at most 115200 bps
	RuleSSLCOM2            = "ssl-com2"             // SSL on: COM2 disabled (CSE-M32, CSE-H20, CSE-H21)
	RuleSSLMultiMonitoring = "ssl-multi-monitoring" // SSL on: Multi Monitoring disabled (CSE-M73, CSE-H25)
	RuleSSLRFC2217         = "ssl-rfc2217"          // SSL on: Telnet COM Port Control (RFC 2217) unavailable
	RuleSSLSSH             = "ssl-ssh"              // SSL on: SSH unavailable
	RuleSSLU2S             = "ssl-u2s"              // SSL cannot be used in U2S (UDP) mode
	RuleModelPorts         = "model-ports"          // the model has no such serial port
	RuleModelFeature       = "model-feature"        // the model lacks the feature (Multi Monitoring)
	RuleBaud               = "baud"                 // baud rate not offered
	RuleKeyBits            = "key-bits"             // RSA key length must be 512, 768 or 1024
	RuleEventByte          = "event-byte"           // Event Byte out of range
)
