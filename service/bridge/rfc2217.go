package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/rfc2217"
)

// RFC 2217 session states reported in RFC2217Status.State.
const (
	RFC2217Down    = "down"    // no link
	RFC2217Up      = "up"      // COM-PORT-OPTION agreed; settings are forwarded
	RFC2217Refused = "refused" // the last device refused COM-PORT-OPTION or did not answer
)

// RFC2217Status is what a port with rfc2217 = true reports about the
// settings it forwards to the device.
type RFC2217Status struct {
	State string `json:"state"`
	// Requested are the settings asked of the device on the current link
	// (the application's speed, stop bits and flow control; character size
	// and parity from the configuration).
	Requested string `json:"requested,omitempty"`
	// Acked are the settings the device reported back ("?" for a field it
	// has not acknowledged).
	Acked string `json:"acked,omitempty"`
	// Pending lists the fields asked for that the device has not (yet)
	// acknowledged with the requested value. Some servers never answer
	// SET-CONTROL (flow control): data flows regardless.
	Pending   []string `json:"pending,omitempty"`
	Signature string   `json:"signature,omitempty"`
	// Sent counts the setting messages sent since the port started.
	Sent   uint64 `json:"settings_sent"`
	Purges uint64 `json:"purges_sent,omitempty"`
	// PurgeDropped counts the device's bytes dropped because they arrived
	// before its answer to a receive purge (an application's tcflush),
	// on the current link.
	PurgeDropped uint64 `json:"purge_dropped,omitempty"`
	LastError    string `json:"last_error,omitempty"`
}

// rfcForwarder carries the application's serial settings to the device over
// RFC 2217: it wraps each new link in an rfc2217.Client, sends the wanted
// settings in full at connect, then only the fields the application
// changes. Changes are written in order with the data (Client.SetInOrder),
// from the goroutine that reads the tty and writes the link (the tty's
// settings handler, port.go), so the device applies them between the bytes
// the application wrote before its tcsetattr and those it wrote after.
// Nothing waits for acknowledgements, so a device that does not
// acknowledge cannot stall the data.
type rfcForwarder struct {
	log     *slog.Logger
	cfg     SerialSettings
	timeout time.Duration

	// sendMu makes computing what to send and sending it one step, so
	// that two senders (connect, the application) cannot send an older
	// value after a newer one; mu is not held while sending, so status
	// never waits for the network.
	sendMu sync.Mutex

	mu      sync.Mutex
	app     pty.Settings
	known   bool            // app was set by the application or by [serial] (wantedSettings)
	client  *rfc2217.Client // current link; nil while down
	sent    rfc2217.Settings
	state   string
	nSent   uint64
	nPurge  uint64
	lastErr string
}

func newRFCForwarder(cfg SerialSettings, app pty.Settings, known bool, timeout time.Duration, log *slog.Logger) *rfcForwarder {
	return &rfcForwarder{log: log, cfg: cfg, app: app, known: known, timeout: timeout, state: RFC2217Down}
}

// wrap negotiates COM-PORT-OPTION on a new link and sends the wanted
// settings. On failure it closes conn: a device that refuses RFC 2217 on a
// port configured for it is an error (the configuration is wrong), not a
// reason to send raw data to a Telnet peer.
func (f *rfcForwarder) wrap(ctx context.Context, conn net.Conn) (net.Conn, error) {
	// Cancelling ctx closes conn until the connect settings are out: the
	// negotiation and that send both write to the network (the send while
	// holding sendMu).
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	cl, err := rfc2217.NewClient(conn, rfc2217.ClientConfig{Timeout: f.timeout}, f.log)
	if err != nil {
		_ = conn.Close()
		err = fmt.Errorf("bridge: rfc2217 negotiation with %s: %w", conn.RemoteAddr(), err)
		f.mu.Lock()
		if errors.Is(err, rfc2217.ErrNotSupported) || errors.Is(err, rfc2217.ErrNegotiationTimeout) {
			f.state = RFC2217Refused
		}
		f.lastErr = err.Error()
		f.mu.Unlock()
		return nil, err
	}
	f.sendMu.Lock()
	f.mu.Lock()
	f.client = cl
	f.sent = rfc2217.Settings{}
	f.state = RFC2217Up
	f.mu.Unlock()
	f.sendChanges("connect") // before the bridge has the link: before any data
	f.sendMu.Unlock()
	_ = cl.RequestSignature()
	rc := &rfcConn{Client: cl, f: f}
	if !stop() {
		// ctx was cancelled during the connect: conn is (being) closed.
		_ = rc.Close()
		return nil, fmt.Errorf("bridge: rfc2217 connect to %s: %w", conn.RemoteAddr(), context.Cause(ctx))
	}
	return rc, nil
}

