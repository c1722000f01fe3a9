package tlsconn_test

import (
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

const (
	goodPin  = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	otherPin = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
)

// TestLegacyEzTCP talks to a Go server restricted like an ezTCP: TLS 1.0,
// TLS_RSA_WITH_AES_256_CBC_SHA, self-signed SHA-1 certificate, 512-bit key.
func TestLegacyEzTCP(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv := startServer(t, ezTCPServerConfig(cert))
	log, logs := newLogger()

	conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: cert.pin()}, log)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	echo(t, conn, "hello ezTCP\r\n")

	want := tlsconn.Info{
		Addr: srv.addr, TLS: true, Version: "TLS 1.0", Cipher: "TLS_RSA_WITH_AES_256_CBC_SHA",
		Fingerprint: cert.pin(), KeyType: "RSA", KeyBits: 512, SigAlg: "SHA1-RSA",
		Subject: cert.x509.Subject.String(), NotAfter: cert.x509.NotAfter,
	}
	if info != want {
		t.Errorf("Info:\n got %+v\nwant %+v", info, want)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "key_bits=512") {
		t.Errorf("no warning naming the 512-bit key in log:\n%s", logs)
	}
	if !strings.Contains(logs.String(), "legacy TLS in use") || !strings.Contains(logs.String(), `version="TLS 1.0"`) {
		t.Errorf("no warning about the legacy TLS version and cipher in log:\n%s", logs)
	}
	conn.Close()
	if sc := srv.next(t); sc.handshakeErr != nil || sc.appBytes != len("hello ezTCP\r\n") {
		t.Errorf("server: %+v", sc)
	}
}

// TestDialColonPin dials with upper-case, colon-separated pin input (as
// OpenSSL prints fingerprints).
func TestDialColonPin(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 768, sha1: true})
	srv := startServer(t, ezTCPServerConfig(cert))
	hex := strings.TrimPrefix(cert.pin(), "sha256:")
	var pairs []string
	for i := 0; i < len(hex); i += 2 {
		pairs = append(pairs, strings.ToUpper(hex[i:i+2]))
	}
	pin := "SHA256:" + strings.Join(pairs, ":")
	conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: "legacy", Pin: pin}, nil)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer conn.Close()
	if info.KeyBits != 768 || info.Addr != srv.addr || info.Fingerprint != cert.pin() {
		t.Errorf("Info %+v", info)
	}
	echo(t, conn, "x")
}

func TestModernRefusesEzTCP(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv := startServer(t, ezTCPServerConfig(cert))
	for _, profile := range []tlsconn.Profile{"", tlsconn.ProfileModern} {
		_, _, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: profile, Pin: cert.pin()}, nil)
		if !errors.Is(err, tlsconn.ErrHandshake) {
			t.Fatalf("profile %q: err = %v, want ErrHandshake", profile, err)
		}
		if !strings.Contains(err.Error(), "legacy profile") {
			t.Errorf("error does not suggest the legacy profile: %v", err)
		}
		t.Logf("profile %q: %v", profile, err)
		if sc := srv.next(t); sc.appBytes != 0 {
			t.Errorf("server got %d application bytes", sc.appBytes)
		}
	}
}

// TestModernRefusesWeakKey: a TLS 1.2 server whose 1024-bit RSA key is fine
// for legacy but refused by modern, even with the right pin.
func TestModernRefusesWeakKey(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 1024})
	srv := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert.tls}, MaxVersion: tls.VersionTLS12})

	_, _, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Pin: cert.pin()}, nil)
	if !errors.Is(err, tlsconn.ErrWeakKey) || !strings.Contains(err.Error(), "1024-bit RSA key") {
		t.Fatalf("modern: err = %v, want ErrWeakKey naming 1024 bits", err)
	}
	if sc := srv.next(t); sc.handshakeErr == nil || sc.appBytes != 0 {
		t.Errorf("server: %+v", sc)
	}

	log, logs := newLogger()
	conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: cert.pin()}, log)
	if err != nil {
		t.Fatalf("legacy: %v", err)
	}
	conn.Close()
	if info.Version != "TLS 1.2" || info.KeyBits != 1024 {
		t.Errorf("Info %+v", info)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("unexpected warning for a 1024-bit key:\n%s", logs)
	}
}

