package rfc2217

import (
	"fmt"
	"log/slog"
	"net"
	"time"
)

// Handler applies serial settings requested by an RFC 2217 client; it is
// the access server's serial port. Each setter returns the value actually in
// effect afterwards, which the server sends back as the acknowledgement (RFC
// 2217: a value the port cannot use is answered with the current one). When
// a setter returns an error, the server logs it and answers with the value
// from Current. Requests with value 0 (queries) are answered from Current
// without calling a setter. Methods are called from the goroutine calling
// Server.Read, in order with the data: a request is handled after Read has
// returned every data byte the client sent before it (so a caller that
// writes what Read returns to the serial line before it reads again
// applies a speed change or a purge at the right place in the stream).
type Handler interface {
	SetBaudRate(baud uint32) (uint32, error)
	SetDataSize(bits int) (int, error)
	SetParity(p Parity) (Parity, error)
	SetStopBits(s StopBits) (StopBits, error)
	// SetControl gets the non-request SET-CONTROL values (flow control,
	// BREAK, DTR, RTS) and returns the value in effect for the same group,
	// e.g. ControlDTROff for a refused ControlDTROn.
	SetControl(c Control) (Control, error)
	Purge(what PurgeWhat) error
	Current() Settings
}

// SignatureHandler may be implemented by a Handler to answer SIGNATURE
// requests; without it the server answers "vsp".
type SignatureHandler interface {
	Signature() string
}

// Server is the access-server end of an RFC 2217 session, used by the
// simulator. Read returns serial data from the client and applies the
// client's settings through the Handler; Write sends serial data.
// Server implements net.Conn.
//
// The simulated port has no line or modem state to report: the server
// never sends a notification, acknowledges SET-LINESTATE-MASK and
// SET-MODEMSTATE-MASK with the mask asked for, and answers the client's
// NOTIFY-LINESTATE and NOTIFY-MODEMSTATE polls with 0. It ignores
// FLOWCONTROL-SUSPEND and FLOWCONTROL-RESUME (Write never holds data back)
// and the client's own SIGNATURE.
type Server struct {
	s *session
	h Handler
}

