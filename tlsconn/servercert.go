package tlsconn

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// ServerCertBits is the RSA key size of a generated server certificate:
// RSA (not ECDSA) because ezTCP-class devices only speak RSA key exchange.
const ServerCertBits = 2048

// LoadOrCreateServerCert returns the host's certificate for device-initiated
// (listen mode) links, stored with its private key as PEM in path. On first
// use it generates an RSA key and a self-signed certificate for name and
// writes them atomically with mode 0600. It reports whether it created the
// file.
func LoadOrCreateServerCert(path, name string) (*tls.Certificate, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		cert, err := tls.X509KeyPair(b, b)
		if err != nil {
			return nil, false, fmt.Errorf("%w: server certificate %s: %w", ErrInvalidConfig, path, err)
		}
		return &cert, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("tlsconn: server certificate: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, ServerCertBits)
	if err != nil {
		return nil, false, fmt.Errorf("tlsconn: server key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, false, fmt.Errorf("tlsconn: server certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"vsp"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(20, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, false, fmt.Errorf("tlsconn: server certificate: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	pemBytes = append(pemBytes, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("tlsconn: server certificate: %w", err)
	}
	if err := writeFileAtomic(path, pemBytes); err != nil {
		return nil, false, fmt.Errorf("tlsconn: server certificate: %w", err)
	}
	cert, err := tls.X509KeyPair(pemBytes, pemBytes)
	if err != nil {
		return nil, false, fmt.Errorf("tlsconn: server certificate: %w", err)
	}
	return &cert, true, nil
}

// writeFileAtomic replaces path with data: a temporary file in the same
// directory, mode 0600, fsync, rename.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	fail := func(err error) error {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	// Make the rename itself durable: a power loss must not bring back the
	// old file (for known devices, a forgotten first-use record would let
	// the next certificate be trusted as a first use).
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