func TestWrongPin(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv := startServer(t, ezTCPServerConfig(cert))
	cfg := tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: otherPin}

	check := func(name string, conn net.Conn, err error) {
		t.Helper()
		if conn != nil {
			t.Errorf("%s: got a conn with an error", name)
		}
		var pm *tlsconn.PinMismatchError
		if !errors.As(err, &pm) {
			t.Fatalf("%s: err = %v, want *PinMismatchError", name, err)
		}
		if pm.Want != otherPin || pm.Got != cert.pin() || pm.Addr != srv.addr || pm.Resumed {
			t.Errorf("%s: %+v", name, pm)
		}
		if msg := err.Error(); !strings.Contains(msg, otherPin) || !strings.Contains(msg, cert.pin()) {
			t.Errorf("%s: message does not name both fingerprints: %s", name, msg)
		}
		if sc := srv.next(t); sc.handshakeErr == nil || sc.appBytes != 0 {
			t.Errorf("%s: server completed a handshake or got application data: %+v", name, sc)
		}
	}
	conn, _, err := tlsconn.Dial(ctxT(t), srv.addr, cfg, nil)
	check("Dial", conn, err)
}

// TestNoTrust: a TLS profile without a pin and not insecure fails before
// anything reaches the network.
func TestNoTrust(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, p := range []tlsconn.Profile{"", tlsconn.ProfileLegacy, tlsconn.ProfileModern} {
		cfg := tlsconn.Config{Profile: p}
		if err := cfg.Validate(); !errors.Is(err, tlsconn.ErrNoTrust) {
			t.Errorf("Validate(%q) = %v", p, err)
		}
		if _, _, err := tlsconn.Dial(ctxT(t), ln.Addr().String(), cfg, nil); !errors.Is(err, tlsconn.ErrNoTrust) {
			t.Errorf("Dial(%q) = %v", p, err)
		} else if !strings.Contains(err.Error(), "a pin, trust on first use, a CA bundle, or insecure") {
			t.Errorf("message does not name the ways to trust a device: %v", err)
		}
	}
	// Dial must not even have connected.
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("Dial connected despite ErrNoTrust")
	}
}

// TestResumedSessionPinRechecked: a session resumed from the cache is still
// refused when the pin no longer matches.
func TestResumedSessionPinRechecked(t *testing.T) {
	cert := newCert(t, certOpts{}) // ECDSA P-256
	srv := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert.tls}, MaxVersion: tls.VersionTLS12})
	cache := tls.NewLRUClientSessionCache(4)
	cfg := tlsconn.Config{Pin: cert.pin(), SessionCache: cache}

	for i, wantResumed := range []bool{false, true} {
		conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, cfg, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		echo(t, conn, "ping")
		conn.Close()
		if info.Resumed != wantResumed || info.Fingerprint != cert.pin() || info.Version != "TLS 1.2" {
			t.Fatalf("dial %d: Info %+v, want Resumed=%v", i, info, wantResumed)
		}
		if sc := srv.next(t); sc.resumed != wantResumed {
			t.Fatalf("dial %d: server resumed=%v", i, sc.resumed)
		}
	}

	cfg.Pin = otherPin
	conn, _, err := tlsconn.Dial(ctxT(t), srv.addr, cfg, nil)
	var pm *tlsconn.PinMismatchError
	if !errors.As(err, &pm) {
		t.Fatalf("err = %v (conn %v), want *PinMismatchError", err, conn)
	}
	if !pm.Resumed {
		t.Errorf("mismatch was not on a resumed session: %+v", pm)
	}
	if pm.Got != cert.pin() || pm.Want != otherPin {
		t.Errorf("%+v", pm)
	}
	if sc := srv.next(t); sc.handshakeErr == nil || sc.appBytes != 0 {
		t.Errorf("server: %+v", sc)
	}
}

func TestPlainTCP(t *testing.T) {
	srv := startServer(t, nil)
	conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: tlsconn.ProfileOff}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if info != (tlsconn.Info{Addr: srv.addr}) {
		t.Errorf("Info %+v", info)
	}
	// No TLS layer: the TCP connection itself (raw I/O on Linux), with
	// the socket reachable for options and half-close.
	if _, ok := conn.(*tls.Conn); ok {
		t.Error("conn is a *tls.Conn with TLS off")
	}
	if _, ok := conn.(syscall.Conn); !ok {
		t.Errorf("conn %T does not implement syscall.Conn", conn)
	}
	if _, ok := conn.(interface{ CloseWrite() error }); !ok {
		t.Errorf("conn %T has no CloseWrite", conn)
	}
	echo(t, conn, "plain")
}

func TestInsecureWarnsEveryConnect(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv := startServer(t, ezTCPServerConfig(cert))
	log, logs := newLogger()
	for range 2 {
		conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: tlsconn.ProfileLegacy, InsecureSkipVerify: true}, log)
		if err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if info.Fingerprint != cert.pin() {
			t.Errorf("Info %+v", info)
		}
	}
	if n := strings.Count(logs.String(), "verification is OFF"); n != 2 {
		t.Errorf("%d insecure warnings, want 2:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), cert.pin()) {
		t.Errorf("warning does not show the fingerprint to pin:\n%s", logs)
	}
}

