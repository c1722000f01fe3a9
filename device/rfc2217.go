package device

import (
	"fmt"
	"log/slog"
	"net"
	"sync"

	"github.com/vsp-dev/vsp/rfc2217"
)

// RFC 2217 speed range the simulator accepts. The console offers only
// Bauds, but an RFC 2217 client may ask for any speed (a custom 250000, for
// example); the simulated UART takes any speed in this range, the way a
// fractional baud rate generator does.
const (
	rfc2217MinBaud = 50
	rfc2217MaxBaud = 4000000
)

// rfcPort applies a client's RFC 2217 requests to a COM port: its line
// settings (backend termios and byte pacing) and the BREAK, DTR and RTS
// states. Settings made over RFC 2217 change the running line only: they
// are not saved to flash, and a reboot or a console change restores the
// configured line.
type rfcPort struct {
	p   *Port
	log *slog.Logger

	mu            sync.Mutex
	brk, dtr, rts rfc2217.Switch
}

// newRFC2217Session wraps a plain-TCP session in an RFC 2217 server for
// port p; log should name the port and the peer. On error the caller keeps
// conn as it was.
func newRFC2217Session(p *Port, conn net.Conn, log *slog.Logger) (net.Conn, error) {
	h := &rfcPort{p: p, log: log, brk: rfc2217.SwitchOff, dtr: rfc2217.SwitchOn, rts: rfc2217.SwitchOn}
	srv, err := rfc2217.NewServer(conn, h, log)
	if err != nil {
		return nil, fmt.Errorf("device: rfc2217: %w", err)
	}
	return srv, nil
}

// apply changes the running line with fn. The backend is configured first;
// on error nothing changes.
func (h *rfcPort) apply(what string, fn func(*Serial)) (Serial, error) {
	p := h.p
	p.lmu.Lock() // a console change must not slip between read and store
	defer p.lmu.Unlock()
	line := p.Serial()
	fn(&line)
	if p.be != nil {
		if err := p.be.configure(line); err != nil {
			return p.Serial(), fmt.Errorf("device: %s: %w", p.name, err)
		}
	}
	p.mu.Lock()
	p.line = line
	p.mu.Unlock()
	// sio_tx: the bytes sent on the line before the change (the server
	// applies it in order with the data), for whoever checks the order.
	h.log.Info("rfc2217: serial "+what+" applied", "baud", line.Baud, "serial", line.String(), "sio_tx", p.sioTx.Load())
	return line, nil
}

func (h *rfcPort) SetBaudRate(baud uint32) (uint32, error) {
	if baud < rfc2217MinBaud || baud > rfc2217MaxBaud {
		return 0, fmt.Errorf("%w: baud rate %d (%d..%d)", ErrInvalid, baud, rfc2217MinBaud, rfc2217MaxBaud)
	}
	l, err := h.apply("speed", func(s *Serial) { s.Baud = int(baud) })
	return uint32(l.Baud), err
}

func (h *rfcPort) SetDataSize(bits int) (int, error) {
	if bits != 7 && bits != 8 {
		return 0, fmt.Errorf("%w: data bits %d (7 or 8)", ErrInvalid, bits)
	}
	l, err := h.apply("data size", func(s *Serial) { s.DataBits = bits })
	return l.DataBits, err
}

func (h *rfcPort) SetParity(p rfc2217.Parity) (rfc2217.Parity, error) {
	var name string
	switch p {
	case rfc2217.ParityNone:
		name = "none"
	case rfc2217.ParityOdd:
		name = "odd"
	case rfc2217.ParityEven:
		name = "even"
	default:
		return 0, fmt.Errorf("%w: parity %v (none, odd, even)", ErrInvalid, p)
	}
	l, err := h.apply("parity", func(s *Serial) { s.Parity = name })
	return parityOf(l.Parity), err
}

func (h *rfcPort) SetStopBits(sb rfc2217.StopBits) (rfc2217.StopBits, error) {
	var n int
	switch sb {
	case rfc2217.StopBits1:
		n = 1
	case rfc2217.StopBits2:
		n = 2
	default:
		return 0, fmt.Errorf("%w: stop bits %v (1 or 2)", ErrInvalid, sb)
	}
	l, err := h.apply("stop bits", func(s *Serial) { s.StopBits = n })
	return stopOf(l.StopBits), err
}

