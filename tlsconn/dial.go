package tlsconn

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"syscall"
	"time"
)

// Dial connects to a device in TCP-server mode at addr ("host:port") and
// runs [Client] on the connection. The TCP socket gets TCP_NODELAY, the
// keep-alive settings of cfg.KeepAlive and, on Linux, TCP_USER_TIMEOUT.
// cfg.DialTimeout (default 5 s) bounds connect and handshake together.
// The configuration is validated first, so ErrNoTrust and other
// configuration errors are returned without touching the network.
func Dial(ctx context.Context, addr string, cfg Config, log *slog.Logger) (net.Conn, Info, error) {
	r, err := cfg.resolve()
	if err != nil {
		return nil, Info{Addr: addr}, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	conn, err := dialTCP(ctx, addr, cfg.KeepAlive)
	if err != nil {
		return nil, Info{Addr: addr}, err
	}
	return client(ctx, conn, addr, cfg, log)
}

// dialer returns a net.Dialer applying ka (defaults filled in).
func dialer(ka KeepAlive) *net.Dialer {
	ka = ka.withDefaults()
	d := &net.Dialer{}
	if ka.Idle < 0 {
		d.KeepAlive = -1
	} else {
		d.KeepAliveConfig = net.KeepAliveConfig{
			Enable:   true,
			Idle:     ka.Idle,
			Interval: ka.Interval,
			Count:    ka.Count,
		}
	}
	if ka.UserTimeout > 0 {
		ut := ka.UserTimeout
		d.ControlContext = func(_ context.Context, _, _ string, rc syscall.RawConn) error {
			return setUserTimeout(rc, ut)
		}
	}
	return d
}

func dialTCP(ctx context.Context, addr string, ka KeepAlive) (net.Conn, error) {
	conn, err := dialer(ka).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tlsconn: dial %s: %w", addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tlsconn: dial %s: TCP_NODELAY: %w", addr, err)
		}
	}
	return conn, nil
}

// timeoutOr returns d, or def when d is not positive.
func timeoutOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
