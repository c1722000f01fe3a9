package rfc2217

import (
	"encoding/binary"
	"fmt"
)

// Command is a COM-PORT-OPTION command code as sent by the client (RFC 2217
// section 2). The access server answers with the same command plus
// ServerOffset.
type Command uint8

// COM-PORT-OPTION commands (client to access server codes).
const (
	CmdSignature         Command = 0
	CmdSetBaudRate       Command = 1
	CmdSetDataSize       Command = 2
	CmdSetParity         Command = 3
	CmdSetStopSize       Command = 4
	CmdSetControl        Command = 5
	CmdNotifyLineState   Command = 6
	CmdNotifyModemState  Command = 7
	CmdFlowSuspend       Command = 8
	CmdFlowResume        Command = 9
	CmdSetLineStateMask  Command = 10
	CmdSetModemStateMask Command = 11
	CmdPurgeData         Command = 12
)

// ServerOffset is added to a Command code in messages sent by the access
// server.
const ServerOffset = 100

var commandNames = [...]string{
	"SIGNATURE", "SET-BAUDRATE", "SET-DATASIZE", "SET-PARITY", "SET-STOPSIZE",
	"SET-CONTROL", "NOTIFY-LINESTATE", "NOTIFY-MODEMSTATE", "FLOWCONTROL-SUSPEND",
	"FLOWCONTROL-RESUME", "SET-LINESTATE-MASK", "SET-MODEMSTATE-MASK", "PURGE-DATA",
}

func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return fmt.Sprintf("Command(%d)", uint8(c))
}

// Parity is the RFC 2217 parity code. ParityUnknown (0) asks for the
// current value.
type Parity uint8

// Parity values.
const (
	ParityUnknown Parity = 0
	ParityNone    Parity = 1
	ParityOdd     Parity = 2
	ParityEven    Parity = 3
	ParityMark    Parity = 4
	ParitySpace   Parity = 5
)

func (p Parity) String() string {
	switch p {
	case ParityUnknown:
		return "unknown"
	case ParityNone:
		return "none"
	case ParityOdd:
		return "odd"
	case ParityEven:
		return "even"
	case ParityMark:
		return "mark"
	case ParitySpace:
		return "space"
	}
	return fmt.Sprintf("Parity(%d)", uint8(p))
}

// StopBits is the RFC 2217 stop size code. StopBitsUnknown (0) asks for the
// current value. Note that 1.5 stop bits is code 3.
type StopBits uint8

// StopBits values.
const (
	StopBitsUnknown StopBits = 0
	StopBits1       StopBits = 1
	StopBits2       StopBits = 2
	StopBits15      StopBits = 3
)

func (s StopBits) String() string {
	switch s {
	case StopBitsUnknown:
		return "unknown"
	case StopBits1:
		return "1"
	case StopBits2:
		return "2"
	case StopBits15:
		return "1.5"
	}
	return fmt.Sprintf("StopBits(%d)", uint8(s))
}

// Control is a SET-CONTROL value (RFC 2217 section 3).
type Control uint8

// SET-CONTROL values. The *Request values ask for the current state.
const (
	ControlFlowRequest    Control = 0  // request outbound (or both) flow control setting
	ControlFlowNone       Control = 1  // no flow control (outbound/both)
	ControlFlowXonXoff    Control = 2  // XON/XOFF (outbound/both)
	ControlFlowHardware   Control = 3  // RTS/CTS (outbound/both)
	ControlBreakRequest   Control = 4  // request BREAK state
	ControlBreakOn        Control = 5  //
	ControlBreakOff       Control = 6  //
	ControlDTRRequest     Control = 7  // request DTR state
	ControlDTROn          Control = 8  //
	ControlDTROff         Control = 9  //
	ControlRTSRequest     Control = 10 // request RTS state
	ControlRTSOn          Control = 11 //
	ControlRTSOff         Control = 12 //
	ControlInFlowRequest  Control = 13 // request inbound flow control setting
	ControlInFlowNone     Control = 14 // no inbound flow control
	ControlInFlowXonXoff  Control = 15 // XON/XOFF inbound
	ControlInFlowHardware Control = 16 // RTS/CTS inbound
	ControlFlowDCD        Control = 17 // DCD flow control (outbound/both)
	ControlInFlowDTR      Control = 18 // DTR flow control (inbound)
	ControlFlowDSR        Control = 19 // DSR flow control (outbound/both)

	controlMax = ControlFlowDSR
)

