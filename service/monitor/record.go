package monitor

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind says what a Record reports.
type Kind string

// Record kinds. KindData records carry bytes; the others are the port's
// events, in order with the data.
const (
	KindData      Kind = "data"      // bytes, in Dir
	KindOpen      Kind = "open"      // an application opened the port
	KindClose     Kind = "close"     // the last application closed it
	KindSettings  Kind = "settings"  // the application changed its serial settings (Detail)
	KindLinkUp    Kind = "link-up"   // the link to the device is up (Detail: address, TLS)
	KindLinkDown  Kind = "link-down" // the link went down (Detail: why)
	KindHeld      Kind = "held"      // Bytes from the application kept in the outage buffer, or data held by the mismatch guard (Detail)
	KindReleased  Kind = "released"  // Bytes from the outage buffer sent, or the mismatch guard's hold lifted
	KindLost      Kind = "lost"      // Bytes counted as possibly lost
	KindDiscarded Kind = "discarded" // Bytes from the device dropped: no application had the port open
	KindFlush     Kind = "flush"     // the application flushed its input or output (tcflush; Detail); Bytes: what vsp dropped of it
	KindDropped   Kind = "dropped"   // Bytes and Records this observer did not get: it was too slow
	KindWatching  Kind = "watching"  // the first record of a monitor: it now sees everything the port does
	KindGone      Kind = "gone"      // the last record of a port: it was deleted
)

// Directions of a KindData record.
const (
	ToDevice = "app>dev" // written by the application, going to the device
	ToApp    = "dev>app" // from the device, going to the application
)

// Record is one thing that happened on a port: bytes in one direction or
// an event. Its JSON form is what GET /v1/monitor streams (one object a
// line) and what a JSON trace file holds.
type Record struct {
	Time    time.Time `json:"time"`
	Port    string    `json:"port"`
	Kind    Kind      `json:"kind"`
	Dir     string    `json:"dir,omitempty"`     // data: ToDevice or ToApp
	Hex     string    `json:"hex,omitempty"`     // data: the bytes, as lowercase hex
	Bytes   uint64    `json:"bytes,omitempty"`   // data: len(Data); held, released, lost, discarded, dropped: how many
	Records uint64    `json:"records,omitempty"` // dropped: how many records
	Detail  string    `json:"detail,omitempty"`  // events: what happened, in words
	Data    []byte    `json:"-"`                 // data: the bytes (Hex in JSON)
}

// MarshalJSON fills Hex from Data.
func (r Record) MarshalJSON() ([]byte, error) { return appendJSON(nil, r), nil }

// appendJSON appends r as a JSON object, the form the field tags describe,
// written by hand: records are encoded at the rate bytes cross the port.
func appendJSON(buf []byte, r Record) []byte {
	buf = append(buf, `{"time":"`...)
	buf = r.Time.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, `","port":`...)
	buf = appendJSONString(buf, r.Port)
	buf = append(buf, `,"kind":`...)
	buf = appendJSONString(buf, string(r.Kind))
	if r.Dir != "" {
		buf = append(buf, `,"dir":`...)
		buf = appendJSONString(buf, r.Dir)
	}
	n := r.Bytes
	switch {
	case len(r.Data) > 0:
		buf = append(buf, `,"hex":"`...)
		buf = hex.AppendEncode(buf, r.Data)
		buf = append(buf, '"')
		n = uint64(len(r.Data))
	case r.Hex != "":
		buf = append(buf, `,"hex":`...)
		buf = appendJSONString(buf, r.Hex)
	}
	if n != 0 {
		buf = append(buf, `,"bytes":`...)
		buf = strconv.AppendUint(buf, n, 10)
	}
	if r.Records != 0 {
		buf = append(buf, `,"records":`...)
		buf = strconv.AppendUint(buf, r.Records, 10)
	}
	if r.Detail != "" {
		buf = append(buf, `,"detail":`...)
		buf = appendJSONString(buf, r.Detail)
	}
	return append(buf, '}')
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD, as encoding/json does.
func appendJSONString(buf []byte, s string) []byte {
	const digits = "0123456789abcdef"
	buf = append(buf, '"')
	for _, c := range s { // ranging a string turns invalid UTF-8 into U+FFFD
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', byte(c))
		case c < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', digits[c>>4], digits[c&15])
		default:
			buf = utf8.AppendRune(buf, c)
		}
	}
	return append(buf, '"')
}

