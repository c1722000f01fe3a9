package rfc2217

import "bytes"

// Telnet command bytes (RFC 854). Each follows an IAC byte on the wire.
const (
	SE   byte = 240 // end of subnegotiation
	NOP  byte = 241 // no operation
	DM   byte = 242 // data mark
	BRK  byte = 243 // break (the Telnet command, not the serial BREAK)
	IP   byte = 244 // interrupt process
	AO   byte = 245 // abort output
	AYT  byte = 246 // are you there
	EC   byte = 247 // erase character
	EL   byte = 248 // erase line
	GA   byte = 249 // go ahead
	SB   byte = 250 // start of subnegotiation
	WILL byte = 251
	WONT byte = 252
	DO   byte = 253
	DONT byte = 254
	IAC  byte = 255 // interpret as command; doubled in data
)

// Telnet options used by this package.
const (
	OptBinary  byte = 0  // RFC 856 transmit binary
	OptEcho    byte = 1  // RFC 857
	OptSGA     byte = 3  // RFC 858 suppress go ahead
	OptComPort byte = 44 // RFC 2217 COM-PORT-OPTION
)

// DefaultMaxSubneg is the largest subnegotiation payload (option byte
// included, after IAC unescaping) a Decoder accepts when its limit is 0.
// The longest COM-PORT-OPTION message is a SIGNATURE text; everything else
// is at most 6 bytes.
const DefaultMaxSubneg = 256

// Event is a Telnet command decoded from the stream.
type Event struct {
	// Verb is the command byte: WILL, WONT, DO, DONT, SB, or one of the
	// argument-less commands (NOP, GA, ...).
	Verb byte
	// Option is the option for WILL/WONT/DO/DONT/SB.
	Option byte
	// Data is the subnegotiation payload after the option byte, with IAC
	// IAC already collapsed. It aliases the Decoder's buffer and is valid
	// only until the next call to Decode.
	Data []byte
}

// decoder states
const (
	stData   = iota // plain data
	stIAC           // IAC seen in data
	stOpt           // WILL/WONT/DO/DONT seen, waiting for the option byte
	stSB            // inside IAC SB ... (collecting payload)
	stSBIAC         // IAC seen inside a subnegotiation
	stBroken        // a protocol error happened; the stream is unusable
)

// Decoder is a streaming Telnet decoder: it separates data bytes from
// commands. The zero value is ready to use with DefaultMaxSubneg.
// A Decoder keeps state across calls, so commands split over several reads
// decode correctly. It never allocates on the data path, and at most once
// (MaxSubneg bytes) for subnegotiations.
type Decoder struct {
	// MaxSubneg limits the subnegotiation payload; 0 means DefaultMaxSubneg.
	MaxSubneg int

	state int
	verb  byte
	sb    []byte
	err   error
}

func (d *Decoder) max() int {
	if d.MaxSubneg > 0 {
		return d.MaxSubneg
	}
	return DefaultMaxSubneg
}

// Decode copies the data bytes of src to dst, unescaping IAC IAC, until it
// has decoded one complete command, dst is full, or src is consumed. It
// returns the number of data bytes written to dst and of bytes consumed from
// src; ev.Verb is non-zero when a command was completed (it ends at
// src[nSrc-1]). dst may be the same slice as src (decoding in place), as long
// as dst does not start after src.
//
// After a protocol violation Decode returns a *ProtocolError, and keeps
// returning it: the stream cannot be resynchronised.
func (d *Decoder) Decode(dst, src []byte) (nDst, nSrc int, ev Event, err error) {
	if d.state == stBroken {
		return 0, 0, Event{}, d.err
	}
	for nSrc < len(src) {
		switch d.state {
		case stData:
			rest := src[nSrc:]
			i := bytes.IndexByte(rest, IAC)
			if i < 0 {
				i = len(rest)
			}
			if i > 0 {
				n := copy(dst[nDst:], rest[:i])
				nDst += n
				nSrc += n
				if n < i {
					return nDst, nSrc, Event{}, nil // dst full
				}
			}
			if nSrc < len(src) { // at an IAC
				nSrc++
				d.state = stIAC
			}
		case stIAC:
			b := src[nSrc]
			nSrc++
			switch {
			case b == IAC:
				if nDst == len(dst) {
					nSrc-- // retry when there is room
					return nDst, nSrc, Event{}, nil
				}
				dst[nDst] = IAC
				nDst++
				d.state = stData
			case b == WILL || b == WONT || b == DO || b == DONT:
				d.verb = b
				d.state = stOpt
			case b == SB:
				d.sb = d.sb[:0]
				d.state = stSB
			case b == SE:
				return nDst, nSrc, Event{}, d.fail([]byte{IAC, SE}, "IAC SE outside a subnegotiation")
			case b > SE: // NOP, DM, BRK, IP, AO, AYT, EC, EL, GA
				d.state = stData
				return nDst, nSrc, Event{Verb: b}, nil
			default:
				return nDst, nSrc, Event{}, d.fail([]byte{IAC, b}, "IAC followed by non-command byte %d", b)
			}
		case stOpt:
			opt := src[nSrc]
			nSrc++
			d.state = stData
			return nDst, nSrc, Event{Verb: d.verb, Option: opt}, nil
		case stSB:
			rest := src[nSrc:]
			i := bytes.IndexByte(rest, IAC)
			if i < 0 {
				i = len(rest)
			}
			if len(d.sb)+i > d.max() {
				return nDst, nSrc, Event{}, d.fail(d.sb, "subnegotiation longer than %d bytes", d.max())
			}
			d.sb = append(d.sb, rest[:i]...)
			nSrc += i
			if nSrc < len(src) {
				nSrc++
				d.state = stSBIAC
			}
		case stSBIAC:
			b := src[nSrc]
			nSrc++
			switch b {
			case IAC:
				if len(d.sb)+1 > d.max() {
					return nDst, nSrc, Event{}, d.fail(d.sb, "subnegotiation longer than %d bytes", d.max())
				}
				d.sb = append(d.sb, IAC)
				d.state = stSB
			case SE:
				d.state = stData
				if len(d.sb) == 0 {
					return nDst, nSrc, Event{}, d.fail([]byte{IAC, SB, IAC, SE}, "empty subnegotiation")
				}
				return nDst, nSrc, Event{Verb: SB, Option: d.sb[0], Data: d.sb[1:]}, nil
			default:
				return nDst, nSrc, Event{}, d.fail(append(d.sb[:len(d.sb):len(d.sb)], IAC, b), "IAC %d inside a subnegotiation", b)
			}
		}
	}
	return nDst, nSrc, Event{}, nil
}

func (d *Decoder) fail(data []byte, format string, args ...any) error {
	d.state = stBroken
	d.err = protoErr(data, format, args...)
	return d.err
}

// AppendEscaped appends data to dst with every IAC (0xFF) doubled, as Telnet
// requires for data bytes and subnegotiation payloads.
func AppendEscaped(dst, data []byte) []byte {
	for len(data) > 0 {
		i := bytes.IndexByte(data, IAC)
		if i < 0 {
			return append(dst, data...)
		}
		dst = append(dst, data[:i+1]...)
		dst = append(dst, IAC)
		data = data[i+1:]
	}
	return dst
}

// AppendCommand appends IAC verb option (verb is WILL, WONT, DO or DONT).
func AppendCommand(dst []byte, verb, option byte) []byte {
	return append(dst, IAC, verb, option)
}
