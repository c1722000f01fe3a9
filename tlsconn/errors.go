package tlsconn

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Test for them with [errors.Is]; every error returned by
// this package that matches one of them wraps it with more context.
var (
	// ErrNoTrust is returned by [Config.Validate] and [Dial]
	// (before any byte is sent) when a TLS profile is selected but no way to
	// trust the device's certificate is configured.
	ErrNoTrust = errors.New("tlsconn: no certificate trust configured (a pin, trust on first use, a CA bundle, or insecure)")

	// ErrInvalidPin reports a malformed certificate pin.
	ErrInvalidPin = errors.New("tlsconn: invalid pin")

	// ErrInvalidProfile reports an unknown TLS profile name.
	ErrInvalidProfile = errors.New("tlsconn: invalid TLS profile")

	// ErrInvalidConfig reports a contradictory or out-of-range Config field.
	ErrInvalidConfig = errors.New("tlsconn: invalid configuration")

	// ErrWeakKey is returned when the device's key is below the minimum of
	// the selected profile (modern: RSA 2048 bits).
	ErrWeakKey = errors.New("tlsconn: device key too weak for profile")

	// ErrRSAKeyRefused is returned when the device has an RSA key under
	// 1024 bits and the running program does not allow such keys: Go 1.24+
	// needs `//go:debug rsa1024min=0` in the main package (or
	// GODEBUG=rsa1024min=0) to talk to 512/768-bit ezTCP keys.
	ErrRSAKeyRefused = errors.New("tlsconn: RSA keys under 1024 bits are disabled in this program " +
		"(build with //go:debug rsa1024min=0 or run with GODEBUG=rsa1024min=0)")

	// ErrNoCertificate is returned when a TLS peer presents no certificate.
	ErrNoCertificate = errors.New("tlsconn: peer presented no certificate")

	// ErrHandshake wraps TLS handshake failures that are not verification
	// failures (protocol version, cipher suite, timeout, peer not speaking
	// TLS).
	ErrHandshake = errors.New("tlsconn: TLS handshake failed")

	// ErrUntrustedCert is returned when the chain of a device certificate
	// does not verify against the configured CA bundle (trust mode "ca").
	ErrUntrustedCert = errors.New("tlsconn: certificate not trusted by CA bundle")
)

// PinMismatchError is returned when the device's certificate does not match
// the configured pin. The connection is refused before any application data
// is sent, for full and resumed handshakes alike.
type PinMismatchError struct {
	Addr    string // device address as dialed (or the peer address)
	Want    string // configured pin, "sha256:<hex>"
	Got     string // fingerprint of the certificate presented, "sha256:<hex>"
	Resumed bool   // the refused handshake was a session resumption
}

func (e *PinMismatchError) Error() string {
	s := fmt.Sprintf("tlsconn: certificate of %s does not match the pin: want %s, got %s", e.Addr, e.Want, e.Got)
	if e.Resumed {
		s += " (resumed session)"
	}
	return s + "; refused before sending any data"
}

// CertChangedError is returned in trust-on-first-use mode when a device
// presents a certificate other than the one recorded when it was first seen.
type CertChangedError struct {
	Addr      string    // device key in the known-devices file
	Old       string    // recorded fingerprint
	New       string    // fingerprint presented now
	FirstSeen time.Time // when Old was recorded
	File      string    // known-devices file
}

func (e *CertChangedError) Error() string {
	return fmt.Sprintf("tlsconn: certificate changed for %s: old %s (first seen %s, recorded in %s), new %s; refused before sending any data",
		e.Addr, e.Old, e.FirstSeen.UTC().Format(time.RFC3339), e.File, e.New)
}
