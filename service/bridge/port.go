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
	"github.com/vsp-dev/vsp/service/monitor"
	"github.com/vsp-dev/vsp/tlsconn"
)

// SerialSettings are the serial parameters the device's line is configured
// with (what the equipment on the wire really sees).
type SerialSettings struct {
	Baud     uint32 `json:"baud,omitempty"`
	DataBits int    `json:"data_bits,omitempty"`
	Parity   string `json:"parity,omitempty"`
	StopBits int    `json:"stop_bits,omitempty"`
	Flow     string `json:"flow,omitempty"`
}

// PortSpec is everything needed to run one virtual port.
type PortSpec struct {
	Name    string
	PTY     pty.Config
	Devices []string   // device addresses, primary first
	Listen  ListenSpec // device-initiated sessions instead of Devices (listen.go)
	Link    tlsconn.Config
	Bridge  BridgeConfig
	// Serial is the device's configured serial line; a zero Baud disables
	// the mismatch guard.
	Serial SerialSettings
	// StrictSerial holds data while the application's baud rate differs
	// from Serial.Baud.
	StrictSerial bool
	// RFC2217 negotiates Telnet COM-PORT-OPTION on every link and forwards
	// the application's serial settings (see service/rfc2217.go); the
	// mismatch guard is then off.
	RFC2217 bool
	// Source is where the spec came from (a file path, or "command line"
	// for `vsp run` flags).
	Source string
	// Transport is TransportTCP ("" too) or TransportUDP: datagrams to
	// and from a device in U2S mode (udp.go), at most DatagramSize bytes
	// each way to the device (0 = DefaultDatagramSize).
	Transport    string
	DatagramSize int
	// Trace writes the port's traffic and events to a file (monitor.Trace);
	// a change of Trace alone is applied by SetTrace, without a restart.
	Trace monitor.TraceConfig
}

// Validate checks what StartPort cannot do without.
func (s *PortSpec) Validate() error {
	if s.Name == "" {
		return errors.New("bridge: port has no name")
	}
	if s.Listen.Addr != "" {
		return s.validateListen()
	}
	if len(s.Devices) == 0 {
		return fmt.Errorf("bridge: port %s: no device address", s.Name)
	}
	for _, d := range s.Devices {
		if _, _, err := net.SplitHostPort(d); err != nil {
			return fmt.Errorf("bridge: port %s: device %q: %w", s.Name, d, err)
		}
	}
	if err := s.Link.Validate(); err != nil {
		return fmt.Errorf("bridge: port %s: %w", s.Name, err)
	}
	return s.validateUDP()
}

// Port is a running virtual port: its PTY, which lives as long as the Port,
// and the bridge to its device.
type Port struct {
	spec   PortSpec
	log    *slog.Logger
	tty    *pty.Port
	bridge *Bridge
	start  time.Time

	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	mu       sync.Mutex
	runErr   error
	app      pty.Settings
	appKnown bool
	appSet   bool // the application has changed the tty's settings (kept across Restart)
	mismatch string

	rfc *rfcForwarder // nil unless spec.RFC2217

	trace traceState // the trace file, if any (monitor.go)

	failover failover  // a link to the primary device waiting to be used (failover.go)
	listener *listener // non-nil in listen mode (listen.go)
	udp      *udpLink  // non-nil for transport udp (udp.go)
}

// StartPort opens the port's PTY and starts bridging it to the device. The
// Port runs until Close.
func StartPort(spec PortSpec, log *slog.Logger) (*Port, error) {
	return startPort(spec, log, nil)
}

// startPort is StartPort continuing the counts in n (nil: from zero).
func startPort(spec PortSpec, log *slog.Logger, n *counters) (*Port, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("port", spec.Name)
	ptyCfg := spec.PTY // a copy: Spec() must return what the caller gave (reload compares it)
	if ptyCfg.Initial.Baud == 0 {
		// The tty starts with the device line's settings: an application
		// that never sets termios, or sets what it found, agrees with the
		// device and triggers no mismatch warning.
		ptyCfg.Initial = ptyInitial(spec.Serial)
	}
	tty, err := pty.Open(ptyCfg, log)
	if err != nil {
		return nil, fmt.Errorf("bridge: port %s: %w", spec.Name, err)
	}
	p, err := startOn(spec, log, tty, nil, false, n)
	if err != nil {
		tty.Close()
		return nil, err
	}
	return p, nil
}

