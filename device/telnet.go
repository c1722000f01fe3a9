package device

import (
	"bufio"
	"errors"
	"io"
)

// Telnet protocol bytes (RFC 854, 857, 858).
const (
	tnSE   = 240
	tnSB   = 250
	tnWILL = 251
	tnWONT = 252
	tnDO   = 253
	tnDONT = 254
	tnIAC  = 255

	optEcho = 1
	optSGA  = 3
)

// maxLine is the longest console command line accepted.
const maxLine = 256

// Line errors: the offending line has been consumed; the console reports it
// and carries on.
var (
	errLineTooLong = errors.New("line too long")
	errBinary      = errors.New("invalid characters")
)

// telnetReader reads console lines from a Telnet client: it answers option
// negotiation, skips subnegotiations, accepts CR LF, CR NUL, CR and LF line
// ends, handles backspace and optionally echoes what is typed.
type telnetReader struct {
	r    *bufio.Reader
	w    io.Writer // negotiation replies and echo
	echo bool      // echo typed characters (when we said WILL ECHO and not reading a password)
	ours [256]bool // options we have enabled (WILL)
	// charMode: ECHO and SGA are ours (the password prompt: the client
	// neither echoes nor waits for a line). Outside it both are off, so a
	// Telnet client stays in line mode with local echo: the two always
	// change together, or a client shows "lsh>help^M".
	charMode bool
	his      [256]bool // options the client has enabled (DO sent by us)
	skipLF   bool      // the previous line ended with CR: ignore a following LF or NUL
}

func newTelnetReader(r io.Reader, w io.Writer) *telnetReader {
	return &telnetReader{r: bufio.NewReaderSize(r, 512), w: w}
}

// will announces an option of ours (WILL) or withdraws it (WONT).
func (t *telnetReader) will(opt byte, on bool) {
	if t.ours[opt] == on {
		return
	}
	t.ours[opt] = on
	cmd := byte(tnWONT)
	if on {
		cmd = tnWILL
	}
	t.w.Write([]byte{tnIAC, cmd, opt})
}

// setCharMode offers (WILL) or withdraws (WONT) ECHO and SGA together.
func (t *telnetReader) setCharMode(on bool) {
	t.charMode = on
	t.will(optEcho, on)
	t.will(optSGA, on)
}

// negotiate answers one option command from the client.
func (t *telnetReader) negotiate(cmd, opt byte) {
	switch cmd {
	case tnDO:
		if (opt == optEcho || opt == optSGA) && t.charMode {
			if !t.ours[opt] {
				t.will(opt, true)
			}
			return
		}
		if !t.ours[opt] {
			t.w.Write([]byte{tnIAC, tnWONT, opt})
		}
	case tnDONT:
		if t.ours[opt] {
			t.will(opt, false)
		}
	case tnWILL:
		if opt == optSGA {
			if !t.his[opt] {
				t.his[opt] = true
				t.w.Write([]byte{tnIAC, tnDO, opt})
			}
			return
		}
		t.w.Write([]byte{tnIAC, tnDONT, opt})
	case tnWONT:
		if t.his[opt] {
			t.his[opt] = false
			t.w.Write([]byte{tnIAC, tnDONT, opt})
		}
	}
}

// readLine returns the next line without its end. errLineTooLong and
// errBinary report a bad line that was consumed; other errors come from the
// connection. A line is capped at maxLine bytes whatever the input.
func (t *telnetReader) readLine() (string, error) {
	var line []byte
	var bad error
	for {
		b, err := t.r.ReadByte()
		if err != nil {
			return "", err
		}
		if t.skipLF {
			t.skipLF = false
			if b == '\n' || b == 0 {
				continue
			}
		}
		switch {
		case b == tnIAC:
			c, err := t.r.ReadByte()
			if err != nil {
				return "", err
			}
			switch c {
			case tnIAC: // escaped 255: a data byte, never valid in a command
				bad = errBinary
			case tnWILL, tnWONT, tnDO, tnDONT:
				opt, err := t.r.ReadByte()
				if err != nil {
					return "", err
				}
				t.negotiate(c, opt)
			case tnSB:
				if err := t.skipSub(); err != nil {
					return "", err
				}
			}
			// other commands (NOP, GA, AYT, BRK, ...) are ignored
		case b == '\r' || b == '\n':
			t.skipLF = b == '\r'
			if t.echo {
				t.w.Write([]byte("\r\n"))
			}
			if bad != nil {
				return "", bad
			}
			return string(line), nil
		case b == 8 || b == 127: // backspace, delete
			if len(line) > 0 && bad == nil {
				line = line[:len(line)-1]
				if t.echo {
					t.w.Write([]byte("\b \b"))
				}
			}
		case b == '\t':
			b = ' '
			fallthrough
		case b >= 0x20 && b < 0x7f:
			if len(line) >= maxLine {
				if bad == nil {
					bad = errLineTooLong
				}
				continue
			}
			line = append(line, b)
			if t.echo {
				t.w.Write([]byte{b})
			}
		case b == 0:
			// NUL outside CR NUL: ignore
		default:
			bad = errBinary
		}
	}
}

// skipSub discards a subnegotiation up to IAC SE.
func (t *telnetReader) skipSub() error {
	for {
		b, err := t.r.ReadByte()
		if err != nil {
			return err
		}
		if b != tnIAC {
			continue
		}
		c, err := t.r.ReadByte()
		if err != nil {
			return err
		}
		if c == tnSE {
			return nil
		}
	}
}