var controlNames = [...]string{
	"flow?", "flow-none", "flow-xonxoff", "flow-rtscts", "break?", "break-on",
	"break-off", "dtr?", "dtr-on", "dtr-off", "rts?", "rts-on", "rts-off",
	"inflow?", "inflow-none", "inflow-xonxoff", "inflow-rtscts", "flow-dcd",
	"inflow-dtr", "flow-dsr",
}

func (c Control) String() string {
	if int(c) < len(controlNames) {
		return controlNames[c]
	}
	return fmt.Sprintf("Control(%d)", uint8(c))
}

// IsRequest reports whether c asks for a state instead of setting it.
func (c Control) IsRequest() bool {
	switch c {
	case ControlFlowRequest, ControlBreakRequest, ControlDTRRequest, ControlRTSRequest, ControlInFlowRequest:
		return true
	}
	return false
}

// Flow is a flow control setting; its value is the SET-CONTROL code that
// selects it. FlowUnknown (0) means not known.
type Flow uint8

// Flow settings. The FlowIn* values set inbound flow control only; the others
// set outbound (or both directions, for servers that do not distinguish).
const (
	FlowUnknown   Flow = 0
	FlowNone      Flow = Flow(ControlFlowNone)
	FlowXonXoff   Flow = Flow(ControlFlowXonXoff)
	FlowRTSCTS    Flow = Flow(ControlFlowHardware)
	FlowDCD       Flow = Flow(ControlFlowDCD)
	FlowDSR       Flow = Flow(ControlFlowDSR)
	FlowInNone    Flow = Flow(ControlInFlowNone)
	FlowInXonXoff Flow = Flow(ControlInFlowXonXoff)
	FlowInRTSCTS  Flow = Flow(ControlInFlowHardware)
	FlowInDTR     Flow = Flow(ControlInFlowDTR)
)

// Outbound reports whether f is an outbound (or both directions) setting.
func (f Flow) Outbound() bool {
	switch f {
	case FlowNone, FlowXonXoff, FlowRTSCTS, FlowDCD, FlowDSR:
		return true
	}
	return false
}

// Inbound reports whether f is an inbound-only setting.
func (f Flow) Inbound() bool {
	switch f {
	case FlowInNone, FlowInXonXoff, FlowInRTSCTS, FlowInDTR:
		return true
	}
	return false
}

func (f Flow) String() string {
	if f == FlowUnknown {
		return "unknown"
	}
	return Control(f).String()
}

// Switch is an on/off state that may be unknown.
type Switch uint8

// Switch values.
const (
	SwitchUnknown Switch = 0
	SwitchOff     Switch = 1
	SwitchOn      Switch = 2
)

// SwitchOf returns SwitchOn or SwitchOff.
func SwitchOf(on bool) Switch {
	if on {
		return SwitchOn
	}
	return SwitchOff
}

func (s Switch) String() string {
	switch s {
	case SwitchOff:
		return "off"
	case SwitchOn:
		return "on"
	}
	return "unknown"
}

// PurgeWhat selects the buffers PURGE-DATA clears at the access server.
type PurgeWhat uint8

// PurgeWhat values.
const (
	PurgeReceive  PurgeWhat = 1 // the access server's receive buffer (data from the serial line)
	PurgeTransmit PurgeWhat = 2 // the access server's transmit buffer (data to the serial line)
	PurgeBoth     PurgeWhat = 3
)

// LineState is the NOTIFY-LINESTATE bit set, also used as the
// SET-LINESTATE-MASK value.
type LineState uint8

// LineState bits.
const (
	LineDataReady      LineState = 1 << 0
	LineOverrunError   LineState = 1 << 1
	LineParityError    LineState = 1 << 2
	LineFramingError   LineState = 1 << 3
	LineBreakDetect    LineState = 1 << 4
	LineTxHoldingEmpty LineState = 1 << 5
	LineTxShiftEmpty   LineState = 1 << 6
	LineTimeout        LineState = 1 << 7
)

// ModemState is the NOTIFY-MODEMSTATE bit set, also used as the
// SET-MODEMSTATE-MASK value.
type ModemState uint8

