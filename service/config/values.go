package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
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

// ParseMode parses a tty permission written in octal: "0660", "660" or
// "0o660". It is the one parser of a mode, for the tty.mode key and the
// --mode flag. Mode 0 is refused (nobody could open the tty), as are bits
// above 0777.
func ParseMode(s string) (os.FileMode, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	m, err := strconv.ParseUint(t, 8, 32)
	if t == "" || err != nil || strings.ContainsAny(t, "+-_") {
		return 0, fmt.Errorf(`want an octal mode such as "0660", got %q`, s)
	}
	if m > 0o777 {
		return 0, fmt.Errorf(`want at most "0777" (no setuid, setgid or sticky bits), got %q`, s)
	}
	if m == 0 {
		return 0, errors.New(`mode 0 would make the port unusable; want e.g. "0660", or leave it out for the default`)
	}
	return os.FileMode(m), nil
}

// ParseMAC parses a device MAC address: 12 hex digits in either case,
// optionally grouped by ':', '-' or '.' ("00:30:f9:00:00:01",
// "00-30-F9-00-00-01", "0030.f900.0001", "0030F9000001"). It is the one
// parser of a MAC, for the device_mac key and the --device-mac flag; the
// bridge receives the parsed address.
func ParseMAC(s string) (net.HardwareAddr, error) {
	h := strings.NewReplacer(":", "", "-", "", ".", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 6 {
		return nil, fmt.Errorf("want 6 hex bytes such as \"00:30:f9:00:00:01\", got %q", s)
	}
	return net.HardwareAddr(b), nil
}

// ParseDuration parses a positive Go duration ("5s", "250ms", "1m30s"): the
// one parser of the duration keys and their flags.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf(`want a duration such as "5s", "250ms" or "1m30s", got %q`, s)
	}
	if d <= 0 {
		return 0, fmt.Errorf("want a positive duration, got %q", s)
	}
	return d, nil
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
