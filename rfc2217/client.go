package rfc2217

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"
)

// DefaultTimeout bounds the option negotiation of NewClient when
// ClientConfig.Timeout is 0.
const DefaultTimeout = 3 * time.Second

// MaxBanner bounds the data NewClient keeps for the first Reads while the
// COM-PORT-OPTION negotiation is still going on (a banner, or data the
// device sends before it answers): a peer that floods data and never
// answers cannot make the host hold more than this.
const MaxBanner = 64 << 10

// ClientConfig configures a Client. The zero value is ready to use.
type ClientConfig struct {
	// Timeout bounds the COM-PORT-OPTION negotiation in NewClient.
	// 0 means DefaultTimeout.
	Timeout time.Duration
}

// Client is the client (host) end of an RFC 2217 session: it reads and
// writes serial data and sends serial settings to the access server.
//
// Read, Write, SetInOrder, Purge and RequestSignature may be called
// concurrently (one goroutine reading, others writing data, settings and
// purges). SetInOrder and Purge write into the stream in order with the
// data; RequestSignature queues its request and returns at once. None of
// them waits for the server's answer, so a server that does not
// acknowledge (several do not acknowledge SET-CONTROL) cannot stall the
// session. Answers are recorded when Read meets them; see Acked and
// ServerSignature.
//
// Client implements net.Conn.
type Client struct {
	s *session

	mu        sync.Mutex
	acked     Settings
	signature string

	// An exact receive purge: data bytes decoded while a PURGE-DATA
	// (receive) waits for the server's answer left the server before it
	// purged, so they are stale and dropped (the answer is in-band).
	timeout      time.Duration // how long to wait for the answer
	purgeWait    int           // receive purges not answered yet
	purgeSince   time.Time     // when the oldest of them was sent
	purgeDropped uint64        // data bytes dropped while waiting
}

// NetConn returns the connection the client runs on (as crypto/tls.Conn
// does), so callers can inspect the socket under the protocol, e.g. its
// unacknowledged send queue.
func (c *Client) NetConn() net.Conn { return c.s.conn }

// NewClient starts an RFC 2217 session on conn (already connected to the
// access server): it offers WILL COM-PORT-OPTION, agrees to BINARY in both
// directions and to SGA, refuses every other option, and waits at most
// cfg.Timeout for the server's answer. If the server refuses
// COM-PORT-OPTION, NewClient returns an error wrapping ErrNotSupported and
// leaves conn open, so that the caller may fall back to raw TCP; on any
// error the caller keeps ownership of conn. log may be nil.
//
// Data bytes that arrive during the negotiation (a banner, for example) are
// returned by the first Reads.
func NewClient(conn net.Conn, cfg ClientConfig, log *slog.Logger) (*Client, error) {
	if conn == nil {
		return nil, fmt.Errorf("%w: nil conn", ErrInvalidValue)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	c := &Client{s: newSession(conn, log), timeout: timeout}
	c.s.handle = c.handleSB
	c.s.drop = c.dropData
	c.s.start()

	fail := func(err error) (*Client, error) {
		c.s.stop()
		_ = conn.SetReadDeadline(time.Time{})
		return nil, err
	}
	for _, r := range []struct {
		opt   byte
		local bool
	}{{OptComPort, true}, {OptBinary, true}, {OptBinary, false}, {OptSGA, true}, {OptSGA, false}} {
		if err := c.s.request(r.opt, r.local); err != nil {
			return fail(err)
		}
	}
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fail(fmt.Errorf("rfc2217: negotiation: %w", err))
	}
	buf := make([]byte, 1024)
	for {
		switch c.s.state(OptComPort, true) {
		case qYes:
			if err := conn.SetReadDeadline(time.Time{}); err != nil {
				return fail(fmt.Errorf("rfc2217: negotiation: %w", err))
			}
			c.s.log.Debug("rfc2217: COM-PORT-OPTION accepted by server")
			return c, nil
		case qNo:
			return fail(ErrNotSupported)
		}
		n, err := conn.Read(buf)
		if n > 0 {
			m, _, perr := c.s.process(buf[:n]) // not ordered: all of buf
			if len(c.s.pending)+m > MaxBanner {
				return fail(fmt.Errorf("%w: more than %d bytes from %s", ErrBannerTooLong, MaxBanner, conn.RemoteAddr()))
			}
			c.s.pending = append(c.s.pending, buf[:m]...)
			if perr != nil {
				if c.s.state(OptComPort, true) != qYes {
					return fail(perr)
				}
				// the violation came after the agreement: it belongs
				// to the session and is returned by Read, after the data
				c.s.rerr = perr
			}
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fail(fmt.Errorf("%w after %v", ErrNegotiationTimeout, timeout))
		}
		if err != nil {
			return fail(fmt.Errorf("rfc2217: negotiation: %w", err))
		}
	}
}

