package tlsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"time"
)

// Probe connects to addr without trusting it and returns the device's leaf
// certificate and what was negotiated, for `vsp trust HOST:PORT`. It
// completes the TLS handshake with the given profile (so a success also
// proves the profile works with the device) and closes the link; it never
// sends application data. The profile's key-size policy is applied as
// Dial applies it: a key the profile refuses is an ErrWeakKey error.
//
// If the handshake fails after the certificate was received (for example
// because this program refuses the device's 512-bit key), or the key is
// too weak for the profile, Probe returns the certificate and Info
// together with the error. timeout 0 means 5 s.
func Probe(ctx context.Context, addr string, profile Profile, timeout time.Duration) (*x509.Certificate, Info, error) {
	p, err := ParseProfile(string(profile))
	if err != nil {
		return nil, Info{Addr: addr}, err
	}
	if p == ProfileOff {
		return nil, Info{Addr: addr}, fmt.Errorf("%w: nothing to probe with profile off (plain TCP has no certificate)", ErrInvalidConfig)
	}
	ctx, cancel := context.WithTimeout(ctx, timeoutOr(timeout, DefaultDialTimeout))
	defer cancel()
	conn, err := dialTCP(ctx, addr, KeepAlive{})
	if err != nil {
		return nil, Info{Addr: addr}, err
	}
	var seen *tls.ConnectionState
	tc := &tls.Config{
		InsecureSkipVerify: true, // probing: the caller shows the fingerprint to a human
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen = &cs
			return nil
		},
	}
	p.apply(tc)
	t := tls.Client(conn, tc)
	defer t.Close()
	if err := t.HandshakeContext(ctx); err != nil {
		err = handshakeError(ctx, addr, p, timeoutOr(timeout, DefaultDialTimeout), err)
		if seen == nil || len(seen.PeerCertificates) == 0 {
			return nil, Info{Addr: addr}, err
		}
		return seen.PeerCertificates[0], infoFrom(addr, *seen), err
	}
	cs := t.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return nil, infoFrom(addr, cs), fmt.Errorf("%w (%s)", ErrNoCertificate, addr)
	}
	info := infoFrom(addr, cs)
	return cs.PeerCertificates[0], info, weakKey(addr, info.KeyBits, p)
}