// ModemState bits.
const (
	ModemDeltaCTS ModemState = 1 << 0
	ModemDeltaDSR ModemState = 1 << 1
	ModemRingEdge ModemState = 1 << 2 // trailing-edge ring detector
	ModemDeltaCD  ModemState = 1 << 3
	ModemCTS      ModemState = 1 << 4
	ModemDSR      ModemState = 1 << 5
	ModemRI       ModemState = 1 << 6
	ModemCD       ModemState = 1 << 7 // receive line signal detect
)

// Settings is the state of a serial port as known over RFC 2217. Zero
// fields are unknown.
type Settings struct {
	BaudRate uint32
	DataSize int // 5..8
	Parity   Parity
	StopBits StopBits
	Flow     Flow // outbound (or both directions) flow control
	InFlow   Flow // inbound flow control, when set separately
	Break    Switch
	DTR      Switch
	RTS      Switch
}

// Message is one COM-PORT-OPTION subnegotiation. Only the field that belongs
// to Command is encoded; the others are ignored.
type Message struct {
	Command Command
	// Server marks a message sent by the access server (wire code
	// Command+ServerOffset).
	Server bool

	BaudRate   uint32     // SET-BAUDRATE; 0 asks for the current value
	DataSize   uint8      // SET-DATASIZE; 0 asks for the current value
	Parity     Parity     // SET-PARITY
	StopBits   StopBits   // SET-STOPSIZE
	Control    Control    // SET-CONTROL
	LineState  LineState  // NOTIFY-LINESTATE (server), SET-LINESTATE-MASK
	ModemState ModemState // NOTIFY-MODEMSTATE (server), SET-MODEMSTATE-MASK
	Purge      PurgeWhat  // PURGE-DATA
	Signature  string     // SIGNATURE; empty in a client message asks for the server's
}

func (m Message) String() string {
	dir := "C>S"
	if m.Server {
		dir = "S>C"
	}
	switch m.Command {
	case CmdSignature:
		return fmt.Sprintf("%s %v %q", dir, m.Command, m.Signature)
	case CmdSetBaudRate:
		return fmt.Sprintf("%s %v %d", dir, m.Command, m.BaudRate)
	case CmdSetDataSize:
		return fmt.Sprintf("%s %v %d", dir, m.Command, m.DataSize)
	case CmdSetParity:
		return fmt.Sprintf("%s %v %v", dir, m.Command, m.Parity)
	case CmdSetStopSize:
		return fmt.Sprintf("%s %v %v", dir, m.Command, m.StopBits)
	case CmdSetControl:
		return fmt.Sprintf("%s %v %v", dir, m.Command, m.Control)
	case CmdNotifyLineState, CmdSetLineStateMask:
		return fmt.Sprintf("%s %v %#02x", dir, m.Command, uint8(m.LineState))
	case CmdNotifyModemState, CmdSetModemStateMask:
		return fmt.Sprintf("%s %v %#02x", dir, m.Command, uint8(m.ModemState))
	case CmdPurgeData:
		return fmt.Sprintf("%s %v %d", dir, m.Command, m.Purge)
	}
	return fmt.Sprintf("%s %v", dir, m.Command)
}

// AppendPayload appends the unescaped subnegotiation payload (command code
// and value, without the option byte and framing) to dst.
func (m Message) AppendPayload(dst []byte) []byte {
	code := byte(m.Command)
	if m.Server {
		code += ServerOffset
	}
	dst = append(dst, code)
	switch m.Command {
	case CmdSignature:
		dst = append(dst, m.Signature...)
	case CmdSetBaudRate:
		dst = binary.BigEndian.AppendUint32(dst, m.BaudRate)
	case CmdSetDataSize:
		dst = append(dst, m.DataSize)
	case CmdSetParity:
		dst = append(dst, byte(m.Parity))
	case CmdSetStopSize:
		dst = append(dst, byte(m.StopBits))
	case CmdSetControl:
		dst = append(dst, byte(m.Control))
	case CmdNotifyLineState:
		if m.Server { // a client message is a poll, without value
			dst = append(dst, byte(m.LineState))
		}
	case CmdNotifyModemState:
		if m.Server {
			dst = append(dst, byte(m.ModemState))
		}
	case CmdSetLineStateMask:
		dst = append(dst, byte(m.LineState))
	case CmdSetModemStateMask:
		dst = append(dst, byte(m.ModemState))
	case CmdPurgeData:
		dst = append(dst, byte(m.Purge))
	}
	return dst
}