// handleSB processes a COM-PORT-OPTION subnegotiation from the server.
// It runs in the goroutine calling Read.
func (c *Client) handleSB(ev Event) error {
	if len(ev.Data) == 0 {
		c.s.log.Debug("rfc2217: ignoring empty COM-PORT-OPTION subnegotiation")
		return nil
	}
	m, err := DecodeMessage(ev.Data)
	if err != nil {
		return err
	}
	c.s.log.Debug("rfc2217: received", "msg", m)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !m.Server {
		// e.g. FLOWCONTROL-SUSPEND/RESUME with the client codes 8/9,
		// which pyserial's client honours from a server
		c.s.log.Debug("rfc2217: ignoring client command from server", "msg", m)
		return nil
	}
	switch m.Command {
	case CmdSignature:
		c.signature = m.Signature
	case CmdSetBaudRate:
		if m.BaudRate != 0 {
			c.acked.BaudRate = m.BaudRate
		}
	case CmdSetDataSize:
		c.acked.DataSize = int(m.DataSize)
	case CmdSetParity:
		c.acked.Parity = m.Parity
	case CmdSetStopSize:
		c.acked.StopBits = m.StopBits
	case CmdSetControl:
		c.acked.applyControl(m.Control)
	case CmdPurgeData:
		if m.Purge&PurgeReceive != 0 && c.purgeWait > 0 {
			c.purgeWait--
			c.purgeSince = time.Now()
		}
	}
	return nil
}

// dropData reports whether n data bytes just decoded are to be dropped: a
// receive purge is waiting for the server's answer, so they left the
// server before it purged. A server that never answers stops the dropping
// after the client's timeout (logged).
func (c *Client) dropData(n int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.purgeWait == 0 {
		return false
	}
	if time.Since(c.purgeSince) > c.timeout {
		c.s.log.Warn("rfc2217: no answer to PURGE-DATA; data is delivered again", "waited", c.timeout)
		c.purgeWait = 0
		return false
	}
	c.purgeDropped += uint64(n)
	c.s.log.Debug("rfc2217: data before the purge answer dropped", "bytes", n)
	return true
}

// PurgeDropped returns how many data bytes were dropped because they
// arrived before the server's answer to a receive purge (see Purge).
func (c *Client) PurgeDropped() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.purgeDropped
}

// applyControl records a SET-CONTROL value reported by the server.
func (s *Settings) applyControl(c Control) {
	switch f := Flow(c); {
	case f.Outbound():
		s.Flow = f
	case f.Inbound():
		s.InFlow = f
	}
	switch c {
	case ControlBreakOn:
		s.Break = SwitchOn
	case ControlBreakOff:
		s.Break = SwitchOff
	case ControlDTROn:
		s.DTR = SwitchOn
	case ControlDTROff:
		s.DTR = SwitchOff
	case ControlRTSOn:
		s.RTS = SwitchOn
	case ControlRTSOff:
		s.RTS = SwitchOff
	}
}

// send queues m if the server still accepts COM-PORT-OPTION: it goes out
// at once, not in order with the data (see SetInOrder).
func (c *Client) send(m Message) error {
	if c.s.state(OptComPort, true) != qYes {
		return ErrNotSupported
	}
	return c.s.sendMessage(m)
}

// Read reads serial data from the server. Telnet commands and
// COM-PORT-OPTION messages in the stream are handled on the way and never
// returned. A protocol violation by the server is returned as a
// *ProtocolError and ends the session.
func (c *Client) Read(p []byte) (int, error) { return c.s.read(p) }

// Write sends serial data, IAC-escaped. It returns the number of bytes of p
// sent.
func (c *Client) Write(p []byte) (int, error) { return c.s.write(p) }

