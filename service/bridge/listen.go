package bridge

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

// ListenSpec configures a port whose device connects to it (the device in
// TCP-client, "COD", mode) instead of being dialed.
type ListenSpec struct {
	// Addr is the [host]:port to listen on.
	Addr string
	// CertFile holds the host's TLS key and certificate (PEM), generated
	// on first start and stored with mode 0600. Unused with profile off.
	CertFile string
	// DeviceMAC, when set, is the MAC address the device must send first
	// (ezTCP "Send MAC Address": 12 hex digits + CR LF). Sessions sending
	// another, or nothing within MACTimeout, are rejected; the 14 bytes are
	// not passed to the application. A new session from the same MAC
	// replaces the current one (which is presumably dead: the device
	// only reconnects after losing its session). It is parsed by
	// config.ParseMAC, the one parser of a MAC address.
	DeviceMAC net.HardwareAddr
	// Replace lets any new session replace the current one. Without it (and
	// without a matching DeviceMAC) a second session is refused while one
	// is up.
	Replace bool
	// AllowFrom lists the IP addresses or CIDR prefixes a device may
	// connect from; empty allows any (with a warning: an ezTCP presents no
	// client certificate, so nothing else tells the device from an
	// impostor but DeviceMAC, which is not secret).
	AllowFrom []string
}

// macTimeout bounds the wait for the device's MAC after connect.
const macTimeout = 5 * time.Second

// maxHandshakes bounds the connections in their TLS handshake or MAC
// check at one time; more are closed at once (TestListenBounds).
const maxHandshakes = 32

// macLen is what an ezTCP sends with Send MAC Address: 12 hex digits, CR LF.
const macLen = 14

// wireMAC is mac as an ezTCP sends it: 12 upper-case hex digits.
func wireMAC(mac net.HardwareAddr) string {
	return strings.ToUpper(hex.EncodeToString(mac))
}

// session is an accepted, verified device link waiting for the bridge.
type session struct {
	conn net.Conn
	info tlsconn.Info
	mac  string
}

// listener accepts device-initiated links for one port and hands them to
// the bridge through its Dialer, one at a time.
type listener struct {
	ln     net.Listener
	server tlsconn.ServerConfig
	spec   ListenSpec
	mac    string // normalised DeviceMAC
	log    *slog.Logger
	bridge *Bridge

	next chan session // cap 1: the session the bridge takes next

	pending chan struct{} // cap maxHandshakes: one per session in its handshake
	full    bool          // run: the last connection found pending full (logged once)

	mu      sync.Mutex
	current string // MAC of the device on the current link
	wg      sync.WaitGroup
}

func newListener(spec ListenSpec, server tlsconn.ServerConfig, log *slog.Logger) (*listener, error) {
	l := &listener{spec: spec, server: server, log: log, next: make(chan session, 1),
		pending: make(chan struct{}, maxHandshakes)}
	if len(spec.DeviceMAC) > 0 {
		l.mac = wireMAC(spec.DeviceMAC)
	}
	if err := server.Validate(); err != nil {
		return nil, fmt.Errorf("bridge: listen %s: %w", spec.Addr, err)
	}
	ln, err := net.Listen("tcp", spec.Addr)
	if err != nil {
		return nil, fmt.Errorf("bridge: listen: %w", err)
	}
	l.ln = ln
	return l, nil
}

// run accepts until ctx ends; then it closes the listener and any session
// not taken, and waits for its handshakes.
func (l *listener) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { l.ln.Close() })
	defer stop()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				break
			}
			l.log.Error("listen: accept", "err", err) // e.g. out of file descriptors: retry
			if !sleep(ctx, 100*time.Millisecond) {
				break
			}
			continue
		}
		select {
		case l.pending <- struct{}{}:
		default:
			// Every handshake slot is taken (each ends within the
			// handshake or MAC timeout): refuse at once rather than
			// let connections pile up goroutines and descriptors.
			conn.Close()
			if !l.full {
				l.log.Warn("listen: too many device sessions in their handshake; refusing new connections until one ends",
					"limit", maxHandshakes, "peer", conn.RemoteAddr().String())
			}
			l.full = true
			continue
		}
		l.full = false
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer func() { <-l.pending }()
			l.accept(ctx, conn)
		}()
	}
	l.wg.Wait()
	select {
	case s := <-l.next:
		s.conn.Close()
	default:
	}
}

