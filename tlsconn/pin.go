package tlsconn

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

const pinPrefix = "sha256:"

// Fingerprint returns the SHA-256 fingerprint of the certificate's DER
// encoding as "sha256:<64 lower-case hex digits>", the form [ParsePin]
// returns and `openssl x509 -fingerprint -sha256` shows (without colons).
func Fingerprint(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	sum := sha256.Sum256(cert.Raw)
	return pinPrefix + hex.EncodeToString(sum[:])
}

// ParsePin normalises a SHA-256 certificate pin to "sha256:<64 lower-case
// hex digits>". It accepts upper or lower case, an optional "sha256:" or
// "sha256=" prefix (any case, as in OpenSSL's "SHA256 Fingerprint=" output)
// and bytes separated by colons (AB:CD:...). Other algorithms are refused.
func ParsePin(s string) (string, error) {
	orig := s
	low := strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"sha256 fingerprint=", "sha256:", "sha256=", "sha-256:"} {
		if strings.HasPrefix(low, p) {
			low = low[len(p):]
			break
		}
	}
	if i := strings.IndexAny(low, ":="); i >= 0 && i < 8 && !isHex(low[:i]) {
		return "", fmt.Errorf("%w %q: only sha256 fingerprints are supported", ErrInvalidPin, orig)
	}
	if strings.Contains(low, ":") {
		parts := strings.Split(low, ":")
		if len(parts) != sha256.Size {
			return "", fmt.Errorf("%w %q: want 32 colon-separated hex bytes", ErrInvalidPin, orig)
		}
		for _, p := range parts {
			if len(p) != 2 {
				return "", fmt.Errorf("%w %q: want 32 colon-separated hex bytes", ErrInvalidPin, orig)
			}
		}
		low = strings.Join(parts, "")
	}
	if len(low) != 2*sha256.Size {
		return "", fmt.Errorf("%w %q: want sha256:<64 hex digits>, got %d hex digits", ErrInvalidPin, orig, len(low))
	}
	if !isHex(low) {
		return "", fmt.Errorf("%w %q: not hexadecimal", ErrInvalidPin, orig)
	}
	return pinPrefix + low, nil
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
