package tlsconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"

	"github.com/vsp-dev/vsp/internal/rawio"
)

// ErrPeerNotAllowed is returned by [Server] when the connecting device's
// address is not in ServerConfig.AllowedPeers.
var ErrPeerNotAllowed = errors.New("tlsconn: peer address not allowed")

// ServerConfig configures the host side of a device-initiated link (the
// device in TCP-client/COD mode connects to us and, with SSL on, is the TLS
// client). ezTCP-class devices present no client certificate, so the device
// cannot be authenticated by TLS: restrict AllowedPeers.
type ServerConfig struct {
	// Profile: off (plain TCP), legacy (TLS 1.0–1.2 incl.
	// TLS_RSA_WITH_AES_256_CBC_SHA; needs an RSA Certificate) or modern.
	Profile Profile
	// Certificate is presented to the device; required for TLS profiles.
	Certificate *tls.Certificate
	// AllowedPeers lists IP addresses or CIDR prefixes the device may
	// connect from; empty allows any.
	AllowedPeers []string
	// HandshakeTimeout bounds the TLS handshake; 0 = 5 s.
	HandshakeTimeout time.Duration
	// KeepAlive is applied to the accepted TCP connection (see [Tune]).
	KeepAlive KeepAlive
}

// Validate reports whether c is usable.
func (c ServerConfig) Validate() error {
	_, _, err := c.resolve()
	return err
}

func (c ServerConfig) resolve() (Profile, []netip.Prefix, error) {
	var ps []netip.Prefix
	p, err := ParseProfile(string(c.Profile))
	if err != nil {
		return "", nil, err
	}
	if c.HandshakeTimeout < 0 {
		return "", nil, fmt.Errorf("%w: negative HandshakeTimeout", ErrInvalidConfig)
	}
	if p != ProfileOff && c.Certificate == nil {
		return "", nil, fmt.Errorf("%w: profile %s needs a server certificate", ErrInvalidConfig, p)
	}
	for _, s := range c.AllowedPeers {
		s = strings.TrimSpace(s)
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return "", nil, fmt.Errorf("%w: allowed peer %q: not an IP address or CIDR prefix", ErrInvalidConfig, s)
			}
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		ps = append(ps, pfx.Masked())
	}
	return p, ps, nil
}

// tunable is a TCP connection, wrapped or not.
type tunable interface {
	SetNoDelay(bool) error
	SetKeepAlive(bool) error
	SetKeepAliveConfig(net.KeepAliveConfig) error
	SyscallConn() (syscall.RawConn, error)
}

// Tune applies ka (zero fields = defaults, as in [Dial]) and TCP_NODELAY to
// a TCP connection accepted by the caller; other conns are left alone.
func Tune(conn net.Conn, ka KeepAlive) error {
	// An interface, not *net.TCPConn: a connection from Dial or Server
	// (internal/rawio on Linux) is tuned as well.
	tc, ok := conn.(tunable)
	if !ok {
		return nil
	}
	ka = ka.withDefaults()
	if err := tc.SetNoDelay(true); err != nil {
		return fmt.Errorf("tlsconn: TCP_NODELAY: %w", err)
	}
	if ka.Idle < 0 {
		if err := tc.SetKeepAlive(false); err != nil {
			return fmt.Errorf("tlsconn: keep-alive: %w", err)
		}
	} else if err := tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: ka.Idle, Interval: ka.Interval, Count: ka.Count}); err != nil {
		return fmt.Errorf("tlsconn: keep-alive: %w", err)
	}
	if ka.UserTimeout > 0 {
		rc, err := tc.SyscallConn()
		if err == nil {
			err = setUserTimeout(rc, ka.UserTimeout)
		}
		if err != nil {
			return fmt.Errorf("tlsconn: TCP_USER_TIMEOUT: %w", err)
		}
	}
	return nil
}

// Server runs the host side of a device-initiated link on conn, accepted by
// the caller: it checks AllowedPeers, tunes the socket and, for a TLS
// profile, performs the server handshake. Info.Fingerprint etc. describe
// the device's client certificate if it sent one (ezTCP does not). Server
// closes conn when it returns an error. A nil log discards log output.
// A *net.TCPConn is wrapped for raw-system-call I/O on Linux, as in [Dial].
func Server(ctx context.Context, conn net.Conn, cfg ServerConfig, log *slog.Logger) (net.Conn, Info, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	addr := ""
	if conn.RemoteAddr() != nil {
		addr = conn.RemoteAddr().String()
	}
	p, allowed, err := cfg.resolve()
	if err != nil {
		conn.Close()
		return nil, Info{Addr: addr}, err
	}
	if len(allowed) > 0 {
		ap, perr := netip.ParseAddrPort(addr)
		ok := perr == nil && containsAddr(allowed, ap.Addr().Unmap())
		if !ok {
			conn.Close()
			return nil, Info{Addr: addr}, fmt.Errorf("%w: %s", ErrPeerNotAllowed, addr)
		}
	}
	if err := Tune(conn, cfg.KeepAlive); err != nil {
		conn.Close()
		return nil, Info{Addr: addr}, err
	}
	conn = rawio.Conn(conn)
	if p == ProfileOff {
		return conn, Info{Addr: addr}, nil
	}
	tc := &tls.Config{Certificates: []tls.Certificate{*cfg.Certificate}}
	p.apply(tc)
	timeout := timeoutOr(cfg.HandshakeTimeout, DefaultDialTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := tls.Server(conn, tc)
	if err := t.HandshakeContext(ctx); err != nil {
		t.Close()
		return nil, Info{Addr: addr}, handshakeError(ctx, addr, p, timeout, err)
	}
	info := infoFrom(addr, t.ConnectionState())
	log.Debug("tlsconn: device connected", "addr", addr, "version", info.Version, "cipher", info.Cipher)
	return t, info, nil
}

func containsAddr(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
