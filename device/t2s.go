package device

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vsp-dev/vsp/internal/rawio"
)

// handshakeTimeout bounds the TLS handshake of a new session.
const handshakeTimeout = 30 * time.Second

// Cipher suites offered with SSL on: the device's RSA_AES_256_CBC_SHA first,
// then ECDHE ones for clients that ask for TLS 1.2 (TLS 1.3 suites are always
// on in crypto/tls).
var sslCipherSuites = []uint16{
	tls.TLS_RSA_WITH_AES_256_CBC_SHA,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
}

// t2s is the T2S (TCP server) communication mode: listen on the local port
// and bridge one TCP (or TLS) session to the serial line.
type t2s struct {
	p   *Port
	set settings
	ln  net.Listener
	tls *tls.Config // nil without SSL

	mu    sync.Mutex
	sess  *session // current session (handshaking or up)
	evbuf []byte   // Event Byte buffer
	wg    sync.WaitGroup
}

// session is one accepted client.
type session struct {
	raw      net.Conn // counting TCP conn
	conn     net.Conn // raw or TLS on top of it
	peer     string
	wmu      sync.Mutex // orders writes to conn
	ready    atomic.Bool
	last     atomic.Int64 // unix nanoseconds of the last data
	cipher   string
	version  string
	closeErr sync.Once
}

func (s *session) close() { s.closeErr.Do(func() { s.conn.Close() }) }

func (s *session) touch() { s.last.Store(time.Now().UnixNano()) }

func newT2S(p *Port, set settings) *t2s {
	t := &t2s{p: p, set: set}
	if set.SSL {
		t.tls = p.serverTLS()
	}
	return t
}

func (t *t2s) prepare(ctx context.Context) error {
	ln, err := t.p.listen(ctx)
	if err != nil {
		return err
	}
	t.ln = ln
	return nil
}

func (t *t2s) run(ctx context.Context) {
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		<-ctx.Done()
		t.ln.Close()
		t.closeSession()
	}()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				t.p.d.log.Error("accept", "port", t.p.name, "err", err)
			}
			break
		}
		t.accept(ctx, c)
	}
	t.wg.Wait()
}

// accept applies the second-client policy and starts the session.
func (t *t2s) accept(ctx context.Context, c net.Conn) {
	log := t.p.d.log.With("port", t.p.name, "peer", c.RemoteAddr().String())
	t.mu.Lock()
	if ctx.Err() != nil { // stopping: closeSession may already have run
		t.mu.Unlock()
		c.Close()
		return
	}
	old := t.sess
	if old != nil && t.set.SecondClient != "replace" {
		t.mu.Unlock()
		log.Info("second client refused (a session is up)")
		c.Close()
		return
	}
	raw := newCountingConn(c, &t.p.netRx, &t.p.netTx)
	s := &session{raw: raw, conn: raw, peer: c.RemoteAddr().String()}
	if t.tls != nil {
		s.conn = tls.Server(raw, t.tls)
	} else if t.set.RFC2217 { // refused with SSL on by the settings check
		if rc, err := newRFC2217Session(t.p, raw, log); err == nil {
			s.conn = rc
		} else {
			log.Info("RFC 2217 not started", "err", err)
		}
	}
	s.touch()
	t.sess = s
	t.mu.Unlock()
	if old != nil {
		log.Info("second client replaces the session", "old", old.peer)
		old.close()
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		t.serve(ctx, s, log)
	}()
}

// serve runs one session: handshake, connect-time output, then network to
// serial until the session ends.
func (t *t2s) serve(ctx context.Context, s *session, log *slog.Logger) {
	defer func() {
		s.close()
		t.mu.Lock()
		if t.sess == s {
			t.sess = nil
		}
		t.mu.Unlock()
		log.Info("session closed")
	}()
	t.p.setKeepAlive(s.raw.(*countingConn).Conn, t.set)
	if tc, ok := s.conn.(*tls.Conn); ok {
		hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			log.Info("TLS handshake failed", "err", err)
			return
		}
		st := tc.ConnectionState()
		s.cipher = deviceCipherName(st.CipherSuite)
		s.version = tls.VersionName(st.Version)
		log.Info("TLS session up", "version", s.version, "cipher", s.cipher)
	} else {
		log.Info("session up")
	}
	// Connect-time output, ordered before any live serial data.
	s.wmu.Lock()
	t.mu.Lock()
	if t.sess != s {
		t.mu.Unlock()
		s.wmu.Unlock()
		return
	}
	pending := t.evbuf
	t.evbuf = nil
	s.ready.Store(true)
	t.mu.Unlock()
	var err error
	if t.set.SendMAC {
		_, err = s.conn.Write([]byte(strings.ToUpper(strings.ReplaceAll(t.p.d.mac.String(), ":", "")) + "\r\n"))
	}
	if err == nil && len(pending) > 0 {
		_, err = s.conn.Write(pending)
	}
	s.wmu.Unlock()
	if err != nil {
		return
	}
	s.touch()

	t.p.netToSerial(ctx, s, t.set.TimeoutSec, log)
}

// fromSerial forwards serial bytes to the session, or buffers them (Event
// Byte) or drops them while none is up.
func (t *t2s) fromSerial(ctx context.Context, b []byte) {
	t.mu.Lock()
	s := t.sess
	if s == nil || !s.ready.Load() {
		room := t.set.EventByte - len(t.evbuf)
		k := min(max(room, 0), len(b))
		t.evbuf = append(t.evbuf, b[:k]...)
		t.mu.Unlock()
		if k < len(b) {
			t.p.dropped.Add(uint64(len(b) - k))
		}
		return
	}
	t.mu.Unlock()
	s.send(b, &t.p.dropped)
}

func (t *t2s) closeSession() bool { return closeCurrent(&t.mu, &t.sess) }

func (t *t2s) status() modeStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	st := modeStatus{TCPState: "LISTEN", Buffered: len(t.evbuf)}
	if t.tls != nil {
		st.SSLState = 1
		st.Cipher = "RSA_AES_256_CBC_SHA"
	}
	if s := t.sess; s != nil {
		st.TCPState = "ESTABLISHED"
		st.Peer = s.peer
		if t.tls != nil {
			st.SSLState = 7
			if s.ready.Load() {
				st.SSLState = 8
				st.Cipher, st.Version = s.cipher, s.version
			}
		}
	}
	return st
}

// deviceCipherName renders a suite like the device's status screen:
// TLS_RSA_WITH_AES_256_CBC_SHA -> RSA_AES_256_CBC_SHA.
func deviceCipherName(id uint16) string {
	n := tls.CipherSuiteName(id)
	n = strings.TrimPrefix(n, "TLS_")
	return strings.Replace(n, "_WITH_", "_", 1)
}

// countingConn counts the bytes on the TCP connection.
type countingConn struct {
	net.Conn
	rx, tx *atomic.Uint64
}

// newCountingConn wraps a session's TCP connection: raw-system-call I/O
// (internal/rawio: no runtime bookkeeping wake-up per message), counted
// into rx and tx.
func newCountingConn(c net.Conn, rx, tx *atomic.Uint64) *countingConn {
	return &countingConn{Conn: rawio.Conn(c), rx: rx, tx: tx}
}

// keepAliver is a TCP connection, wrapped or not, whose keep-alive can be
// set.
type keepAliver interface {
	SetKeepAliveConfig(net.KeepAliveConfig) error
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rx.Add(uint64(n))
	return n, err
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.tx.Add(uint64(n))
	return n, err
}
