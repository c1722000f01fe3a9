package device

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"time"
)

// Certificate validity as encoded by the device: the end is fixed.
var (
	certNotBefore = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	certNotAfter  = time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)
	oidEmail      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
)

const certEmail = "support@eztcp.com"

// GenerateKey generates an RSA key of bits (512, 768 or 1024) the way the
// device's "rsa keygen" does: two random primes of bits/2 each, e = 65537.
// Progress (candidate counts, as in the vendor's console) is written to
// progress, which may be nil. Keys under 1024 bits need GODEBUG
// rsa1024min=0 in the calling binary.
func GenerateKey(bits int, progress io.Writer) (*rsa.PrivateKey, error) {
	if bits != 512 && bits != 768 && bits != 1024 {
		return nil, &LimitError{Rule: RuleKeyBits, Detail: fmt.Sprintf("RSA key length %d not supported (512, 768 or 1024)", bits)}
	}
	if progress == nil {
		progress = io.Discard
	}
	e := big.NewInt(65537)
	one := big.NewInt(1)
	for {
		p, err := findPrime(bits/2, e, progress)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "rsa: find %dbits random prime q", bits/2)
		q, err := findPrime(bits/2, e, progress)
		if err != nil {
			return nil, err
		}
		if p.Cmp(q) == 0 {
			continue
		}
		n := new(big.Int).Mul(p, q)
		if n.BitLen() != bits {
			continue
		}
		pm, qm := new(big.Int).Sub(p, one), new(big.Int).Sub(q, one)
		phi := new(big.Int).Mul(pm, qm)
		d := new(big.Int).ModInverse(e, phi)
		if d == nil {
			continue
		}
		key := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: n, E: 65537},
			D:         d,
			Primes:    []*big.Int{p, q},
		}
		key.Precompute()
		if err := key.Validate(); err != nil {
			return nil, fmt.Errorf("device: rsa key: %w", err)
		}
		return key, nil
	}
}

// findPrime searches random odd candidates of the given size with the top
// two bits set, printing the candidate count at growing intervals.
func findPrime(bits int, e *big.Int, w io.Writer) (*big.Int, error) {
	buf := make([]byte, (bits+7)/8)
	next := 1
	one := big.NewInt(1)
	for count := 1; ; count++ {
		if _, err := io.ReadFull(rand.Reader, buf); err != nil {
			return nil, fmt.Errorf("device: random: %w", err)
		}
		buf[0] |= 0xc0
		buf[len(buf)-1] |= 1
		c := new(big.Int).SetBytes(buf)
		if count == next {
			fmt.Fprintf(w, "%d ", count)
			if next < 16 {
				next *= 2
			} else {
				next += 1 + count%7
			}
		}
		if !c.ProbablyPrime(20) {
			continue
		}
		if new(big.Int).GCD(nil, nil, e, new(big.Int).Sub(c, one)).Cmp(one) != 0 {
			continue
		}
		fmt.Fprint(w, "found\r\n")
		return c, nil
	}
}

// NewCertificate creates the device's self-signed host certificate for key:
// SHA-1 with RSA, subject C=KR, ST=Incheon, L=NamGu, O=Sollae Systems,
// OU=Research, CN=ip, emailAddress=support@eztcp.com, valid until
// 2049-12-31 23:59:59Z, CA:TRUE, no subjectAltName (like the device).
func NewCertificate(key *rsa.PrivateKey, ip string) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<31))
	if err != nil {
		return nil, fmt.Errorf("device: random: %w", err)
	}
	subject, err := deviceSubject(ip)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subject,
		RawIssuer:             subject,
		NotBefore:             certNotBefore,
		NotAfter:              certNotAfter,
		SignatureAlgorithm:    x509.SHA1WithRSA,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("device: certificate: %w", err)
	}
	return der, nil
}

// deviceSubject encodes the device's subject the way its firmware does:
// PrintableString values and an IA5String emailAddress.
func deviceSubject(ip string) ([]byte, error) {
	type atv struct {
		Type  asn1.ObjectIdentifier
		Value asn1.RawValue
	}
	str := func(tag int, v string) asn1.RawValue {
		return asn1.RawValue{Tag: tag, Bytes: []byte(v)}
	}
	attrs := []atv{
		{asn1.ObjectIdentifier{2, 5, 4, 6}, str(asn1.TagPrintableString, "KR")},
		{asn1.ObjectIdentifier{2, 5, 4, 8}, str(asn1.TagPrintableString, "Incheon")},
		{asn1.ObjectIdentifier{2, 5, 4, 7}, str(asn1.TagPrintableString, "NamGu")},
		{asn1.ObjectIdentifier{2, 5, 4, 10}, str(asn1.TagPrintableString, "Sollae Systems")},
		{asn1.ObjectIdentifier{2, 5, 4, 11}, str(asn1.TagPrintableString, "Research")},
		{asn1.ObjectIdentifier{2, 5, 4, 3}, str(asn1.TagPrintableString, ip)},
		{oidEmail, str(asn1.TagIA5String, certEmail)},
	}
	type rdnSET []atv // the name suffix makes encoding/asn1 emit a SET
	seq := make([]rdnSET, len(attrs))
	for i, a := range attrs {
		seq[i] = rdnSET{a}
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		return nil, fmt.Errorf("device: certificate subject: %w", err)
	}
	return der, nil
}

// Fingerprint returns "sha256:<hex>" of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// certMatchesKey reports whether the certificate's public key is key's.
func certMatchesKey(cert *x509.Certificate, key *rsa.PrivateKey) bool {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	return ok && key != nil && pub.Equal(key.Public())
}

// certCN returns the certificate's subject common name.
func certCN(cert *x509.Certificate) string { return cert.Subject.CommonName }

func keyPEM(key *rsa.PrivateKey) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
}

func certPEM(der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

// parseKeyPEM decodes a PKCS#1 RSA key.
func parseKeyPEM(s string) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "RSA PRIVATE KEY" {
		return nil, fmt.Errorf("%w: key is not an RSA PRIVATE KEY PEM block", ErrFlashCorrupt)
	}
	k, err := x509.ParsePKCS1PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: key: %w", ErrFlashCorrupt, err)
	}
	return k, nil
}

// parseCertPEM decodes a certificate.
func parseCertPEM(s string) (*x509.Certificate, error) {
	b, _ := pem.Decode([]byte(s))
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: cert is not a CERTIFICATE PEM block", ErrFlashCorrupt)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: cert: %w", ErrFlashCorrupt, err)
	}
	return c, nil
}

func parseDER(der []byte) (*x509.Certificate, error) { return x509.ParseCertificate(der) }
