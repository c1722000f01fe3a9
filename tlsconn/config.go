package tlsconn

import (
	"crypto/tls"
	"fmt"
	"time"
)

// Defaults applied to zero Config and KeepAlive fields.
const (
	DefaultDialTimeout  = 5 * time.Second
	DefaultKeepIdle     = 3 * time.Second
	DefaultKeepInterval = 2 * time.Second
	DefaultKeepCount    = 3
	DefaultUserTimeout  = 9 * time.Second
)

// KeepAlive tunes TCP keep-alive and TCP_USER_TIMEOUT on dialed links. The
// zero value detects a silently dead path within 10 s: probes start after
// 3 s idle, every 2 s, 3 unanswered probes drop the link (3 + 3×2 = 9 s),
// and unacknowledged written data drops it after 9 s (TCP_USER_TIMEOUT,
// Linux only; Linux then also applies it to keep-alive: an idle link is
// dropped at the first probe timer 9 s or more after the last answer).
type KeepAlive struct {
	// Idle before the first probe; 0 = 3 s; negative turns keep-alive off.
	Idle time.Duration
	// Interval between probes; 0 = 2 s; negative = system default.
	Interval time.Duration
	// Count of unanswered probes before the link is dropped; 0 = 3;
	// negative = system default.
	Count int
	// UserTimeout is TCP_USER_TIMEOUT: how long written data may stay
	// unacknowledged before the link is dropped; 0 = 9 s; negative = leave
	// the system default. Linux only; ignored elsewhere.
	UserTimeout time.Duration
}

// withDefaults returns k with zero fields replaced by the defaults.
func (k KeepAlive) withDefaults() KeepAlive {
	if k.Idle == 0 {
		k.Idle = DefaultKeepIdle
	}
	if k.Interval == 0 {
		k.Interval = DefaultKeepInterval
	}
	if k.Count == 0 {
		k.Count = DefaultKeepCount
	}
	if k.UserTimeout == 0 {
		k.UserTimeout = DefaultUserTimeout
	}
	return k
}

// Trust modes for [Config.Trust].
const (
	TrustPin      = "pin"      // the leaf certificate must match Config.Pin
	TrustTOFU     = "tofu"     // trust on first use, recorded in Config.KnownDevices
	TrustCA       = "ca"       // chain verified against Config.CAFile and the device's name or IP
	TrustInsecure = "insecure" // no verification at all (logged on every connect)
)

// Config configures the client side of a device link. The zero value is the
// modern profile with default timeouts; it is not usable until a trust
// source (Pin, Trust or InsecureSkipVerify) is set. Config is passed by
// value, so callers may reuse and modify theirs freely.
type Config struct {
	// Profile selects plain TCP, legacy TLS (ezTCP) or modern TLS.
	Profile Profile

	// Pin is the device certificate's SHA-256 fingerprint,
	// "sha256:<64 hex>" (see [ParsePin] for accepted spellings). With a
	// pin, no chain or name verification is done: that is what makes
	// self-signed SHA-1 device certificates usable.
	Pin string

	// InsecureSkipVerify accepts any certificate. It logs a warning on
	// every connect. For experiments only.
	InsecureSkipVerify bool

	// Trust selects the trust mode explicitly: "pin", "tofu", "ca" or
	// "insecure". Empty means "pin" if Pin is set, else "insecure" if
	// InsecureSkipVerify is set.
	Trust string

	// KnownDevices is the known-devices file for trust mode "tofu"
	// (one device per line, like SSH known_hosts).
	KnownDevices string

	// CAFile is a PEM bundle of CA certificates for trust mode "ca".
	CAFile string

	// ServerName is sent as SNI and, in trust mode "ca", is the name the
	// certificate must match (default: the host part of the dialed
	// address). Optional.
	ServerName string

	// DialTimeout bounds the TCP connect and the TLS handshake together;
	// 0 = 5 s.
	DialTimeout time.Duration

	// KeepAlive tunes TCP keep-alive for [Dial].
	KeepAlive KeepAlive

	// SessionCache enables TLS session resumption when non-nil (share one
	// per device, e.g. tls.NewLRUClientSessionCache(1)). The pin is checked
	// again on resumed sessions.
	SessionCache tls.ClientSessionCache
}

// Validate reports whether c is usable, without touching the network. It
// returns [ErrNoTrust] when a TLS profile has no trust source.
func (c Config) Validate() error {
	_, err := c.resolve()
	return err
}

// resolved is a validated Config with defaults applied.
type resolved struct {
	Config
	profile Profile
	trust   string // "" for profile off
	pin     string // normalised
	timeout time.Duration
}

func (c Config) resolve() (resolved, error) {
	r := resolved{Config: c}
	p, err := ParseProfile(string(c.Profile))
	if err != nil {
		return r, err
	}
	r.profile = p
	if c.DialTimeout < 0 {
		return r, fmt.Errorf("%w: negative DialTimeout %v", ErrInvalidConfig, c.DialTimeout)
	}
	r.timeout = c.DialTimeout
	if r.timeout == 0 {
		r.timeout = DefaultDialTimeout
	}
	if c.Pin != "" {
		if r.pin, err = ParsePin(c.Pin); err != nil {
			return r, err
		}
	}
	trust := c.Trust // exact names, as config (the port file and the flags) spells them
	if p == ProfileOff {
		if trust != "" || c.Pin != "" || c.InsecureSkipVerify || c.KnownDevices != "" || c.CAFile != "" {
			return r, fmt.Errorf("%w: certificate trust settings given but the TLS profile is off (plain TCP)", ErrInvalidConfig)
		}
		return r, nil
	}
	if trust == "" {
		switch {
		case c.Pin != "" && c.InsecureSkipVerify:
			return r, fmt.Errorf("%w: both a pin and InsecureSkipVerify are set; choose one", ErrInvalidConfig)
		case c.Pin != "":
			trust = TrustPin
		case c.InsecureSkipVerify:
			trust = TrustInsecure
		default:
			return r, ErrNoTrust
		}
	}
	switch trust {
	case TrustPin:
		if c.Pin == "" {
			return r, ErrNoTrust
		}
	case TrustInsecure:
	case TrustTOFU:
		if c.KnownDevices == "" {
			return r, fmt.Errorf("%w: trust mode tofu needs a known-devices file", ErrInvalidConfig)
		}
	case TrustCA:
		if c.CAFile == "" {
			return r, fmt.Errorf("%w: trust mode ca needs a CA bundle file", ErrInvalidConfig)
		}
	default:
		return r, fmt.Errorf("%w: unknown trust mode %q: want pin, tofu, ca or insecure", ErrInvalidConfig, c.Trust)
	}
	if trust != TrustPin && c.Pin != "" {
		return r, fmt.Errorf("%w: a pin is set but the trust mode is %s", ErrInvalidConfig, trust)
	}
	if trust != TrustInsecure && c.InsecureSkipVerify {
		return r, fmt.Errorf("%w: InsecureSkipVerify is set but the trust mode is %s", ErrInvalidConfig, trust)
	}
	r.trust = trust
	return r, nil
}
