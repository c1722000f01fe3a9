package bridge

import (
	"strconv"
	"strings"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/rfc2217"
)

// ptyInitial returns the power-on settings of a port's PTY: the device
// line's configured speed, stop bits and flow control, so that an
// application that never sets termios sees what the device runs at (and the
// mismatch guard does not fire for it). Without a configured speed the pty
// package's default (9600 8N1, as a fresh serial tty) applies: the tty's
// initial speed only, never reported as the device's, which stays "not set".
func ptyInitial(s SerialSettings) pty.Settings {
	if s.Baud == 0 {
		return pty.Settings{}
	}
	return pty.Settings{
		Baud:     s.Baud,
		DataBits: 8,
		StopBits: max(s.StopBits, 1),
		RTSCTS:   s.Flow == "rtscts",
		XONXOFF:  s.Flow == "xonxoff",
		Raw:      true,
	}
}

// wantedSettings is what a port asks an RFC 2217 device for: speed, stop
// bits and flow control as the application set them on the PTY, character
// size and parity from the port's configuration (the Linux pty driver
// erases the application's; see pty/LIMITS.md). Zero fields are not sent.
// Without known (the application has set nothing yet and [serial] baud is
// not set, so the tty holds only its default 9600 8N1) speed, stop bits and
// flow control are not sent either: nobody chose them.
func wantedSettings(app pty.Settings, known bool, cfg SerialSettings) rfc2217.Settings {
	var w rfc2217.Settings
	if cfg.DataBits >= 5 && cfg.DataBits <= 8 {
		w.DataSize = cfg.DataBits
	}
	w.Parity = parityCode(cfg.Parity)
	if !known {
		return w
	}
	w.BaudRate = app.Baud // 0 (B0, hang up) is not a speed: not sent
	switch app.StopBits {
	case 1:
		w.StopBits = rfc2217.StopBits1
	case 2:
		w.StopBits = rfc2217.StopBits2
	}
	switch {
	case app.RTSCTS:
		w.Flow = rfc2217.FlowRTSCTS
	case app.XONXOFF:
		w.Flow = rfc2217.FlowXonXoff
	default:
		w.Flow = rfc2217.FlowNone
	}
	return w
}

// parityCode maps a configuration parity name to its RFC 2217 code
// (ParityUnknown for "" or an unknown name: not sent).
func parityCode(p string) rfc2217.Parity {
	switch strings.ToLower(p) {
	case "none":
		return rfc2217.ParityNone
	case "odd":
		return rfc2217.ParityOdd
	case "even":
		return rfc2217.ParityEven
	case "mark":
		return rfc2217.ParityMark
	case "space":
		return rfc2217.ParitySpace
	}
	return rfc2217.ParityUnknown
}

// settingsDiff returns the messages that move a device from sent (what was
// last asked on this session) to want: one per field that differs, none for
// a field that did not change or is unknown (zero) in want.
func settingsDiff(sent, want rfc2217.Settings) []rfc2217.Message {
	var out []rfc2217.Message
	if want.BaudRate != 0 && want.BaudRate != sent.BaudRate {
		out = append(out, rfc2217.Message{Command: rfc2217.CmdSetBaudRate, BaudRate: want.BaudRate})
	}
	if want.DataSize != 0 && want.DataSize != sent.DataSize {
		out = append(out, rfc2217.Message{Command: rfc2217.CmdSetDataSize, DataSize: uint8(want.DataSize)})
	}
	if want.Parity != rfc2217.ParityUnknown && want.Parity != sent.Parity {
		out = append(out, rfc2217.Message{Command: rfc2217.CmdSetParity, Parity: want.Parity})
	}
	if want.StopBits != rfc2217.StopBitsUnknown && want.StopBits != sent.StopBits {
		out = append(out, rfc2217.Message{Command: rfc2217.CmdSetStopSize, StopBits: want.StopBits})
	}
	if want.Flow != rfc2217.FlowUnknown && want.Flow != sent.Flow {
		out = append(out, rfc2217.Message{Command: rfc2217.CmdSetControl, Control: rfc2217.Control(want.Flow)})
	}
	return out
}

// formatSettings renders RFC 2217 settings like "57600 8N1 flow=rtscts";
// unknown fields show as "?".
func formatSettings(s rfc2217.Settings) string {
	var b strings.Builder
	if s.BaudRate != 0 {
		b.WriteString(strconv.FormatUint(uint64(s.BaudRate), 10))
	} else {
		b.WriteByte('?')
	}
	b.WriteByte(' ')
	if s.DataSize != 0 {
		b.WriteString(strconv.Itoa(s.DataSize))
	} else {
		b.WriteByte('?')
	}
	switch s.Parity {
	case rfc2217.ParityNone:
		b.WriteByte('N')
	case rfc2217.ParityOdd:
		b.WriteByte('O')
	case rfc2217.ParityEven:
		b.WriteByte('E')
	case rfc2217.ParityMark:
		b.WriteByte('M')
	case rfc2217.ParitySpace:
		b.WriteByte('S')
	default:
		b.WriteByte('?')
	}
	switch s.StopBits {
	case rfc2217.StopBitsUnknown:
		b.WriteByte('?')
	default:
		b.WriteString(s.StopBits.String())
	}
	b.WriteString(" flow=")
	switch s.Flow {
	case rfc2217.FlowUnknown:
		b.WriteByte('?')
	case rfc2217.FlowNone:
		b.WriteString("none")
	case rfc2217.FlowRTSCTS:
		b.WriteString("rtscts")
	case rfc2217.FlowXonXoff:
		b.WriteString("xonxoff")
	default:
		b.WriteString(s.Flow.String())
	}
	return b.String()
}