// sendChanges sends what differs between the wanted settings and those
// already sent on the current link. The caller holds sendMu.
func (f *rfcForwarder) sendChanges(why string) {
	f.mu.Lock()
	cl := f.client
	if cl == nil {
		f.mu.Unlock()
		return
	}
	want := wantedSettings(f.app, f.known, f.cfg)
	msgs := settingsDiff(f.sent, want)
	f.sent = want
	f.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	var sent uint64
	var lastErr string
	for _, m := range msgs {
		if err := cl.SetInOrder(m); err != nil {
			lastErr = fmt.Sprintf("bridge: rfc2217: send %v: %v", m, err)
			f.log.Warn("rfc2217: cannot send setting", "msg", m.String(), "err", err)
			continue
		}
		sent++
	}
	f.mu.Lock()
	f.nSent += sent
	if lastErr != "" {
		f.lastErr = lastErr
	}
	f.mu.Unlock()
	f.log.Info("rfc2217: serial settings sent to device", "why", why, "settings", formatSettings(want), "messages", len(msgs))
}

// appChanged forwards a termios change by the application. Called from
// the goroutine that writes the link (the tty's settings handler), the
// change goes out in order with the data.
func (f *rfcForwarder) appChanged(s pty.Settings) {
	f.sendMu.Lock()
	defer f.sendMu.Unlock()
	f.mu.Lock()
	f.app = s
	f.known = true
	f.mu.Unlock()
	f.sendChanges("application")
}

// purge forwards an application's tcflush: its discarded input becomes
// PURGE-DATA receive (the device's buffer of data from the serial line),
// its discarded output PURGE-DATA transmit.
// Like sendChanges it holds sendMu while writing (so a purge on a new link
// goes out after wrap's connect settings) and not mu (so status never waits
// for the network).
func (f *rfcForwarder) purge(what rfc2217.PurgeWhat) {
	f.sendMu.Lock()
	defer f.sendMu.Unlock()
	f.mu.Lock()
	cl := f.client
	f.mu.Unlock()
	if cl == nil {
		return
	}
	err := cl.Purge(what)
	f.mu.Lock()
	if err != nil {
		f.lastErr = fmt.Sprintf("bridge: rfc2217: purge: %v", err)
	} else {
		f.nPurge++
	}
	f.mu.Unlock()
	if err == nil {
		f.log.Debug("rfc2217: purge sent", "what", what)
	}
}

func (f *rfcForwarder) detach(cl *rfc2217.Client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.client == cl {
		f.client = nil
		f.state = RFC2217Down
	}
}

// status reports the forwarding state, and a mismatch text when the device
// answered a speed other than the one requested.
func (f *rfcForwarder) status() (RFC2217Status, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := RFC2217Status{State: f.state, Sent: f.nSent, Purges: f.nPurge, LastError: f.lastErr}
	if f.client == nil {
		return st, ""
	}
	acked := f.client.Acked()
	st.PurgeDropped = f.client.PurgeDropped()
	st.Requested = formatSettings(f.sent)
	st.Acked = formatSettings(acked)
	st.Signature = f.client.ServerSignature()
	add := func(name string, asked, got bool) {
		if asked && !got {
			st.Pending = append(st.Pending, name)
		}
	}
	add("baud", f.sent.BaudRate != 0, acked.BaudRate == f.sent.BaudRate)
	add("data_bits", f.sent.DataSize != 0, acked.DataSize == f.sent.DataSize)
	add("parity", f.sent.Parity != 0, acked.Parity == f.sent.Parity)
	add("stop_bits", f.sent.StopBits != 0, acked.StopBits == f.sent.StopBits)
	add("flow", f.sent.Flow != 0, acked.Flow == f.sent.Flow)
	mismatch := ""
	if acked.BaudRate != 0 && f.sent.BaudRate != 0 && acked.BaudRate != f.sent.BaudRate {
		mismatch = fmt.Sprintf("application set %d bit/s but the device answered %d bit/s over RFC 2217", f.sent.BaudRate, acked.BaudRate)
	}
	return st, mismatch
}

// rfcConn is the link the bridge uses: the RFC 2217 client, which detaches
// itself from the forwarder when the bridge closes it.
type rfcConn struct {
	*rfc2217.Client
	f *rfcForwarder
}

func (c *rfcConn) Close() error {
	c.f.detach(c.Client)
	return c.Client.Close()
}

// purgeOf maps an application's flush to the device buffer to purge.
func purgeOf(k pty.EventKind) rfc2217.PurgeWhat {
	if k == pty.FlushRead {
		return rfc2217.PurgeReceive
	}
	return rfc2217.PurgeTransmit
}
