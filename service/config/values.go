package config

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// ByteSize is a size in bytes. In files it is an integer, or a string with
// a binary unit: "65536", "512B", "64KiB", "1MiB".
type ByteSize int64

// Units for ByteSize.
const (
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
)

// String formats s with the largest unit that divides it exactly, in the
// form ParseByteSize accepts.
func (s ByteSize) String() string {
	switch {
	case s != 0 && s%MiB == 0:
		return strconv.FormatInt(int64(s/MiB), 10) + "MiB"
	case s != 0 && s%KiB == 0:
		return strconv.FormatInt(int64(s/KiB), 10) + "KiB"
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// ParseByteSize parses "65536", "65536B", "64KiB" or "1MiB" (units are
// powers of 1024 and case-insensitive; a space before the unit is allowed).
// Decimal units (K, KB, M, MB) are refused as ambiguous.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	var mult ByteSize
	switch strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "kib":
		mult = KiB
	case "mib":
		mult = MiB
	case "gib":
		mult = 1 << 30
	case "k", "kb", "m", "mb", "g", "gb":
		return 0, fmt.Errorf("config: size %q: ambiguous unit %q; use KiB or MiB (powers of 1024)", s, unit)
	default:
		return 0, fmt.Errorf(`config: want a size such as 65536, "64KiB" or "1MiB", got %q`, s)
	}
	if num == "" {
		return 0, fmt.Errorf(`config: want a size such as 65536, "64KiB" or "1MiB", got %q`, s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > int64(1<<62)/int64(mult) {
		return 0, fmt.Errorf("config: size %q is too large", s)
	}
	return ByteSize(n) * mult, nil
}

// NormalizePin checks a certificate pin (the SHA-256 fingerprint of the
// device certificate's DER encoding) and returns it as "sha256:" followed by
// 64 lowercase hex digits. It accepts what tlsconn.ParsePin accepts: upper-
// or lowercase hex, an optional "sha256:", "sha256=", "sha-256:" or
// "SHA256 Fingerprint=" prefix in any case, and bytes separated by colons,
// so the output of `openssl x509 -noout -fingerprint -sha256` can be pasted
// as it is.
func NormalizePin(s string) (string, error) {
	bad := fmt.Errorf("want sha256:<64 hex digits>, got %q", s)
	t := strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"sha256 fingerprint=", "sha256:", "sha256=", "sha-256:"} {
		if strings.HasPrefix(t, p) {
			t = t[len(p):]
			break
		}
	}
	if strings.Contains(t, ":") {
		parts := strings.Split(t, ":")
		if len(parts) != pinHexLen/2 {
			return "", bad
		}
		for _, p := range parts {
			if len(p) != 2 {
				return "", bad
			}
		}
		t = strings.Join(parts, "")
	}
	if len(t) != pinHexLen {
		return "", bad
	}
	if _, err := hex.DecodeString(t); err != nil {
		return "", bad
	}
	return "sha256:" + t, nil
}

// checkHostPort validates "host:port": the port is a number 1..65535, the
// host an IPv4 address, a bracketed IPv6 address or a DNS name. With
// hostOptional (a listen address) the host may be empty, meaning all
// interfaces.
func checkHostPort(s string, hostOptional bool) error {
	example := `"10.1.0.1:1470"`
	if hostOptional {
		example = `":1470" or "192.168.0.10:1470"`
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		if !strings.Contains(s, ":") || (strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[")) {
			if ip, perr := netip.ParseAddr(s); perr == nil && ip.Is6() {
				return fmt.Errorf("want host:port with the IPv6 address in brackets, e.g. \"[%s]:1470\", got %q", s, s)
			}
			return fmt.Errorf("missing port: want host:port, e.g. %s, got %q", example, s)
		}
		return fmt.Errorf("want host:port, e.g. %s, got %q", example, s)
	}
	n, err := strconv.Atoi(port)
	if err != nil || port[0] == '+' || port[0] == '-' || n < 1 || n > 65535 {
		return fmt.Errorf("want a port number 1..65535, got %q in %q", port, s)
	}
	if host == "" {
		if hostOptional {
			return nil
		}
		return fmt.Errorf("missing host: want host:port, e.g. %s, got %q", example, s)
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(s, "[") {
		return fmt.Errorf("want host:port with an IPv6 address in brackets, got %q", s)
	}
	if err := checkHost(host); err != nil {
		return fmt.Errorf("%v in %q", err, s)
	}
	return nil
}

// checkHost validates an IP address or DNS name.
func checkHost(host string) error {
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if strings.Contains(host, ":") {
		return fmt.Errorf("invalid IPv6 address %q", host)
	}
	if len(host) > 253 {
		return fmt.Errorf("host name longer than 253 characters")
	}
	numeric := true
	for _, label := range strings.Split(strings.TrimSuffix(host, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("invalid host name %q", host)
		}
		for _, c := range []byte(label) {
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-', c == '_':
				numeric = false
			default:
				return fmt.Errorf("invalid host name %q", host)
			}
		}
	}
	if numeric {
		return fmt.Errorf("invalid IPv4 address %q", host)
	}
	return nil
}