// NewServer starts an RFC 2217 session on conn (accepted from a client): it
// sends DO COM-PORT-OPTION, WILL/DO BINARY and WILL/DO SGA, and returns
// without waiting; the client's answers are processed by Read. log may be
// nil.
func NewServer(conn net.Conn, h Handler, log *slog.Logger) (*Server, error) {
	if conn == nil || h == nil {
		return nil, fmt.Errorf("%w: nil conn or handler", ErrInvalidValue)
	}
	s := &Server{s: newSession(conn, log), h: h}
	s.s.handle = s.handleSB
	s.s.ordered = true // a request applies after the data before it (Read)
	s.s.start()
	for _, r := range []struct {
		opt   byte
		local bool
	}{{OptComPort, false}, {OptBinary, true}, {OptBinary, false}, {OptSGA, true}, {OptSGA, false}} {
		if err := s.s.request(r.opt, r.local); err != nil {
			s.s.stop()
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) reply(m Message) error {
	m.Server = true
	return s.s.sendMessage(m)
}

// handleSB processes a COM-PORT-OPTION subnegotiation from the client.
func (s *Server) handleSB(ev Event) error {
	if len(ev.Data) == 0 {
		// telnetcpcd-style signature request: IAC SB COM-PORT-OPTION IAC SE
		return s.reply(Message{Command: CmdSignature, Signature: s.signature()})
	}
	m, err := DecodeMessage(ev.Data)
	if err != nil {
		return err
	}
	s.s.log.Debug("rfc2217: received", "msg", m)
	if m.Server {
		s.s.log.Debug("rfc2217: ignoring server command from client", "msg", m)
		return nil
	}
	h := s.h
	switch m.Command {
	case CmdSignature:
		if m.Signature == "" {
			return s.reply(Message{Command: CmdSignature, Signature: s.signature()})
		}
		return nil // the client's own signature: nothing uses it
	case CmdSetBaudRate:
		v := m.BaudRate
		if v != 0 {
			got, err := h.SetBaudRate(v)
			if err != nil {
				s.s.log.Info("rfc2217: baud rate refused", "baud", v, "err", err)
				got = 0
			}
			v = got
		}
		if v == 0 {
			v = h.Current().BaudRate
		}
		return s.reply(Message{Command: CmdSetBaudRate, BaudRate: v})
	case CmdSetDataSize:
		v := int(m.DataSize)
		if v != 0 {
			got, err := h.SetDataSize(v)
			if err != nil {
				s.s.log.Info("rfc2217: data size refused", "bits", v, "err", err)
				got = 0
			}
			v = got
		}
		if v == 0 {
			v = h.Current().DataSize
		}
		return s.reply(Message{Command: CmdSetDataSize, DataSize: uint8(v)})
	case CmdSetParity:
		v := m.Parity
		if v != ParityUnknown {
			got, err := h.SetParity(v)
			if err != nil {
				s.s.log.Info("rfc2217: parity refused", "parity", v, "err", err)
				got = ParityUnknown
			}
			v = got
		}
		if v == ParityUnknown {
			v = h.Current().Parity
		}
		return s.reply(Message{Command: CmdSetParity, Parity: v})
	case CmdSetStopSize:
		v := m.StopBits
		if v != StopBitsUnknown {
			got, err := h.SetStopBits(v)
			if err != nil {
				s.s.log.Info("rfc2217: stop size refused", "stop", v, "err", err)
				got = StopBitsUnknown
			}
			v = got
		}
		if v == StopBitsUnknown {
			v = h.Current().StopBits
		}
		return s.reply(Message{Command: CmdSetStopSize, StopBits: v})
	case CmdSetControl:
		v := m.Control
		if !v.IsRequest() {
			got, err := h.SetControl(v)
			if err != nil || got.IsRequest() || controlGroup(got) != controlGroup(v) {
				if err != nil {
					s.s.log.Info("rfc2217: control refused", "control", v, "err", err)
				}
				got = controlState(v, h.Current())
			}
			v = got
		} else {
			v = controlState(v, h.Current())
		}
		return s.reply(Message{Command: CmdSetControl, Control: v})
	case CmdNotifyLineState: // a poll: no line state to report
		return s.reply(Message{Command: CmdNotifyLineState})
	case CmdNotifyModemState: // a poll: no modem state to report
		return s.reply(Message{Command: CmdNotifyModemState})
	case CmdSetLineStateMask:
		return s.reply(Message{Command: CmdSetLineStateMask, LineState: m.LineState})
	case CmdSetModemStateMask:
		return s.reply(Message{Command: CmdSetModemStateMask, ModemState: m.ModemState})
	case CmdPurgeData:
		if err := h.Purge(m.Purge); err != nil {
			s.s.log.Info("rfc2217: purge failed", "what", m.Purge, "err", err)
		}
		// In order with the data: after what the server sent before it
		// purged, before what it sends after; a client that drops data
		// until this answer (Client.Purge) gets an exact flush. Without
		// waiting for a write blocked on a client that does not read:
		// this goroutine also carries the client's data.
		return s.s.sendAfterData(Message{Command: CmdPurgeData, Server: true, Purge: m.Purge})
	}
	return nil
}

func (s *Server) signature() string {
	if sh, ok := s.h.(SignatureHandler); ok {
		return sh.Signature()
	}
	return "vsp"
}

// control groups: which setting a SET-CONTROL value is about
const (
	groupFlow = iota + 1
	groupBreak
	groupDTR
	groupRTS
	groupInFlow
)

func controlGroup(c Control) int {
	switch c {
	case ControlFlowRequest, ControlFlowNone, ControlFlowXonXoff, ControlFlowHardware, ControlFlowDCD, ControlFlowDSR:
		return groupFlow
	case ControlBreakRequest, ControlBreakOn, ControlBreakOff:
		return groupBreak
	case ControlDTRRequest, ControlDTROn, ControlDTROff:
		return groupDTR
	case ControlRTSRequest, ControlRTSOn, ControlRTSOff:
		return groupRTS
	case ControlInFlowRequest, ControlInFlowNone, ControlInFlowXonXoff, ControlInFlowHardware, ControlInFlowDTR:
		return groupInFlow
	}
	return 0
}

// controlState returns the value in effect for c's group according to cur.
func controlState(c Control, cur Settings) Control {
	switch controlGroup(c) {
	case groupFlow:
		if cur.Flow.Outbound() {
			return Control(cur.Flow)
		}
		return ControlFlowNone
	case groupInFlow:
		if cur.InFlow.Inbound() {
			return Control(cur.InFlow)
		}
		return ControlInFlowNone
	case groupBreak:
		return pick(cur.Break == SwitchOn, ControlBreakOn, ControlBreakOff)
	case groupDTR:
		return pick(cur.DTR == SwitchOn, ControlDTROn, ControlDTROff)
	case groupRTS:
		return pick(cur.RTS == SwitchOn, ControlRTSOn, ControlRTSOff)
	}
	return c
}

func pick(on bool, yes, no Control) Control {
	if on {
		return yes
	}
	return no
}

// Read reads serial data from the client; Telnet commands and
// COM-PORT-OPTION requests are handled on the way (calling the Handler) and
// never returned.
func (s *Server) Read(p []byte) (int, error) { return s.s.read(p) }

// Write sends serial data to the client, IAC-escaped.
func (s *Server) Write(p []byte) (int, error) { return s.s.write(p) }

// Close sends queued replies (waiting at most 500ms) and closes the
// connection. It is idempotent.
func (s *Server) Close() error { return s.s.close() }

// LocalAddr returns the connection's local address.
func (s *Server) LocalAddr() net.Addr { return s.s.conn.LocalAddr() }

// RemoteAddr returns the connection's remote address.
func (s *Server) RemoteAddr() net.Addr { return s.s.conn.RemoteAddr() }

// SetDeadline sets the connection's read and write deadlines.
func (s *Server) SetDeadline(t time.Time) error { return s.s.conn.SetDeadline(t) }

// SetReadDeadline sets the connection's read deadline.
func (s *Server) SetReadDeadline(t time.Time) error { return s.s.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline.
func (s *Server) SetWriteDeadline(t time.Time) error { return s.s.conn.SetWriteDeadline(t) }

var _ net.Conn = (*Server)(nil)