func TestProbe(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv := startServer(t, ezTCPServerConfig(cert))
	leaf, info, err := tlsconn.Probe(ctxT(t), srv.addr, tlsconn.ProfileLegacy, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Equal(cert.x509) || info.Fingerprint != cert.pin() || info.Version != "TLS 1.0" || info.KeyBits != 512 {
		t.Errorf("Probe: %+v", info)
	}
	if sc := srv.next(t); sc.handshakeErr != nil || sc.appBytes != 0 {
		t.Errorf("server: %+v (Probe must not send application data)", sc)
	}

	// Probing with the wrong profile fails with a hint and no certificate.
	leaf, _, err = tlsconn.Probe(ctxT(t), srv.addr, tlsconn.ProfileModern, time.Second)
	if err == nil || leaf != nil || !strings.Contains(err.Error(), "legacy") {
		t.Errorf("modern probe: leaf %v, err %v", leaf != nil, err)
	}
	srv.next(t)

	if _, _, err := tlsconn.Probe(ctxT(t), srv.addr, tlsconn.ProfileOff, 0); !errors.Is(err, tlsconn.ErrInvalidConfig) {
		t.Errorf("off probe: %v", err)
	}
}

// Probing with the modern profile a device whose key that profile refuses
// fails with ErrWeakKey and still returns the certificate to show.
func TestProbeWeakKeyForProfile(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 1024})
	srv := startServer(t, &tls.Config{Certificates: []tls.Certificate{cert.tls}})
	leaf, info, err := tlsconn.Probe(ctxT(t), srv.addr, tlsconn.ProfileModern, 0)
	if !errors.Is(err, tlsconn.ErrWeakKey) || leaf == nil || info.KeyBits != 1024 {
		t.Fatalf("modern probe of a 1024-bit key: leaf %v, bits %d, err %v", leaf != nil, info.KeyBits, err)
	}
	srv.next(t)
	if _, _, err := tlsconn.Probe(ctxT(t), srv.addr, tlsconn.ProfileLegacy, 0); err != nil {
		t.Errorf("legacy probe of a 1024-bit key: %v", err)
	}
}

func TestNotTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write([]byte("lsh> hello, this is not TLS at all\r\n"))
		io.Copy(io.Discard, c) // until the client gives up and closes
	}()
	_, _, err = tlsconn.Dial(ctxT(t), ln.Addr().String(), tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: goodPin}, nil)
	if !errors.Is(err, tlsconn.ErrHandshake) || !strings.Contains(err.Error(), "not speaking TLS") {
		t.Errorf("err = %v", err)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // accept, never answer, until the client closes
		}
	}()
	start := time.Now()
	_, _, err = tlsconn.Dial(ctxT(t), ln.Addr().String(),
		tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: goodPin, DialTimeout: 300 * time.Millisecond}, nil)
	if !errors.Is(err, tlsconn.ErrHandshake) || !strings.Contains(err.Error(), "no handshake within") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v, DialTimeout was 300ms", d)
	}
}

// TestInfoJSON: Info is shown by `vsp status --json` and `vsp list --json`
// with the snake_case keys the rest of the status uses, and decodes back.
func TestInfoJSON(t *testing.T) {
	in := tlsconn.Info{Addr: "10.0.0.7:1470", TLS: true, Version: "TLS 1.0", Cipher: "TLS_RSA_WITH_AES_256_CBC_SHA",
		Fingerprint: goodPin, KeyType: "RSA", KeyBits: 1024, SigAlg: "SHA256-RSA", Subject: "CN=ezTCP",
		NotAfter: time.Date(2036, 1, 2, 3, 4, 5, 0, time.UTC)}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(b, &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"addr", "tls", "version", "cipher", "fingerprint", "key_type", "key_bits", "sig_alg", "subject", "not_after"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON %s lacks key %q", b, k)
		}
	}
	var out tlsconn.Info
	if err := json.Unmarshal(b, &out); err != nil || out != in {
		t.Fatalf("round trip: %+v, %v; want %+v", out, err, in)
	}
	plain, _ := json.Marshal(tlsconn.Info{Addr: "10.0.0.7:1470"})
	if string(plain) != `{"addr":"10.0.0.7:1470","tls":false}` {
		t.Errorf("plain-TCP Info JSON %s", plain)
	}
}