// UnmarshalJSON fills Data from Hex.
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	var q plain
	if err := json.Unmarshal(b, &q); err != nil {
		return err
	}
	*r = Record(q)
	if r.Hex != "" {
		d, err := hex.DecodeString(r.Hex)
		if err != nil {
			return fmt.Errorf("monitor: record hex: %w", err)
		}
		r.Data = d
	}
	return nil
}

// Format is how records are written out.
type Format string

// Output formats.
const (
	FormatHexdump Format = "hexdump" // 16 bytes a line, hex pairs and an ASCII column (hexdump -C)
	FormatASCII   Format = "ascii"   // printable text, escapes for the rest
	FormatJSON    Format = "json"    // one JSON object a line
)

// TimeLayout is the timestamp of text records: local time to the
// microsecond.
const TimeLayout = "2006-01-02 15:04:05.000000"

// Encoder writes records in one format. It is the one encoder of records:
// `vsp monitor` and trace files both use it.
type Encoder struct {
	Format   Format
	ShowPort bool // text formats: name the port on every line (several ports interleaved)
}

// Append appends r's encoding to buf, ending with a newline, and returns
// the extended buffer.
func (e Encoder) Append(buf []byte, r Record) []byte {
	if e.Format == FormatJSON {
		return append(appendJSON(buf, r), '\n')
	}
	start := len(buf)
	buf = r.Time.AppendFormat(buf, TimeLayout)
	buf = append(buf, ' ')
	if e.ShowPort {
		buf = append(append(buf, r.Port...), ' ')
	}
	if r.Kind != KindData {
		buf = append(buf, eventText(r)...)
		return append(buf, '\n')
	}
	buf = append(append(buf, r.Dir...), ' ')
	if e.Format == FormatASCII {
		buf = appendEscaped(buf, r.Data)
		return append(buf, '\n')
	}
	head := len(buf) - start // each line starts with the same head
	for off := 0; off < len(r.Data); off += 16 {
		if off > 0 {
			buf = append(buf, buf[start:start+head]...)
		}
		buf = appendHexLine(buf, off, r.Data[off:min(off+16, len(r.Data))])
	}
	return buf
}

// eventText is an event record in words, starting with its kind.
func eventText(r Record) string {
	var b strings.Builder
	b.WriteString("-- ")
	b.WriteString(string(r.Kind))
	switch r.Kind {
	case KindDropped:
		fmt.Fprintf(&b, " %d bytes not shown (%d records dropped: the reader fell behind)", r.Bytes, r.Records)
	case KindHeld, KindReleased, KindLost, KindDiscarded, KindFlush:
		if r.Bytes > 0 {
			fmt.Fprintf(&b, " %d bytes", r.Bytes)
		}
	}
	if r.Detail != "" {
		b.WriteString(": ")
		b.WriteString(r.Detail)
	}
	return b.String()
}

// appendHexLine appends one hexdump -C line of at most 16 bytes at offset
// off: "00000010  01 02 41 42 43 ff  ...  |..ABC.|". Unlike hexdump -C
// there is no wider gap after the eighth byte: every pair is separated by
// one space, so a byte sequence can be grepped for.
func appendHexLine(buf []byte, off int, p []byte) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		buf = append(buf, digits[(off>>shift)&15])
	}
	buf = append(buf, ' ')
	for i := range 16 {
		if i < len(p) {
			buf = append(buf, ' ', digits[p[i]>>4], digits[p[i]&15])
		} else {
			buf = append(buf, "   "...)
		}
	}
	buf = append(buf, "  |"...)
	for _, c := range p {
		if c < 0x20 || c > 0x7e {
			c = '.'
		}
		buf = append(buf, c)
	}
	return append(buf, "|\n"...)
}

// appendEscaped appends p as printable text: printable ASCII as is, \r \n
// \t \\ escaped, anything else as \xHH.
func appendEscaped(buf []byte, p []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range p {
		switch {
		case c == '\\':
			buf = append(buf, `\\`...)
		case c == '\r':
			buf = append(buf, `\r`...)
		case c == '\n':
			buf = append(buf, `\n`...)
		case c == '\t':
			buf = append(buf, `\t`...)
		case c >= 0x20 && c <= 0x7e:
			buf = append(buf, c)
		default:
			buf = append(buf, '\\', 'x', digits[c>>4], digits[c&15])
		}
	}
	return buf
}