// startOn starts the port's link, bridge and watchers on an open tty;
// queued is what an earlier bridge on the same tty still held for the
// device, appSet whether the application changed the tty's settings under
// it, and n the counts the port's bridges had so far (nil: none). On error
// the tty is left open for the caller.
func startOn(spec PortSpec, log *slog.Logger, tty *pty.Port, queued []byte, appSet bool, n *counters) (*Port, error) {
	var err error
	p := &Port{spec: spec, log: log, tty: tty, start: time.Now(), appSet: appSet}
	if spec.Listen.Addr != "" {
		if p.listener, err = startListener(spec, log); err != nil {
			return nil, err
		}
	}
	p.bridge = NewBridge(tty, p.dial, spec.Bridge, log)
	if n != nil {
		p.bridge.counters = n
	} else {
		p.bridge.hub = monitor.NewHub(spec.Name)
	}
	p.startUDP()
	p.startTrace()
	p.bridge.queue(queued)
	p.bridge.SetAppOpen(tty.AppOpen())
	if st, err := tty.Settings(); err == nil {
		p.app = st
		p.appKnown = true
	}
	if spec.RFC2217 {
		// The tty holds the application's settings, or [serial]'s, or
		// else only the pty's default, which nobody chose: not sent.
		p.rfc = newRFCForwarder(spec.Serial, p.app, appSet || spec.Serial.Baud != 0, 0, log)
	}
	tty.SetFlushHandler(p.flushed)
	if p.rfc != nil {
		// Settings go to the device in order with the data: from the
		// goroutine that reads the tty and writes the link, between the
		// bytes written before the application's tcsetattr and those
		// written after (as far as the pty can tell: pty.SetSettingsHandler).
		tty.SetSettingsHandler(p.rfc.appChanged)
	} else {
		tty.SetSettingsHandler(nil) // a previous configuration's (Restart)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	if p.listener != nil {
		p.listener.bridge = p.bridge
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.listener.run(ctx)
		}()
	}
	if len(spec.Devices) > 1 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.failback(ctx)
		}()
	}
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		if err := p.bridge.Run(ctx); err != nil {
			p.log.Error("bridge stopped", "err", err)
			p.mu.Lock()
			p.runErr = err
			p.mu.Unlock()
		}
	}()
	go func() {
		defer p.wg.Done()
		p.watch(ctx)
	}()
	log.Info("port ready", "link", tty.Link(), "tty", tty.Name(), "device", spec.target())
	return p, nil
}