// accept runs the handshake and identity check of one device session and
// applies the one-session-at-a-time rule.
func (l *listener) accept(ctx context.Context, raw net.Conn) {
	peer := raw.RemoteAddr().String()
	conn, info, err := tlsconn.Server(ctx, raw, l.server, l.log)
	if err != nil {
		l.log.Warn("device session refused", "peer", peer, "err", err)
		return
	}
	mac := ""
	if l.mac != "" {
		buf := make([]byte, macLen)
		_ = conn.SetReadDeadline(time.Now().Add(macTimeout))
		stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
		_, err := io.ReadFull(conn, buf)
		stop()
		_ = conn.SetReadDeadline(time.Time{})
		mac = strings.TrimRight(string(buf), "\r\n")
		if err != nil || mac != l.mac {
			if err != nil {
				mac = fmt.Sprintf("none (%v)", err)
			}
			l.log.Warn("device session refused: MAC check failed", "peer", peer, "want", l.mac, "got", mac)
			conn.Close()
			return
		}
	}
	l.mu.Lock()
	state := l.bridge.Stats().State
	up := state == StateUp || state == StateHeld
	sameDevice := l.mac != "" && mac == l.current
	l.mu.Unlock()
	if up && !sameDevice && !l.spec.Replace {
		l.log.Warn("second device session refused: a session is up", "peer", peer)
		conn.Close()
		return
	}
	s := session{conn: conn, info: info, mac: mac}
	select {
	case old := <-l.next: // a newer session supersedes one not yet taken
		old.conn.Close()
	default:
	}
	select {
	case l.next <- s:
	default: // lost a race with another new session: keep that one
		conn.Close()
		return
	}
	if up {
		l.log.Info("new device session replaces the current one", "peer", peer, "mac", mac)
		l.bridge.Drop(errors.New("replaced by a new session from the device"))
	}
}

// dial is the port's Dialer in listen mode: it waits for the next session.
func (l *listener) dial(ctx context.Context) (net.Conn, tlsconn.Info, error) {
	select {
	case s := <-l.next:
		l.mu.Lock()
		l.current = s.mac
		l.mu.Unlock()
		return s.conn, s.info, nil
	case <-ctx.Done():
		return nil, tlsconn.Info{}, ctx.Err()
	}
}

// validateListen checks a listen-mode spec.
func (s *PortSpec) validateListen() error {
	if len(s.Devices) > 0 {
		return fmt.Errorf("bridge: port %s: both device addresses and listen %s given; choose one", s.Name, s.Listen.Addr)
	}
	if _, _, err := net.SplitHostPort(s.Listen.Addr); err != nil {
		return fmt.Errorf("bridge: port %s: listen %q: %w", s.Name, s.Listen.Addr, err)
	}
	if n := len(s.Listen.DeviceMAC); n != 0 && n != 6 {
		return fmt.Errorf("bridge: port %s: device MAC %v: want 6 bytes, got %d", s.Name, s.Listen.DeviceMAC, n)
	}
	p, err := tlsconn.ParseProfile(string(s.Link.Profile))
	if err != nil {
		return fmt.Errorf("bridge: port %s: %w", s.Name, err)
	}
	if p != tlsconn.ProfileOff && s.Listen.CertFile == "" {
		return fmt.Errorf("bridge: port %s: listen with TLS needs a file for the host's key and certificate", s.Name)
	}
	return nil
}

// target names what the port connects to, for logs.
func (s *PortSpec) target() string {
	if s.Listen.Addr != "" {
		return "listen " + s.Listen.Addr
	}
	return s.Devices[0]
}

// startListener loads (or creates) the host certificate and opens the
// listening socket of a listen-mode port.
func startListener(spec PortSpec, log *slog.Logger) (*listener, error) {
	prof, err := tlsconn.ParseProfile(string(spec.Link.Profile))
	if err != nil {
		return nil, fmt.Errorf("bridge: port %s: %w", spec.Name, err)
	}
	sc := tlsconn.ServerConfig{
		Profile:          prof,
		HandshakeTimeout: spec.Link.DialTimeout,
		KeepAlive:        spec.Link.KeepAlive,
		AllowedPeers:     spec.Listen.AllowFrom,
	}
	if len(sc.AllowedPeers) == 0 {
		log.Warn("listen: any host that reaches this port can take the device's place (devices present no client certificate); "+
			"set allow_from (--allow-from) to the device's address", "listen", spec.Listen.Addr)
	}
	if prof != tlsconn.ProfileOff {
		cert, created, err := tlsconn.LoadOrCreateServerCert(spec.Listen.CertFile, "vsp "+spec.Name)
		if err != nil {
			return nil, fmt.Errorf("bridge: port %s: %w", spec.Name, err)
		}
		sc.Certificate = cert
		fp := ""
		if len(cert.Certificate) > 0 {
			if leaf, err := x509.ParseCertificate(cert.Certificate[0]); err == nil {
				fp = tlsconn.Fingerprint(leaf)
			}
		}
		if created {
			log.Info("created the host's TLS key and certificate for device sessions", "file", spec.Listen.CertFile, "fingerprint", fp)
		}
	}
	l, err := newListener(spec.Listen, sc, log)
	if err != nil {
		return nil, fmt.Errorf("bridge: port %s: %w", spec.Name, err)
	}
	log.Info("listening for the device", "addr", l.ln.Addr().String(), "tls", string(prof), "mac_check", l.mac != "")
	return l, nil
}
