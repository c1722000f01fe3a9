package tlsconn

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// loadCAFile reads a PEM bundle of CA certificates.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tlsconn: CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%w: %s contains no PEM certificate", ErrInvalidConfig, path)
	}
	return pool, nil
}

// verifyChain verifies the peer's chain against roots and name (a DNS name
// or an IP address). Note that Go refuses SHA-1 signatures in chains, so a
// device's own self-signed SHA-1 certificate cannot be trusted this way: use
// a pin.
func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, name string) error {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       name,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUntrustedCert, name, err)
	}
	return nil
}

// knownDevice is one line of a known-devices file:
//
//	<host:port> <sha256:hex> <first-seen RFC 3339>
type knownDevice struct {
	addr, fingerprint string
	firstSeen         time.Time
}

// readKnownDevices parses a known-devices file; a missing file is empty.
// Blank lines and lines starting with '#' are ignored.
func readKnownDevices(path string) ([]knownDevice, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tlsconn: known devices: %w", err)
	}
	return parseKnownDevices(path, b)
}

func parseKnownDevices(path string, b []byte) ([]knownDevice, error) {
	var out []knownDevice
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: %s:%d: want \"HOST:PORT sha256:HEX FIRST-SEEN\"", ErrInvalidConfig, path, n)
		}
		pin, err := ParsePin(f[1])
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		t, err := time.Parse(time.RFC3339, f[2])
		if err != nil {
			return nil, fmt.Errorf("%w: %s:%d: first-seen time: %w", ErrInvalidConfig, path, n, err)
		}
		// Written back in UTC: it must stay a four-digit year there.
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return nil, fmt.Errorf("%w: %s:%d: first-seen time %s is out of range", ErrInvalidConfig, path, n, f[2])
		}
		out = append(out, knownDevice{addr: f[0], fingerprint: pin, firstSeen: t})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tlsconn: known devices %s: %w", path, err)
	}
	return out, nil
}

// checkKnownDevice implements trust on first use: the first fingerprint seen
// for addr is recorded in path; a different one later is refused with
// *CertChangedError.
func checkKnownDevice(path, addr, fingerprint string, log *slog.Logger) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("tlsconn: known devices: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return fmt.Errorf("tlsconn: known devices: %w", err)
	}
	defer unlock()
	known, err := readKnownDevices(path)
	if err != nil {
		return err
	}
	for _, k := range known {
		if k.addr != addr {
			continue
		}
		if k.fingerprint != fingerprint {
			return &CertChangedError{Addr: addr, Old: k.fingerprint, New: fingerprint, FirstSeen: k.firstSeen, File: path}
		}
		return nil
	}
	now := time.Now().UTC().Truncate(time.Second)
	known = append(known, knownDevice{addr: addr, fingerprint: fingerprint, firstSeen: now})
	if err := writeKnownDevices(path, known); err != nil {
		return err
	}
	log.Warn("tlsconn: trusting device certificate on first use", "addr", addr, "fingerprint", fingerprint, "file", path)
	return nil
}

// writeKnownDevices replaces path atomically (temporary file in the same
// directory, fsync, rename) with mode 0600.
func writeKnownDevices(path string, known []knownDevice) error {
	var buf bytes.Buffer
	buf.WriteString("# vsp known devices: HOST:PORT sha256:FINGERPRINT FIRST-SEEN (trust on first use)\n")
	for _, k := range known {
		fmt.Fprintf(&buf, "%s %s %s\n", k.addr, k.fingerprint, k.firstSeen.UTC().Format(time.RFC3339))
	}
	if err := writeFileAtomic(path, buf.Bytes()); err != nil {
		return fmt.Errorf("tlsconn: known devices: %w", err)
	}
	return nil
}

// KnownDevice is one entry of a known-devices file.
type KnownDevice struct {
	Addr        string    // HOST:PORT as dialed (or the device identity in listen mode)
	Fingerprint string    // "sha256:<hex>"
	FirstSeen   time.Time // when this fingerprint was recorded
}

// AcceptKnownDevice records fingerprint as the trusted certificate of addr
// in the known-devices file at path, replacing any earlier entry (the
// administrator's answer to a [CertChangedError]: `vsp trust --accept`).
// The file is rewritten atomically with mode 0600, under the same lock
// trust-on-first-use takes. It returns the replaced entry, if any.
func AcceptKnownDevice(path, addr, fingerprint string) (old KnownDevice, replaced bool, err error) {
	fp, err := ParsePin(fingerprint)
	if err != nil {
		return old, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return old, false, fmt.Errorf("tlsconn: known devices: %w", err)
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return old, false, fmt.Errorf("tlsconn: known devices: %w", err)
	}
	defer unlock()
	known, err := readKnownDevices(path)
	if err != nil {
		return old, false, err
	}
	now := time.Now().UTC().Truncate(time.Second)
	out := known[:0]
	for _, k := range known {
		if k.addr == addr {
			old, replaced = KnownDevice{Addr: k.addr, Fingerprint: k.fingerprint, FirstSeen: k.firstSeen}, true
			continue
		}
		out = append(out, k)
	}
	out = append(out, knownDevice{addr: addr, fingerprint: fp, firstSeen: now})
	return old, replaced, writeKnownDevices(path, out)
}