// SetInOrder sends a setting (SET-BAUDRATE, SET-DATASIZE, SET-PARITY,
// SET-STOPSIZE or a non-request SET-CONTROL) written into the stream in
// order with the data, as Purge is: after the data written before it,
// before the data written after (a server that handles requests in order
// with the data, as Server does, applies it between the two). It never
// waits for the acknowledgement (see Acked); like Write it waits for the
// connection to take the bytes. Requests for the current value (0, or a
// *Request control) are refused.
func (c *Client) SetInOrder(m Message) error {
	if err := checkSetting(m); err != nil {
		return err
	}
	if c.s.state(OptComPort, true) != qYes {
		return ErrNotSupported
	}
	return c.s.sendInline(m)
}

// checkSetting accepts the settings SetInOrder sends.
func checkSetting(m Message) error {
	switch {
	case m.Server:
		return fmt.Errorf("%w: %v is a server message", ErrInvalidValue, m)
	case m.Command == CmdSetBaudRate && m.BaudRate != 0,
		m.Command == CmdSetDataSize && m.DataSize >= 5 && m.DataSize <= 8,
		m.Command == CmdSetParity && m.Parity >= ParityNone && m.Parity <= ParitySpace,
		m.Command == CmdSetStopSize && m.StopBits >= StopBits1 && m.StopBits <= StopBits15,
		m.Command == CmdSetControl && m.Control <= controlMax && !m.Control.IsRequest():
		return nil
	}
	return fmt.Errorf("%w: not a setting: %v", ErrInvalidValue, m)
}

// Purge asks the server to discard buffered data. It is written in order
// with the data (see Write): after the data written before, before the
// data written after. A receive purge is
// exact: data that arrives before the server's answer (it is in-band, so
// that data left the server before the purge) is dropped, and counted in
// PurgeDropped; without an answer within the client's timeout data flows
// again.
func (c *Client) Purge(what PurgeWhat) error {
	if what < PurgeReceive || what > PurgeBoth {
		return fmt.Errorf("%w: purge %d", ErrInvalidValue, what)
	}
	if what&PurgeReceive != 0 {
		c.mu.Lock()
		if c.purgeWait == 0 {
			c.purgeSince = time.Now()
		}
		c.purgeWait++
		c.mu.Unlock()
	}
	err := ErrNotSupported
	if c.s.state(OptComPort, true) == qYes {
		err = c.s.sendInline(Message{Command: CmdPurgeData, Purge: what})
	}
	if err != nil && what&PurgeReceive != 0 {
		c.mu.Lock()
		c.purgeWait = max(c.purgeWait-1, 0)
		c.mu.Unlock()
	}
	return err
}

// RequestSignature asks the server for its signature text; the answer shows
// up in ServerSignature.
func (c *Client) RequestSignature() error {
	return c.send(Message{Command: CmdSignature})
}

// Acked returns the settings the server last reported (its answers to
// SetInOrder, or any setting it reports). Fields stay zero (unknown) until
// reported.
func (c *Client) Acked() Settings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acked
}

// ServerSignature returns the server's SIGNATURE text, if it sent one.
func (c *Client) ServerSignature() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signature
}

// Close sends the requests still queued (waiting at most 500ms), then
// closes the connection. It is idempotent.
func (c *Client) Close() error { return c.s.close() }

// LocalAddr returns the connection's local address.
func (c *Client) LocalAddr() net.Addr { return c.s.conn.LocalAddr() }

// RemoteAddr returns the connection's remote address.
func (c *Client) RemoteAddr() net.Addr { return c.s.conn.RemoteAddr() }

// SetDeadline sets the connection's read and write deadlines.
func (c *Client) SetDeadline(t time.Time) error { return c.s.conn.SetDeadline(t) }

// SetReadDeadline sets the connection's read deadline.
func (c *Client) SetReadDeadline(t time.Time) error { return c.s.conn.SetReadDeadline(t) }

// SetWriteDeadline sets the connection's write deadline (it also bounds the
// sending of queued requests).
func (c *Client) SetWriteDeadline(t time.Time) error { return c.s.conn.SetWriteDeadline(t) }

var _ net.Conn = (*Client)(nil)
