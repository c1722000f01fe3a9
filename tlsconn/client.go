package tlsconn

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Info describes an established (or probed) link, for logs and status.
type Info struct {
	Addr        string    `json:"addr"`                  // device address as dialed, or the peer address
	TLS         bool      `json:"tls"`                   // false for profile off
	Version     string    `json:"version,omitempty"`     // "TLS 1.0" … "TLS 1.3"
	Cipher      string    `json:"cipher,omitempty"`      // IANA name, e.g. "TLS_RSA_WITH_AES_256_CBC_SHA"
	Resumed     bool      `json:"resumed,omitempty"`     // the TLS session was resumed
	Fingerprint string    `json:"fingerprint,omitempty"` // "sha256:<hex>" of the leaf certificate
	KeyType     string    `json:"key_type,omitempty"`    // "RSA", "ECDSA", "Ed25519"
	KeyBits     int       `json:"key_bits,omitempty"`    // public key size of the leaf certificate
	SigAlg      string    `json:"sig_alg,omitempty"`     // leaf signature algorithm, e.g. "SHA1-RSA"
	Subject     string    `json:"subject,omitempty"`     // leaf subject, RFC 2253 form
	NotAfter    time.Time `json:"not_after,omitzero"`    // leaf expiry
}

// client runs the client side of the link on conn, connected to addr (see
// Dial); it closes conn when it returns an error.
func client(ctx context.Context, conn net.Conn, addr string, cfg Config, log *slog.Logger) (net.Conn, Info, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := cfg.resolve()
	if err != nil {
		conn.Close()
		return nil, Info{Addr: addr}, err
	}
	if r.profile == ProfileOff {
		return conn, Info{Addr: addr}, nil
	}
	v := &verifier{r: r, addr: addr, log: log}
	if err := v.load(); err != nil {
		conn.Close()
		return nil, Info{Addr: addr}, err
	}
	tc := &tls.Config{
		ServerName:         cfg.ServerName,
		InsecureSkipVerify: true, // chain verification is done (or deliberately not done) in VerifyConnection
		VerifyConnection:   v.verify,
		ClientSessionCache: cfg.SessionCache,
	}
	r.profile.apply(tc)
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	t := tls.Client(conn, tc)
	if err := t.HandshakeContext(ctx); err != nil {
		t.Close()
		if v.err != nil {
			return nil, v.info(addr), v.err
		}
		return nil, v.info(addr), handshakeError(ctx, addr, r.profile, r.timeout, err)
	}
	cs := t.ConnectionState()
	info := infoFrom(addr, cs)
	if r.trust == TrustInsecure {
		log.Warn("tlsconn: certificate verification is OFF (insecure); pin this fingerprint instead",
			"addr", addr, "fingerprint", info.Fingerprint)
	}
	if cs.Version < tls.VersionTLS12 || !cipherHasForwardSecrecy(cs.CipherSuite) {
		log.Warn("tlsconn: legacy TLS in use, as this device requires: no forward secrecy"+
			" and older ciphers; keep the device on a network you control",
			"addr", addr, "version", info.Version, "cipher", info.Cipher)
	}
	log.Debug("tlsconn: connected", "addr", addr, "version", info.Version, "cipher", info.Cipher,
		"resumed", info.Resumed, "fingerprint", info.Fingerprint, "key_bits", info.KeyBits)
	return t, info, nil
}

// handshakeError wraps a crypto/tls handshake failure with a hint a user can
// act on.
func handshakeError(ctx context.Context, addr string, p Profile, timeout time.Duration, err error) error {
	msg := err.Error()
	var hint string
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		hint = fmt.Sprintf("; no handshake within %v: is the device busy with another session, or not speaking TLS?", timeout)
	case strings.Contains(msg, "protocol version") || strings.Contains(msg, "unsupported protocol version"):
		if p == ProfileModern {
			hint = "; the device does not speak TLS 1.2+: for an ezTCP-class device (TLS 1.0) use the legacy profile"
		} else {
			hint = "; the device speaks no TLS version from 1.0 to 1.2 (SSL 3.0 is not supported)"
		}
	case strings.Contains(msg, "handshake failure") || strings.Contains(msg, "no cipher suite") ||
		strings.Contains(msg, "insufficient security"):
		if p == ProfileModern {
			hint = "; no common cipher suite: for an ezTCP-class device (TLS_RSA_WITH_AES_256_CBC_SHA) use the legacy profile"
		} else {
			hint = "; no common cipher suite"
		}
	case strings.Contains(msg, "does not look like a TLS handshake") || strings.Contains(msg, "unexpected handshake message of type *tls.clientHelloMsg"):
		hint = "; the device is not speaking TLS: is SSL enabled on the device, or should the profile be off?"
	case strings.Contains(msg, "-bit keys are insecure"):
		return fmt.Errorf("%w: %s: %w", ErrRSAKeyRefused, addr, err)
	}
	return fmt.Errorf("%w with %s (profile %s): %w%s", ErrHandshake, addr, p, err, hint)
}

// verifier holds what VerifyConnection needs; err records the first
// verification failure so Dial can return it unwrapped.
type verifier struct {
	r     resolved
	addr  string
	log   *slog.Logger
	roots *x509.CertPool // trust ca
	err   error
	state *tls.ConnectionState // last state seen by verify
}

