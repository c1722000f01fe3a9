package config

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

// Encode returns the port as a TOML file: a header comment, then only the
// keys whose value differs from the default, in a fixed order (top-level
// keys, then [trust], [net], [tty], [serial]). Parse(Encode(p)) gives back
// p. The port is validated first; an invalid port is not encoded.
func (p *Port) Encode() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	q := *p
	q.SetDefaults()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# vsp port %q: the tty %s bridged to ", q.Name, q.Link)
	switch {
	case q.Listen != "":
		fmt.Fprintf(&b, "a device connecting to %s.\n", q.Listen)
	default:
		fmt.Fprintf(&b, "%s.\n", strings.Join(q.Addrs(), ", "))
	}
	b.WriteString("# Keys left out have their default; see docs/configuration.md.\n")
	b.WriteString("# The daemon reloads this file when it changes.\n\n")

	w := &tomlWriter{b: &b}
	w.str("link", q.Link, "")
	w.str("device", q.Device, "")
	if q.Devices != nil {
		w.kv("devices", quoteList(q.Devices))
	}
	w.str("listen", q.Listen, "")
	w.str("device_mac", q.DeviceMAC, "")
	if len(q.AllowFrom) > 0 {
		w.kv("allow_from", quoteList(q.AllowFrom))
	}
	if q.ReplaceSession {
		w.kv("replace_session", "true")
	}
	w.str("tls", q.TLS, DefaultTLS)
	if q.Buffer != DefaultBuffer {
		if q.Buffer%KiB == 0 {
			w.kv("buffer", strconv.Quote(q.Buffer.String()))
		} else {
			w.kv("buffer", strconv.FormatInt(int64(q.Buffer), 10))
		}
	}
	w.str("stale_data", q.StaleData, DefaultStaleData)
	if q.RFC2217 {
		w.kv("rfc2217", "true")
	}
	if q.StrictSerial {
		w.kv("strict_serial", "true")
	}
	w.str("connect", q.Connect, DefaultConnect)
	w.dur("release_after", q.ReleaseAfter, 0)
	w.str("transport", q.Transport, DefaultTransport)
	if q.Transport == TransportUDP && q.DatagramSize != DefaultDatagramSize {
		w.kv("datagram_size", strconv.Itoa(q.DatagramSize))
	}

	w.table("trust")
	pin := ""
	if q.Trust.Pin != "" {
		pin, _ = tlsconn.ParsePin(q.Trust.Pin) // validated above
	}
	if !(q.Trust.Mode == TrustPin && pin != "") {
		w.str("mode", q.Trust.Mode, "")
	}
	w.str("pin", pin, "")
	w.str("ca_file", q.Trust.CAFile, "")
	w.str("server_name", q.Trust.ServerName, "")

	w.table("net")
	w.dur("dial_timeout", q.Net.DialTimeout, DefaultDialTimeout)
	w.dur("keepalive_idle", q.Net.KeepAliveIdle, DefaultKeepAliveIdle)
	w.dur("keepalive_interval", q.Net.KeepAliveInterval, DefaultKeepAliveInterval)
	w.integer("keepalive_count", q.Net.KeepAliveCount, DefaultKeepAliveCount)
	w.dur("user_timeout", q.Net.UserTimeout, DefaultUserTimeout)
	w.dur("backoff_min", q.Net.BackoffMin, DefaultBackoffMin)
	w.dur("backoff_max", q.Net.BackoffMax, DefaultBackoffMax)

	w.table("tty")
	w.str("owner", q.TTY.Owner, "")
	w.str("group", q.TTY.Group, "")
	if q.TTY.Mode != DefaultTTYMode {
		w.kv("mode", strconv.Quote(fmt.Sprintf("%04o", uint32(q.TTY.Mode.Perm()))))
	}

	w.table("serial")
	w.integer("baud", q.Serial.Baud, 0) // [serial]: not set unless given
	w.integer("data_bits", q.Serial.DataBits, 0)
	w.str("parity", q.Serial.Parity, "")
	w.integer("stop_bits", q.Serial.StopBits, 0)
	w.str("flow", q.Serial.Flow, "")

	w.table("trace")
	w.str("file", q.Trace.File, "")
	if q.Trace.MaxSize != 0 {
		w.kv("max_size", strconv.FormatInt(int64(q.Trace.MaxSize), 10))
	}
	if q.Trace.File != "" {
		w.integer("max_files", q.Trace.MaxFiles, DefaultTraceFiles)
		w.str("format", q.Trace.Format, DefaultTraceFormat)
	}
	return b.Bytes(), nil
}

// tomlWriter writes key = value lines, emitting a table header only before
// the first key of that table.
type tomlWriter struct {
	b       *bytes.Buffer
	pending string
}

func (w *tomlWriter) table(name string) { w.pending = name }

func (w *tomlWriter) kv(key, val string) {
	if w.pending != "" {
		fmt.Fprintf(w.b, "\n[%s]\n", w.pending)
		w.pending = ""
	}
	fmt.Fprintf(w.b, "%s = %s\n", key, val)
}

func (w *tomlWriter) str(key, val, def string) {
	if val != def {
		w.kv(key, quote(val))
	}
}

func (w *tomlWriter) integer(key string, val, def int) {
	if val != def {
		w.kv(key, strconv.Itoa(val))
	}
}

func (w *tomlWriter) dur(key string, val, def time.Duration) {
	if val != def {
		w.kv(key, quote(val.String()))
	}
}

// quote returns s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// FilePerm is the mode for port files written by `vsp create`: readable by
// all (they hold no secrets; a pin is public), writable by the owner.
const FilePerm os.FileMode = 0o644