// Append appends the complete Telnet frame IAC SB COM-PORT-OPTION ... IAC SE,
// IAC-escaped, to dst.
func (m Message) Append(dst []byte) []byte {
	dst = append(dst, IAC, SB, OptComPort)
	var tmp [8]byte
	if m.Command == CmdSignature {
		dst = AppendEscaped(dst, m.AppendPayload(nil))
	} else {
		dst = AppendEscaped(dst, m.AppendPayload(tmp[:0]))
	}
	return append(dst, IAC, SE)
}

// Encode returns the complete Telnet frame of m.
func (m Message) Encode() []byte { return m.Append(nil) }

// DecodeMessage decodes a COM-PORT-OPTION payload: the bytes after IAC SB
// COM-PORT-OPTION and before IAC SE, unescaped (Event.Data of an SB event
// for OptComPort). It checks lengths and enumerated values strictly and
// returns a *ProtocolError for anything RFC 2217 does not define. One
// documented leniency: a server SET-BAUDRATE reply of 8 bytes is accepted
// (sredird appends 4 zero bytes) and its first 4 bytes are used.
func DecodeMessage(p []byte) (Message, error) {
	if len(p) == 0 {
		return Message{}, protoErr(nil, "empty COM-PORT-OPTION subnegotiation")
	}
	code := p[0]
	var m Message
	switch {
	case code <= byte(CmdPurgeData):
		m.Command = Command(code)
	case code >= ServerOffset && code <= ServerOffset+byte(CmdPurgeData):
		m.Command = Command(code - ServerOffset)
		m.Server = true
	default:
		return Message{}, protoErr(p, "unknown COM-PORT-OPTION command %d", code)
	}
	v := p[1:]
	need := func(n int) error {
		if len(v) != n {
			return protoErr(p, "%v: %d value bytes, want %d", m.Command, len(v), n)
		}
		return nil
	}
	var err error
	switch m.Command {
	case CmdSignature:
		m.Signature = string(v)
	case CmdSetBaudRate:
		if m.Server && len(v) == 8 {
			v = v[:4]
		}
		if err = need(4); err == nil {
			m.BaudRate = binary.BigEndian.Uint32(v)
		}
	case CmdSetDataSize:
		if err = need(1); err == nil {
			m.DataSize = v[0]
			if m.DataSize != 0 && (m.DataSize < 5 || m.DataSize > 8) {
				err = protoErr(p, "SET-DATASIZE %d", m.DataSize)
			}
		}
	case CmdSetParity:
		if err = need(1); err == nil {
			m.Parity = Parity(v[0])
			if m.Parity > ParitySpace {
				err = protoErr(p, "SET-PARITY %d", v[0])
			}
		}
	case CmdSetStopSize:
		if err = need(1); err == nil {
			m.StopBits = StopBits(v[0])
			if m.StopBits > StopBits15 {
				err = protoErr(p, "SET-STOPSIZE %d", v[0])
			}
		}
	case CmdSetControl:
		if err = need(1); err == nil {
			m.Control = Control(v[0])
			if m.Control > controlMax {
				err = protoErr(p, "SET-CONTROL %d", v[0])
			}
		}
	case CmdNotifyLineState:
		if !m.Server {
			err = need(0) // a client poll
		} else if err = need(1); err == nil {
			m.LineState = LineState(v[0])
		}
	case CmdNotifyModemState:
		if !m.Server {
			err = need(0)
		} else if err = need(1); err == nil {
			m.ModemState = ModemState(v[0])
		}
	case CmdFlowSuspend, CmdFlowResume:
		err = need(0)
	case CmdSetLineStateMask:
		if err = need(1); err == nil {
			m.LineState = LineState(v[0])
		}
	case CmdSetModemStateMask:
		if err = need(1); err == nil {
			m.ModemState = ModemState(v[0])
		}
	case CmdPurgeData:
		if err = need(1); err == nil {
			m.Purge = PurgeWhat(v[0])
			if m.Purge < PurgeReceive || m.Purge > PurgeBoth {
				err = protoErr(p, "PURGE-DATA %d", v[0])
			}
		}
	}
	if err != nil {
		return Message{}, err
	}
	return m, nil
}
