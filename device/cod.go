package device

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Limits of the COD buffers (simulator-defined).
const (
	codMaxBuffer   = 64 << 10         // serial bytes kept while waiting for Byte Count or the connection
	guardFlushSize = 16 << 10         // a guard-time group is sent at once when it reaches this size
	dialTimeout    = 10 * time.Second // one connection attempt
	minGuardTime   = 4                // Guard Time minimum, 10 ms units [manual]
)

// cod is the COD (TCP client) communication mode: connect to the peer when
// Byte Count serial bytes have arrived (0 = at once), as a TLS client when
// SSL is on, and bridge the session to the serial line. After a dropped or
// failed connection it waits ReconnectDelay (10 s on the device) before the
// next attempt.
type cod struct {
	p   *Port
	set settings
	tls *tls.Config // nil without SSL
	log *slog.Logger

	mu     sync.Mutex
	sess   *session
	state  string        // CLOSED, SYN_SENT, ESTABLISHED
	local  string        // local address of the session
	buf    []byte        // serial data kept for the next connection (Byte Count > 0)
	kick   chan struct{} // Byte Count reached
	gbuf   []byte        // Guard Time group being collected
	gtimer *time.Timer
	gsend  sync.Mutex // held from taking a group to sending it: groups leave in order
	done   bool       // run has ended: no more guard timers
}

func newCOD(p *Port, set settings) *cod {
	c := &cod{p: p, set: set, state: "CLOSED", kick: make(chan struct{}, 1), log: p.d.log.With("port", p.name, "mode", "COD", "peer", set.Peer)}
	if set.SSL {
		c.tls = p.clientTLS()
	}
	return c
}

func (c *cod) prepare(context.Context) error { return nil }

func (c *cod) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { c.closeSession() })
	defer func() {
		stop()
		c.mu.Lock()
		c.done = true
		if c.gtimer != nil {
			c.gtimer.Stop()
		}
		c.mu.Unlock()
	}()
	for ctx.Err() == nil {
		if c.set.ByteCount > 0 && !c.waitByteCount(ctx) {
			return
		}
		c.setState("SYN_SENT", "")
		c.connectOnce(ctx)
		c.setState("CLOSED", "")
		if ctx.Err() != nil {
			return
		}
		c.log.Debug("waiting before the next connection", "delay", c.p.d.cfg.ReconnectDelay)
		sleep(ctx, c.p.d.cfg.ReconnectDelay)
	}
}

// waitByteCount waits until Byte Count serial bytes are buffered.
func (c *cod) waitByteCount(ctx context.Context) bool {
	for {
		c.mu.Lock()
		n := len(c.buf)
		c.mu.Unlock()
		if n >= c.set.ByteCount {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-c.kick:
		}
	}
}

func (c *cod) setState(state, local string) {
	c.mu.Lock()
	c.state, c.local = state, local
	c.mu.Unlock()
}

// connectOnce makes one connection and serves it until it ends.
func (c *cod) connectOnce(ctx context.Context) {
	dialer := net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
	conn, err := dialer.DialContext(ctx, "tcp", c.set.Peer)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Info("connect failed", "err", err)
		}
		return
	}
	c.p.setKeepAlive(conn, c.set)
	raw := newCountingConn(conn, &c.p.netRx, &c.p.netTx)
	s := &session{raw: raw, conn: raw, peer: conn.RemoteAddr().String()}
	if c.tls != nil {
		s.conn = tls.Client(raw, c.tls)
	}
	s.touch()
	c.mu.Lock()
	c.sess = s
	c.state, c.local = "ESTABLISHED", conn.LocalAddr().String()
	c.mu.Unlock()
	if ctx.Err() != nil { // raced with the end of the boot
		s.close()
	}
	defer func() {
		s.close()
		c.mu.Lock()
		c.sess = nil
		c.mu.Unlock()
		c.log.Info("session closed")
	}()
	if err := handshakeClient(ctx, s); err != nil {
		c.log.Info("TLS handshake failed", "err", err)
		return
	}
	c.log.Info("session up", "tls", s.version, "cipher", s.cipher)
	// Connect-time output, ordered before any live serial data.
	s.wmu.Lock()
	c.mu.Lock()
	pending := c.buf
	c.buf = nil
	s.ready.Store(true)
	c.mu.Unlock()
	if c.set.SendMAC {
		_, err = s.conn.Write(c.p.macMessage())
	}
	if err == nil && len(pending) > 0 {
		_, err = s.conn.Write(pending)
	}
	s.wmu.Unlock()
	if err != nil {
		return
	}
	s.touch()
	c.p.netToSerial(ctx, s, c.set.TimeoutSec, c.log)
}

// fromSerial sends serial bytes to the session (grouped by Guard Time), or
// keeps them for the next connection (Byte Count > 0) or drops them (Byte
// Count 0: data before the connection is discarded).
func (c *cod) fromSerial(_ context.Context, b []byte) {
	c.mu.Lock()
	s := c.sess
	if s == nil || !s.ready.Load() {
		if c.set.ByteCount == 0 {
			c.mu.Unlock()
			c.p.dropped.Add(uint64(len(b)))
			return
		}
		k := min(max(codMaxBuffer-len(c.buf), 0), len(b))
		c.buf = append(c.buf, b[:k]...)
		reached := len(c.buf) >= c.set.ByteCount
		c.mu.Unlock()
		if k < len(b) {
			c.p.dropped.Add(uint64(len(b) - k))
		}
		if reached {
			select {
			case c.kick <- struct{}{}:
			default:
			}
		}
		return
	}
	if c.set.GuardTime > 0 {
		c.gbuf = append(c.gbuf, b...)
		if len(c.gbuf) < guardFlushSize {
			guard := time.Duration(max(c.set.GuardTime, minGuardTime)) * 10 * time.Millisecond
			switch {
			case c.done:
			case c.gtimer == nil:
				c.gtimer = time.AfterFunc(guard, c.flushGroup)
			default:
				c.gtimer.Reset(guard)
			}
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		c.flushGroup() // the group is full: send it now, behind any group in flight
		return
	}
	c.mu.Unlock()
	s.send(b, &c.p.dropped)
}

// flushGroup sends the Guard Time group collected so far as one write.
func (c *cod) flushGroup() {
	c.gsend.Lock()
	defer c.gsend.Unlock()
	c.mu.Lock()
	if c.done { // a timer that fired as the mode stopped
		c.mu.Unlock()
		return
	}
	b, s := c.gbuf, c.sess
	c.gbuf = nil
	c.mu.Unlock()
	if len(b) == 0 {
		return
	}
	if s == nil {
		c.p.dropped.Add(uint64(len(b)))
		return
	}
	s.send(b, &c.p.dropped)
}

func (c *cod) closeSession() bool { return closeCurrent(&c.mu, &c.sess) }

func (c *cod) status() modeStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := modeStatus{TCPState: c.state, Local: c.local, Buffered: len(c.buf)}
	if c.tls != nil {
		st.SSLState = 1
		st.Cipher = "RSA_AES_256_CBC_SHA"
	}
	if s := c.sess; s != nil {
		st.Peer = s.peer
		if c.tls != nil {
			st.SSLState = 7
			if s.ready.Load() {
				st.SSLState = 8
				st.Cipher, st.Version = s.cipher, s.version
			}
		}
	}
	return st
}
