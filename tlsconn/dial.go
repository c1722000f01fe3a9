package tlsconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/vsp-dev/vsp/internal/rawio"
)

// Dial connects to a device in TCP-server mode at addr ("host:port") and
// runs the client side of the link on it: for a TLS profile, the handshake
// and the certificate check (the pin is checked in VerifyConnection, so
// also on resumed sessions) before any application data is sent; for
// profile off, the plain connection. The TCP socket gets TCP_NODELAY, the
// keep-alive settings of cfg.KeepAlive and, on Linux, TCP_USER_TIMEOUT.
// cfg.DialTimeout (default 5 s) bounds connect and handshake together.
// The configuration is validated first, so ErrNoTrust and other
// configuration errors are returned without touching the network.
//
// On Linux the TCP connection underneath (the returned conn itself with
// TLS off, its NetConn with TLS on) is not a *net.TCPConn: it moves bytes
// with raw system calls (internal/rawio) and otherwise behaves like one;
// it implements syscall.Conn for socket options.
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

// connectStagger is how long a TCP connect may go unanswered before
// dialTCP starts another one beside it.
const connectStagger = time.Second

// dialTCP connects to addr. While a connect goes unanswered it starts a
// fresh one every connectStagger (until ctx ends) and keeps the first that
// succeeds: after a network outage the kernel retransmits a SYN only after
// 1, 2, 4... s, so a single connect could notice the path's return seconds
// late, and a short timeout instead would fail slow links. Any answer
// (connected or refused) ends the dial at once.
func dialTCP(ctx context.Context, addr string, ka KeepAlive) (net.Conn, error) {
	d := dialer(ka)
	ctx, cancel := context.WithCancel(ctx)
	type result struct {
		conn net.Conn
		err  error
	}
	results := make(chan result)
	stop := make(chan struct{}) // closed when dialTCP stops reading results
	var wg sync.WaitGroup
	attempt := func() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := d.DialContext(ctx, "tcp", addr)
			select {
			case results <- result{c, err}:
			case <-stop:
				if c != nil {
					c.Close()
				}
			}
		}()
	}
	attempt()
	pending := 1
	tick := time.NewTicker(connectStagger)
	var conn net.Conn
	var err error
loop:
	for {
		select {
		case r := <-results:
			pending--
			conn, err = r.conn, r.err
			// A timed-out attempt gives way to younger ones still pending.
			if err == nil || pending == 0 || !isTimeout(err) {
				break loop
			}
		case <-tick.C:
			if ctx.Err() == nil {
				attempt()
				pending++
			}
		}
	}
	tick.Stop()
	close(stop)
	cancel()
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("tlsconn: dial %s: %w", addr, err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		if err := tc.SetNoDelay(true); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tlsconn: dial %s: TCP_NODELAY: %w", addr, err)
		}
	}
	return rawio.Conn(conn), nil
}

// timeoutOr returns d, or def when d is not positive.
func timeoutOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// isTimeout reports whether err is a connect that timed out (rather than
// one the peer or the network answered).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
