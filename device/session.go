package device

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Helpers shared by the TCP modes (COD, ATC; T2S has its own copy of the
// session loop).

// macMessage is the "Send MAC Address" message: the MAC as 12 upper-case
// hex digits followed by CR LF (14 bytes).
func (p *Port) macMessage() []byte {
	return []byte(strings.ToUpper(strings.ReplaceAll(p.d.mac.String(), ":", "")) + "\r\n")
}

// setKeepAlive applies the device keep-alive to a TCP connection: with
// Timeout 0 the device probes every KeepAlive and drops the session after
// KeepAliveProbes unanswered probes.
func (p *Port) setKeepAlive(c net.Conn, set settings) {
	cfg := p.d.cfg
	tc, ok := c.(keepAliver)
	if !ok || set.TimeoutSec != 0 || cfg.KeepAlive <= 0 {
		return
	}
	tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: cfg.KeepAlive, Interval: cfg.KeepAlive, Count: cfg.KeepAliveProbes})
}

// clientTLS returns the TLS configuration the device uses as a TLS client
// (COD, ATC ATD). The "device" profile offers only what the real device
// speaks: TLS 1.0 with RSA_AES_256_CBC_SHA. The device does not verify the
// server's certificate (it has no trust store).
func (p *Port) clientTLS() *tls.Config {
	c := &tls.Config{InsecureSkipVerify: true} // the ezTCP has no CA store: it never verifies
	if p.d.cfg.ClientTLS != "modern" {
		c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
		c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA}
	}
	return c
}

// serverTLS returns the TLS configuration of the device as a TLS server
// (T2S, ATC ATA). The "device" profile is the real device: TLS 1.0 only,
// RSA_AES_256_CBC_SHA only. The default "any" also answers clients that
// ask for TLS 1.2/1.3 (simulator-defined convenience).
func (p *Port) serverTLS() *tls.Config {
	c := &tls.Config{
		MinVersion:     tls.VersionTLS10,
		CipherSuites:   sslCipherSuites,
		GetCertificate: p.d.servedCertificate,
	}
	if p.d.cfg.ServerTLS == "device" {
		c.MaxVersion = tls.VersionTLS10
		c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA}
	}
	return c
}

// closeCurrent closes the session *sess, read under mu, if there is one
// (console "sc comN close"); it reports whether there was.
func closeCurrent(mu *sync.Mutex, sess **session) bool {
	mu.Lock()
	s := *sess
	mu.Unlock()
	if s == nil {
		return false
	}
	s.close()
	return true
}

// send writes serial data b to the session's peer; what a failing session
// does not take counts in dropped.
func (s *session) send(b []byte, dropped *atomic.Uint64) {
	s.wmu.Lock()
	_, err := s.conn.Write(b)
	s.wmu.Unlock()
	if err != nil {
		dropped.Add(uint64(len(b)))
		return
	}
	s.touch()
}

// netToSerial copies session data to the serial line until the session ends
// or, with a Timeout, it has been idle that long (serial traffic counts as
// activity).
func (p *Port) netToSerial(ctx context.Context, s *session, timeoutSec int, log *slog.Logger) {
	timeout := time.Duration(timeoutSec) * time.Second
	buf := make([]byte, 4096)
	for {
		if timeout > 0 {
			s.conn.SetReadDeadline(time.Unix(0, s.last.Load()).Add(timeout))
		}
		n, err := s.conn.Read(buf)
		if n > 0 {
			s.touch()
			if werr := p.writeSerial(ctx, buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if timeout > 0 && errors.Is(err, os.ErrDeadlineExceeded) {
				if time.Since(time.Unix(0, s.last.Load())) < timeout {
					continue // serial data kept the session alive
				}
				log.Info("session timeout", "timeout", timeout)
			}
			return
		}
	}
}

// handshakeClient runs the TLS client handshake on s when it is TLS.
func handshakeClient(ctx context.Context, s *session) error {
	tc, ok := s.conn.(*tls.Conn)
	if !ok {
		return nil
	}
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	st := tc.ConnectionState()
	s.cipher = deviceCipherName(st.CipherSuite)
	s.version = tls.VersionName(st.Version)
	return nil
}
