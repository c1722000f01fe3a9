package monitor

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
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
	KindDropped   Kind = "dropped"   // Bytes and Records this observer did not get: it was too slow
	KindWatching  Kind = "watching"  // the first record of a monitor: it now sees everything the port does
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
func (r Record) MarshalJSON() ([]byte, error) {
	type plain Record
	q := plain(r)
	if len(r.Data) > 0 {
		q.Hex = hex.EncodeToString(r.Data)
		q.Bytes = uint64(len(r.Data))
	}
	return json.Marshal(q)
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

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case FormatHexdump, FormatASCII, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("monitor: format %q: want hexdump, ascii or json", s)
}

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
		b, err := json.Marshal(r)
		if err != nil { // cannot happen: a Record has only plain fields
			b = []byte(strconv.Quote(err.Error()))
		}
		return append(append(buf, b...), '\n')
	}
	head := r.Time.Format(TimeLayout) + " "
	if e.ShowPort {
		head += r.Port + " "
	}
	if r.Kind != KindData {
		head += eventText(r)
		return append(append(buf, head...), '\n')
	}
	head += r.Dir + " "
	if e.Format == FormatASCII {
		buf = append(buf, head...)
		buf = appendEscaped(buf, r.Data)
		return append(buf, '\n')
	}
	for off := 0; off < len(r.Data); off += 16 {
		buf = append(buf, head...)
		buf = appendHexLine(buf, off, r.Data[off:min(off+16, len(r.Data))])
	}
	return buf
}

// Write writes r's encoding to w.
func (e Encoder) Write(w io.Writer, r Record) error {
	_, err := w.Write(e.Append(nil, r))
	return err
}

// eventText is an event record in words, starting with its kind.
func eventText(r Record) string {
	var b strings.Builder
	b.WriteString("-- ")
	b.WriteString(string(r.Kind))
	switch r.Kind {
	case KindDropped:
		fmt.Fprintf(&b, " %d bytes not shown (%d records dropped: the reader fell behind)", r.Bytes, r.Records)
	case KindHeld, KindReleased, KindLost, KindDiscarded:
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
	buf = fmt.Appendf(buf, "%08x ", off)
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
