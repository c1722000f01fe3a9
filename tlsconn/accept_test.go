package tlsconn_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vsp-dev/vsp/tlsconn"
)

// `vsp trust --accept` replaces a device's entry in the known-devices file,
// keeps the others, and writes the file 0600; a trust-on-first-use dial
// refused before the accept succeeds after it.
func TestAcceptKnownDevice(t *testing.T) {
	known := filepath.Join(t.TempDir(), "state", "known_devices")
	first := newCert(t, certOpts{rsaBits: 1024})
	second := newCert(t, certOpts{rsaBits: 1024})
	// One server whose certificate the test swaps, as a device regenerating
	// its key would.
	var cur atomic.Pointer[tls.Certificate]
	tc := ezTCPServerConfig(first)
	c1, c2 := tc.Certificates[0], ezTCPServerConfig(second).Certificates[0]
	cur.Store(&c1)
	tc.Certificates = nil
	tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cur.Load(), nil }
	srv := startServer(t, tc)
	cfg := tlsconn.Config{Profile: tlsconn.ProfileLegacy, Trust: tlsconn.TrustTOFU, KnownDevices: known}

	other := "10.9.9.9:1470"
	if _, replaced, err := tlsconn.AcceptKnownDevice(known, other, second.pin()); err != nil || replaced {
		t.Fatalf("accept other: replaced %v, %v", replaced, err)
	}
	conn, _, err := tlsconn.Dial(ctxT(t), srv.addr, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	srv.next(t)

	// The device changes its certificate: refused, naming both.
	cur.Store(&c2)
	_, _, err = tlsconn.Dial(ctxT(t), srv.addr, cfg, nil)
	var cc *tlsconn.CertChangedError
	if !errors.As(err, &cc) || cc.Old != first.pin() || cc.New != second.pin() {
		t.Fatalf("dial after the change: %v; want CertChangedError %s -> %s", err, first.pin(), second.pin())
	}
	for _, want := range []string{"certificate changed", "first seen", known} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q: %v", want, err)
		}
	}

	old, replaced, err := tlsconn.AcceptKnownDevice(known, srv.addr, strings.ToUpper(strings.TrimPrefix(second.pin(), "sha256:")))
	if err != nil || !replaced || old.Fingerprint != first.pin() {
		t.Fatalf("accept: old %+v, replaced %v, %v", old, replaced, err)
	}
	b, err := os.ReadFile(known)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), srv.addr+" "+second.pin()) || strings.Contains(string(b), first.pin()) {
		t.Fatalf("known-devices file after accept does not record %s %s alone:\n%s", srv.addr, second.pin(), b)
	}
	if !strings.Contains(string(b), other+" ") {
		t.Errorf("accept dropped the entry of another device:\n%s", b)
	}
	st, err := os.Stat(known)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("known-devices file: %v, %v; want mode 0600", st, err)
	}
	srv.next(t)
	conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, cfg, nil)
	if err != nil {
		t.Fatalf("dial after accept: %v", err)
	}
	conn.Close()
	if info.Fingerprint != second.pin() {
		t.Errorf("connected to %s", info.Fingerprint)
	}
	if _, _, err := tlsconn.AcceptKnownDevice(known, srv.addr, "sha1:abcd"); err == nil {
		t.Errorf("a malformed fingerprint was accepted")
	}
}

// The host certificate for listen mode is created once, 0600, and loaded
// unchanged afterwards.
func TestLoadOrCreateServerCert(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "listen.pem")
	c1, created, err := tlsconn.LoadOrCreateServerCert(path, "vsp test")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("stat: %v %v; want mode 0600", st, err)
	}
	c2, created, err := tlsconn.LoadOrCreateServerCert(path, "vsp test")
	if err != nil || created {
		t.Fatalf("load: %v %v", created, err)
	}
	l1, _ := x509.ParseCertificate(c1.Certificate[0])
	l2, _ := x509.ParseCertificate(c2.Certificate[0])
	if tlsconn.Fingerprint(l1) != tlsconn.Fingerprint(l2) {
		t.Errorf("reloaded certificate differs")
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlsconn.LoadOrCreateServerCert(path, "x"); !errors.Is(err, tlsconn.ErrInvalidConfig) {
		t.Errorf("corrupt file: %v, want ErrInvalidConfig", err)
	}
}

// QueueOf reads the kernel's send queue of TCP and TLS-over-TCP links and
// says "unknown" for other connections.
func TestQueueOf(t *testing.T) {
	srv := startServer(t, nil)
	conn, _, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: tlsconn.ProfileOff}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	echo(t, conn, "queue")
	q, err := tlsconn.QueueOf(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !q.OK || q.Unacked != 0 {
		t.Errorf("after an echo round trip: %+v, want OK and nothing unacknowledged", q)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if q, err := tlsconn.QueueOf(a); err != nil || q.OK {
		t.Errorf("net.Pipe: %+v %v, want OK false", q, err)
	}
}