// load reads the files the trust mode needs, before the connection is used.
func (v *verifier) load() error {
	if v.r.trust == TrustCA {
		pool, err := loadCAFile(v.r.CAFile)
		if err != nil {
			return err
		}
		v.roots = pool
	}
	return nil
}

func (v *verifier) verify(cs tls.ConnectionState) error {
	v.state = &cs
	err := v.check(cs)
	if err != nil {
		v.err = err
	}
	return err
}

func (v *verifier) check(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w (%s)", ErrNoCertificate, v.addr)
	}
	leaf := cs.PeerCertificates[0]
	got := Fingerprint(leaf)
	switch v.r.trust {
	case TrustPin:
		if got != v.r.pin {
			return &PinMismatchError{Addr: v.addr, Want: v.r.pin, Got: got, Resumed: cs.DidResume}
		}
	case TrustTOFU:
		if err := checkKnownDevice(v.r.KnownDevices, v.knownKey(), got, v.log); err != nil {
			return err
		}
	case TrustCA:
		if err := verifyChain(cs.PeerCertificates, v.roots, v.verifyName()); err != nil {
			return err
		}
	case TrustInsecure:
		// Logged after the handshake.
	default:
		return ErrNoTrust // unreachable: resolve refuses it
	}
	return checkKey(leaf, v.r.profile, v.addr, v.log)
}

// knownKey is the identity under which a device is recorded in the
// known-devices file: the dialed address (host:port).
func (v *verifier) knownKey() string {
	return v.addr
}

// verifyName is the name or IP address a CA-verified certificate must carry.
func (v *verifier) verifyName() string {
	if v.r.ServerName != "" {
		return v.r.ServerName
	}
	if host, _, err := net.SplitHostPort(v.addr); err == nil {
		return host
	}
	return v.addr
}

func (v *verifier) info(addr string) Info {
	if v.state == nil {
		return Info{Addr: addr}
	}
	return infoFrom(addr, *v.state)
}

// weakKey reports an RSA key of bits under the profile's minimum.
func weakKey(addr string, bits int, p Profile) error {
	if min := p.minRSABits(); bits > 0 && bits < min {
		return fmt.Errorf("%w: %s has a %d-bit RSA key; the %s profile requires at least %d bits "+
			"(an ezTCP-class device needs the legacy profile)", ErrWeakKey, addr, bits, p.normalize(), min)
	}
	return nil
}

// checkKey applies the profile's key-size policy to the leaf certificate.
func checkKey(leaf *x509.Certificate, p Profile, addr string, log *slog.Logger) error {
	pub, ok := leaf.PublicKey.(*rsa.PublicKey)
	if !ok {
		return nil
	}
	bits := pub.N.BitLen()
	if err := weakKey(addr, bits, p); err != nil {
		return err
	}
	if bits < 1024 {
		log.Warn("tlsconn: device uses a weak RSA key; regenerate it with `rsa keygen 1024` on the device console if possible",
			"addr", addr, "key_bits", bits)
		// crypto/rsa refuses keys under 1024 bits unless rsa1024min=0; fail
		// here with an explanation instead of deep inside the handshake.
		// The probe is the call crypto/tls makes for the RSA key exchange
		// (key_agreement.go), so it refuses exactly what the handshake would.
		//lint:ignore SA1019 mirrors crypto/tls's RSA key exchange; nothing is encrypted for use
		if _, err := rsa.EncryptPKCS1v15(rand.Reader, pub, []byte{0}); err != nil {
			return fmt.Errorf("%w: %s has a %d-bit RSA key: %w", ErrRSAKeyRefused, addr, bits, err)
		}
	}
	return nil
}

func infoFrom(addr string, cs tls.ConnectionState) Info {
	info := Info{
		Addr:    addr,
		TLS:     true,
		Version: tls.VersionName(cs.Version),
		Cipher:  tls.CipherSuiteName(cs.CipherSuite),
		Resumed: cs.DidResume,
	}
	if len(cs.PeerCertificates) > 0 {
		leaf := cs.PeerCertificates[0]
		info.Fingerprint = Fingerprint(leaf)
		info.KeyType, info.KeyBits = keyInfo(leaf)
		info.SigAlg = leaf.SignatureAlgorithm.String()
		info.Subject = leaf.Subject.String()
		info.NotAfter = leaf.NotAfter
	}
	return info
}

func keyInfo(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return c.PublicKeyAlgorithm.String(), 0
}

// cipherHasForwardSecrecy reports whether suite uses an ephemeral key
// exchange (every TLS 1.3 suite and the ECDHE suites of TLS 1.2).
func cipherHasForwardSecrecy(suite uint16) bool {
	for _, c := range tls.CipherSuites() {
		if c.ID == suite {
			return !strings.HasPrefix(c.Name, "TLS_RSA_")
		}
	}
	// Insecure suites (tls.InsecureCipherSuites) are all RSA key exchange
	// or otherwise weak.
	for _, c := range tls.InsecureCipherSuites() {
		if c.ID == suite {
			return false
		}
	}
	return true
}
