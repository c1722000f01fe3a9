package tlsconn_test

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

func TestTOFU(t *testing.T) {
	dir := t.TempDir()
	known := filepath.Join(dir, "sub", "known_devices")
	first := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv := startServer(t, ezTCPServerConfig(first))
	cfg := tlsconn.Config{Profile: tlsconn.ProfileLegacy, Trust: tlsconn.TrustTOFU, KnownDevices: known}

	before := time.Now().Add(-time.Second)
	for i := range 2 {
		conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, cfg, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		echo(t, conn, "tofu")
		conn.Close()
		if info.Fingerprint != first.pin() {
			t.Errorf("Info %+v", info)
		}
		srv.next(t)
	}
	st, err := os.Stat(known)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("known devices mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(known)
	if strings.Count(string(b), srv.addr+" "+first.pin()+" ") != 1 {
		t.Errorf("known devices file:\n%s", b)
	}

	// The device's certificate changes (same address): refused.
	second := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv2 := startServer(t, ezTCPServerConfig(second))
	// Record srv2's address under the first certificate by rewriting the file.
	line := srv2.addr + " " + first.pin() + " " + before.UTC().Format(time.RFC3339) + "\n"
	if err := os.WriteFile(known, append(b, line...), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = tlsconn.Dial(ctxT(t), srv2.addr, cfg, nil)
	var ce *tlsconn.CertChangedError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *CertChangedError", err)
	}
	if ce.Addr != srv2.addr || ce.Old != first.pin() || ce.New != second.pin() ||
		!ce.FirstSeen.Equal(before.UTC().Truncate(time.Second)) {
		t.Errorf("%+v", ce)
	}
	if !strings.Contains(err.Error(), "certificate changed") {
		t.Errorf("message: %v", err)
	}
	if sc := srv2.next(t); sc.appBytes != 0 || sc.handshakeErr == nil {
		t.Errorf("server: %+v", sc)
	}

	// A corrupt file is an error, not a silent re-trust.
	if err := os.WriteFile(known, []byte("garbage line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := tlsconn.Dial(ctxT(t), srv.addr, cfg, nil); !errors.Is(err, tlsconn.ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "known_devices:1") {
		t.Errorf("corrupt file: %v", err)
	}
}

func TestCATrust(t *testing.T) {
	ca := newCert(t, certOpts{isCA: true, cn: "vsp test CA"})
	leaf := newCert(t, certOpts{parent: ca, ips: []net.IP{net.ParseIP("127.0.0.1")}, dnsNames: []string{"device.test"}})
	other := newCert(t, certOpts{isCA: true, cn: "other CA"})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	otherFile := filepath.Join(dir, "other.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.x509.Raw}), 0o600)
	os.WriteFile(otherFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.x509.Raw}), 0o600)
	srv := startServer(t, &tls.Config{Certificates: []tls.Certificate{leaf.tls}})

	tests := []struct {
		name       string
		caFile     string
		serverName string
		want       error
	}{
		{"IP from address", caFile, "", nil},
		{"DNS name", caFile, "device.test", nil},
		{"wrong name", caFile, "other.test", tlsconn.ErrUntrustedCert},
		{"wrong CA", otherFile, "", tlsconn.ErrUntrustedCert},
		{"missing file", filepath.Join(dir, "nope.pem"), "", os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, info, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Trust: tlsconn.TrustCA, CAFile: tt.caFile, ServerName: tt.serverName}, nil)
			if tt.want != nil {
				if !errors.Is(err, tt.want) {
					t.Fatalf("err = %v, want %v", err, tt.want)
				}
				if tt.want != os.ErrNotExist {
					srv.next(t)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if info.Version != "TLS 1.3" {
				t.Errorf("Info %+v", info)
			}
			echo(t, conn, "ca")
			conn.Close()
			srv.next(t)
		})
	}
}
