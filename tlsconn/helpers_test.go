//go:debug rsa1024min=0

// The directive above lets the test binary use the 512/768-bit RSA keys of
// ezTCP-class devices, as the vsp binaries do in their main packages.

package tlsconn_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"

	"github.com/vsp-dev/vsp/internal/testenv"
)

type certOpts struct {
	rsaBits  int // 0 = ECDSA P-256
	sha1     bool
	parent   *testCert // nil = self-signed
	isCA     bool
	ips      []net.IP
	dnsNames []string
	cn       string
}

type testCert struct {
	tls  tls.Certificate
	x509 *x509.Certificate
	key  crypto.Signer
}

func (c *testCert) pin() string {
	return tlsconn.Fingerprint(c.x509)
}

func newCert(t testing.TB, o certOpts) *testCert {
	t.Helper()
	var key crypto.Signer
	var err error
	if o.rsaBits > 0 {
		key, err = rsa.GenerateKey(rand.Reader, o.rsaBits)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	if o.cn == "" {
		o.cn = "127.0.0.1"
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Country: []string{"KR"}, Province: []string{"Incheon"}, Locality: []string{"NamGu"},
			Organization: []string{"Sollae Systems"}, OrganizationalUnit: []string{"Research"},
			CommonName: o.cn,
		},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC),
		IPAddresses:           o.ips,
		DNSNames:              o.dnsNames,
		BasicConstraintsValid: true,
		IsCA:                  o.isCA,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if o.isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if o.sha1 {
		tmpl.SignatureAlgorithm = x509.SHA1WithRSA
	}
	parent, signer := tmpl, key
	if o.parent != nil {
		parent, signer = o.parent.x509, o.parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCert{tls: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, x509: leaf, key: key}
}

// writePEM writes the certificate and key as PEM files into dir.
func (c *testCert) writePEM(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	kb, err := x509.MarshalPKCS8PrivateKey(c.key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.x509.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// ezTCPServerConfig is a Go TLS server restricted like an ezTCP: TLS 1.0
// only, TLS_RSA_WITH_AES_256_CBC_SHA only.
func ezTCPServerConfig(c *testCert) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.tls},
		MinVersion:   tls.VersionTLS10,
		MaxVersion:   tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA},
	}
}

// serverConn is what the test server saw on one accepted connection.
type serverConn struct {
	handshakeErr error
	resumed      bool
	appBytes     int // application bytes received (after a handshake)
}

// testServer is a real loopback TCP (optionally TLS) echo server.
type testServer struct {
	ln    net.Listener
	addr  string
	conns chan serverConn
	wg    sync.WaitGroup
}

// startServer serves until the test ends. With tc == nil it is plain TCP.
func startServer(t *testing.T, tc *tls.Config) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{ln: ln, addr: ln.Addr().String(), conns: make(chan serverConn, 16)}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.conns <- serve(c, tc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func serve(c net.Conn, tc *tls.Config) serverConn {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	var rw io.ReadWriter = c
	var res serverConn
	if tc != nil {
		t := tls.Server(c, tc)
		if err := t.Handshake(); err != nil {
			res.handshakeErr = err
			return res // no application data can follow a failed handshake
		}
		res.resumed = t.ConnectionState().DidResume
		rw = t
	}
	buf := make([]byte, 4096)
	for {
		n, err := rw.Read(buf)
		res.appBytes += n
		if n > 0 {
			if _, werr := rw.Write(buf[:n]); werr != nil {
				return res
			}
		}
		if err != nil {
			return res
		}
	}
}

// next returns what the server saw on its next connection.
func (s *testServer) next(t *testing.T) serverConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("server saw no connection")
	}
	return serverConn{}
}

// echo writes msg on conn and reads it back.
func echo(t *testing.T, conn net.Conn, msg string) {
	t.Helper()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo: got %q, want %q", got, msg)
	}
}

func newLogger() (*slog.Logger, *testenv.Buffer) {
	b := &testenv.Buffer{}
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