// dial tries the device addresses in order, primary first.
func (p *Port) dial(ctx context.Context) (net.Conn, tlsconn.Info, error) {
	if u := p.udp; u != nil { // U2S: datagrams (udp.go)
		return u.dial(ctx)
	}
	if p.listener != nil { // the device connects to us (listen.go)
		conn, info, err := p.listener.dial(ctx)
		if err == nil && p.rfc != nil {
			conn, err = p.rfc.wrap(ctx, conn)
		}
		return conn, info, err
	}
	if conn, info, ok := p.failover.take(); ok { // the primary, back (failover.go)
		var err error
		if p.rfc != nil {
			conn, err = p.rfc.wrap(ctx, conn)
		}
		return conn, info, err
	}
	var errs []error
	for _, addr := range p.spec.Devices {
		conn, info, err := tlsconn.Dial(ctx, addr, p.spec.Link, p.log)
		if err == nil && p.rfc != nil {
			conn, err = p.rfc.wrap(ctx, conn)
		}
		if err == nil {
			return conn, info, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, tlsconn.Info{}, errors.Join(errs...)
}

// staleFlushDelay: the tty's input is discarded this long after the
// application's last close (stale-data "discard"), unless it has opened
// the port again by then (an open heard, or counted). Opens and closes are heard asynchronously
// (inotify), so at the close event an application that reopened at once
// may not be counted yet; discarding then would drop what its new session
// reads (seen: pyserial's test suite, which reopens within a millisecond).
// Device bytes arriving meanwhile are not delivered (Bridge drops them
// while no application has the port open).
const staleFlushDelay = 20 * time.Millisecond

// watch follows the application's use of the port: termios changes (for
// the mismatch guard and status) and opens (for the stale-data policy).
func (p *Port) watch(ctx context.Context) {
	p.checkSerial()
	discard := time.NewTimer(staleFlushDelay)
	discard.Stop()
	defer discard.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-discard.C:
			if p.tty.AppOpen() {
				p.log.Debug("application opened the port again: its unread input is kept")
			} else if err := p.tty.DiscardInput(); err != nil {
				p.log.Warn("discard stale data", "err", err)
			} else {
				p.log.Debug("unread input discarded after the last close")
			}
		case ev, ok := <-p.tty.Events():
			if !ok {
				return
			}
			p.tapEvent(ev)
			switch ev.Kind {
			case pty.SettingsChanged:
				p.mu.Lock()
				p.app = ev.Settings
				p.appKnown = true
				p.appSet = true
				p.mu.Unlock()
				p.log.Info("application changed serial settings", "settings", ev.Settings.String())
				p.checkSerial() // RFC 2217 forwarding: the settings handler (startOn)
			case pty.AppOpened:
				p.bridge.SetAppOpen(true)
				discard.Stop() // reopened: what it reads is its own (Go 1.23+ timers: no stale tick)
			case pty.AppClosed:
				p.bridge.SetAppOpen(false)
				// Flush after the last close (staleFlushDelay), not at
				// the next open: an application that has just opened the
				// port may already have written and be waiting for the
				// reply, which a flush at open (inotify is asynchronous)
				// would race with. While no application has the port
				// open, the bridge drops what the device sends (see
				// Bridge), so the queue stays empty.
				if p.spec.Bridge.StaleData != StaleKeep {
					discard.Reset(staleFlushDelay)
				}
			}
		}
	}
}

// checkSerial compares the application's baud rate with the device's
// configured one: a mismatch is logged once per change, shown in status and,
// with StrictSerial, holds the data until they agree.
func (p *Port) checkSerial() {
	p.mu.Lock()
	want := p.spec.Serial.Baud
	if p.rfc != nil {
		want = 0 // the application's settings are forwarded; see rfcForwarder.status
	}
	got := p.app.Baud
	known := p.appKnown
	old := p.mismatch
	msg := ""
	if want != 0 && known && got != 0 && got != want {
		msg = fmt.Sprintf("application set %d bit/s but the device line runs at %d bit/s", got, want)
	}
	p.mismatch = msg
	p.mu.Unlock()
	if msg != old {
		if msg != "" {
			p.log.Warn("serial settings mismatch", "detail", msg)
		} else if old != "" {
			p.log.Info("serial settings match again", "baud", want)
		}
	}
	if p.spec.StrictSerial {
		p.bridge.Hold(msg)
	}
}

// Status is everything known about a running port.
type Status struct {
	Name         string         `json:"name"`
	Source       string         `json:"source,omitempty"`
	Link         string         `json:"link"`
	TTY          string         `json:"tty"`
	Devices      []string       `json:"devices"`
	TLSProfile   string         `json:"tls_profile"`
	Pin          string         `json:"pin,omitempty"`
	AppOpen      bool           `json:"app_open"`
	AppSettings  string         `json:"app_settings,omitempty"`
	DeviceSerial SerialSettings `json:"device_serial,omitzero"`
	Mismatch     string         `json:"serial_mismatch,omitempty"`
	RFC2217      *RFC2217Status `json:"rfc2217,omitempty"`
	Started      time.Time      `json:"started"`
	Error        string         `json:"error,omitempty"`
	Trace        string         `json:"trace,omitempty"`       // the trace file being written
	TraceError   string         `json:"trace_error,omitempty"` // why the configured trace file is not written
	Transport    string         `json:"transport,omitempty"`   // "udp" for a U2S port; TCP otherwise
	UDP          *UDPStats      `json:"udp,omitempty"`         // a U2S port's datagrams (udp.go)
	Stats
}