func (h *rfcPort) SetControl(c rfc2217.Control) (rfc2217.Control, error) {
	flow := ""
	switch c {
	case rfc2217.ControlFlowNone:
		flow = "none"
	case rfc2217.ControlFlowXonXoff:
		flow = "xonxoff"
	case rfc2217.ControlFlowHardware:
		flow = "rtscts"
	case rfc2217.ControlBreakOn, rfc2217.ControlBreakOff,
		rfc2217.ControlDTROn, rfc2217.ControlDTROff,
		rfc2217.ControlRTSOn, rfc2217.ControlRTSOff:
		return h.setSignal(c), nil
	case rfc2217.ControlInFlowNone, rfc2217.ControlInFlowXonXoff, rfc2217.ControlInFlowHardware:
		// The simulated UART has one flow control setting for both
		// directions: inbound-only requests are acknowledged unchanged.
		return c, nil
	default:
		return 0, fmt.Errorf("%w: control %v not supported", ErrInvalid, c)
	}
	l, err := h.apply("flow control", func(s *Serial) { s.Flow = flow })
	return rfc2217.Control(flowOf(l.Flow)), err
}

// setSignal records BREAK, DTR or RTS. The backends have no modem lines to
// drive (a PTY has none; the loopback plug has none), so the state is kept
// and logged for whoever watches the simulator.
func (h *rfcPort) setSignal(c rfc2217.Control) rfc2217.Control {
	h.mu.Lock()
	defer h.mu.Unlock()
	on := c == rfc2217.ControlBreakOn || c == rfc2217.ControlDTROn || c == rfc2217.ControlRTSOn
	switch c {
	case rfc2217.ControlBreakOn, rfc2217.ControlBreakOff:
		h.brk = rfc2217.SwitchOf(on)
		h.log.Info("rfc2217: break", "on", on)
	case rfc2217.ControlDTROn, rfc2217.ControlDTROff:
		h.dtr = rfc2217.SwitchOf(on)
		h.log.Info("rfc2217: dtr", "on", on)
	default:
		h.rts = rfc2217.SwitchOf(on)
		h.log.Info("rfc2217: rts", "on", on)
	}
	return c
}

// Purge discards the port's buffers: receive (1) the bytes received from
// the serial line and not yet sent to the client (with the echo backend,
// what was echoed and not yet written to the network), transmit (2) the
// bytes held for the serial line (a tty's output queue; the echo backend
// holds none: its writes are on the line at once), both (3). The server
// calls it after the data the client sent before the request has been
// written to the line (rfc2217.Handler), and answers it after: every byte
// the client reads before the answer left before the purge. The Event
// Byte buffer only exists without a session: nothing to purge there.
func (h *rfcPort) Purge(what rfc2217.PurgeWhat) error {
	in, out, err := h.p.purge(what&rfc2217.PurgeReceive != 0, what&rfc2217.PurgeTransmit != 0)
	h.log.Info("rfc2217: purge", "what", what, "dropped_rx", in, "dropped_tx", out, "purged", h.p.purged.Load())
	return err
}

func (h *rfcPort) Current() rfc2217.Settings {
	l := h.p.Serial()
	h.mu.Lock()
	defer h.mu.Unlock()
	return rfc2217.Settings{
		BaudRate: uint32(l.Baud),
		DataSize: l.DataBits,
		Parity:   parityOf(l.Parity),
		StopBits: stopOf(l.StopBits),
		Flow:     flowOf(l.Flow),
		InFlow:   rfc2217.FlowInNone,
		Break:    h.brk,
		DTR:      h.dtr,
		RTS:      h.rts,
	}
}

// Signature names the simulated product.
func (h *rfcPort) Signature() string {
	return "ezsim " + h.p.d.model.name + " " + h.p.name
}

func parityOf(s string) rfc2217.Parity {
	switch s {
	case "odd":
		return rfc2217.ParityOdd
	case "even":
		return rfc2217.ParityEven
	}
	return rfc2217.ParityNone
}

func stopOf(n int) rfc2217.StopBits {
	if n == 2 {
		return rfc2217.StopBits2
	}
	return rfc2217.StopBits1
}

func flowOf(s string) rfc2217.Flow {
	switch s {
	case "rtscts":
		return rfc2217.FlowRTSCTS
	case "xonxoff":
		return rfc2217.FlowXonXoff
	}
	return rfc2217.FlowNone
}
