package tlsconn

import (
	"crypto/tls"
	"fmt"
)

// Profile selects how the link to a device is protected.
type Profile string

// Profiles. The zero value "" means [ProfileModern].
const (
	// ProfileOff is plain TCP: no TLS at all.
	ProfileOff Profile = "off"
	// ProfileLegacy speaks TLS 1.0 to 1.2 and offers
	// TLS_RSA_WITH_AES_256_CBC_SHA, the only suite of ezTCP-class devices;
	// it accepts 512- and 768-bit RSA keys with a warning.
	ProfileLegacy Profile = "legacy"
	// ProfileModern speaks TLS 1.2 and 1.3 with Go's default cipher suites
	// and refuses RSA keys under 2048 bits.
	ProfileModern Profile = "modern"
)

// ParseProfile parses a profile name: "off", "legacy" or "modern", spelt
// exactly so (the empty string yields [ProfileModern]). It is vsp's one
// parser of a TLS profile: port files (service/config), the --tls flags and
// the daemon all go through it, so each accepts the same names with the
// same error.
func ParseProfile(s string) (Profile, error) {
	switch Profile(s) {
	case "", ProfileModern:
		return ProfileModern, nil
	case ProfileLegacy, ProfileOff:
		return Profile(s), nil
	}
	return "", fmt.Errorf("%w %q: want off, legacy or modern", ErrInvalidProfile, s)
}

// String returns the profile name; the zero value prints as "modern".
func (p Profile) String() string {
	if p == "" {
		return string(ProfileModern)
	}
	return string(p)
}

// normalize maps "" to modern; it does not validate.
func (p Profile) normalize() Profile {
	if p == "" {
		return ProfileModern
	}
	return p
}

// legacyCipherSuites are offered by the legacy profile. Go's client ignores
// the order of Config.CipherSuites and picks by its own preference among what
// the server accepts; an ezTCP accepts only TLS_RSA_WITH_AES_256_CBC_SHA.
var legacyCipherSuites = []uint16{
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
}

// minRSABits is the smallest RSA key a profile accepts without error.
func (p Profile) minRSABits() int {
	if p.normalize() == ProfileModern {
		return 2048
	}
	return 512
}

// apply sets the version and cipher fields of tc for the profile.
func (p Profile) apply(tc *tls.Config) {
	switch p.normalize() {
	case ProfileLegacy:
		tc.MinVersion = tls.VersionTLS10
		tc.MaxVersion = tls.VersionTLS12
		tc.CipherSuites = append([]uint16(nil), legacyCipherSuites...)
	default:
		tc.MinVersion = tls.VersionTLS12
	}
}