// Status returns a snapshot of the port's state.
func (p *Port) Status() Status {
	st := Status{
		Name:         p.spec.Name,
		Source:       p.spec.Source,
		Link:         p.tty.Link(),
		TTY:          p.tty.Name(),
		Devices:      p.spec.Devices,
		TLSProfile:   string(p.spec.Link.Profile),
		Pin:          p.spec.Link.Pin,
		AppOpen:      p.tty.AppOpen(),
		DeviceSerial: p.spec.Serial,
		Started:      p.start,
		Stats:        p.bridge.Stats(),
	}
	if st.TLSProfile == "" {
		st.TLSProfile = string(tlsconn.ProfileModern)
	}
	p.mu.Lock()
	if p.appKnown {
		st.AppSettings = p.app.String()
	}
	st.Mismatch = p.mismatch
	if p.rfc != nil {
		rs, mismatch := p.rfc.status()
		st.RFC2217 = &rs
		if mismatch != "" {
			st.Mismatch = mismatch
		}
	}
	if p.runErr != nil {
		st.Error = p.runErr.Error()
	}
	p.mu.Unlock()
	st.Trace, st.TraceError = p.trace.status()
	if u := p.udp; u != nil {
		st.Transport, st.UDP = TransportUDP, u.stats()
	}
	return st
}

// Spec returns the configuration the port runs with.
func (p *Port) Spec() PortSpec {
	p.mu.Lock() // SetTrace changes spec.Trace
	defer p.mu.Unlock()
	return p.spec
}

// Close stops the bridge, closes the PTY and removes its link. It is
// idempotent and waits for the port's goroutines.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.wg.Wait()
		// What the outage buffer still holds never reaches the device:
		// counted (possibly_lost, which a Restart onto a new tty
		// carries on) and logged, never dropped silently.
		if n := len(p.bridge.queued()); n > 0 {
			p.bridge.counters.lost.Add(uint64(n))
			p.log.Warn("port closed with application bytes in the outage buffer; they are dropped", "dropped", n)
		}
		p.stopTrace()
		p.closeErr = p.tty.Close()
		p.log.Info("port closed")
	})
	return p.closeErr
}

// Restart replaces p, which must be running, with a port running spec.
// The port's counters (bytes each way, connects, possibly lost, discarded)
// carry on: they belong to the port, not to one configuration. When the
// tty's own settings (link, owner, group, mode) are unchanged, the
// new port takes over p's tty and what p's outage buffer held, so an
// application that has the port open sees a pause, never a hang-up
// (DESIGN rule 1); otherwise p is closed and a new tty opened. If spec
// cannot start on the kept tty, p's own configuration is started on it
// again and the error returned with the port that runs. p is finished
// either way: use the returned port.
func (p *Port) Restart(spec PortSpec, log *slog.Logger) (*Port, error) {
	if err := spec.Validate(); err != nil {
		return p, err // p keeps running
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := p.bridge.counters
	if !samePTY(p.spec.PTY, spec.PTY) {
		_ = p.Close()
		return startPort(spec, log, n)
	}
	var queued []byte
	p.closeOnce.Do(func() {
		p.cancel()
		p.wg.Wait()
		p.stopTrace()
		queued = p.bridge.queued()
		p.closeErr = errRestarted
		p.log.Info("port restarting with its new configuration; the tty stays open", "queued", len(queued))
	})
	p.mu.Lock()
	appSet := p.appSet
	p.mu.Unlock()
	np, err := startOn(spec, log.With("port", spec.Name), p.tty, queued, appSet, n)
	if err == nil {
		return np, nil
	}
	back, berr := startOn(p.spec, p.log, p.tty, queued, appSet, n)
	if berr != nil {
		_ = p.tty.Close()
		return nil, errors.Join(err, fmt.Errorf("bridge: port %s: restoring the previous configuration: %w", p.spec.Name, berr))
	}
	return back, err
}

// errRestarted is what Close returns for a port whose tty another Port
// took over.
var errRestarted = errors.New("bridge: port restarted; its tty belongs to the new port")

// samePTY reports whether two tty configurations give the same device
// node and link, so a restart may keep the open tty.
func samePTY(a, b pty.Config) bool {
	return a.Link == b.Link && a.LockDir == b.LockDir && a.Name == b.Name && a.Owner == b.Owner && a.Group == b.Group && a.Mode == b.Mode &&
		a.Watcher == b.Watcher
}
