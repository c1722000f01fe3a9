package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/pty"
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
	Devices []string // device addresses, primary first
	Link    tlsconn.Config
	Bridge  BridgeConfig
	// Serial is the device's configured serial line; a zero Baud disables
	// the mismatch guard.
	Serial SerialSettings
	// StrictSerial holds data while the application's baud rate differs
	// from Serial.Baud.
	StrictSerial bool
	// Source is where the spec came from (a file path, or "command line").
	Source string
}

// Validate checks what StartPort cannot do without.
func (s *PortSpec) Validate() error {
	if s.Name == "" {
		return errors.New("service: port has no name")
	}
	if len(s.Devices) == 0 {
		return fmt.Errorf("service: port %s: no device address", s.Name)
	}
	for _, d := range s.Devices {
		if _, _, err := net.SplitHostPort(d); err != nil {
			return fmt.Errorf("service: port %s: device %q: %w", s.Name, d, err)
		}
	}
	if err := s.Link.Validate(); err != nil {
		return fmt.Errorf("service: port %s: %w", s.Name, err)
	}
	return nil
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
	mismatch string
}

// StartPort opens the port's PTY and starts bridging it to the device. The
// Port runs until Close.
func StartPort(spec PortSpec, log *slog.Logger) (*Port, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("port", spec.Name)
	tty, err := pty.Open(spec.PTY, log)
	if err != nil {
		return nil, fmt.Errorf("service: port %s: %w", spec.Name, err)
	}
	p := &Port{spec: spec, log: log, tty: tty, start: time.Now()}
	p.bridge = NewBridge(tty, p.dial, spec.Bridge, log)
	if st, err := tty.Settings(); err == nil {
		p.app = st
		p.appKnown = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
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
	log.Info("port ready", "link", tty.Link(), "tty", tty.Name(), "device", spec.Devices[0])
	return p, nil
}

// dial tries the device addresses in order, primary first.
func (p *Port) dial(ctx context.Context) (net.Conn, tlsconn.Info, error) {
	var errs []error
	for _, addr := range p.spec.Devices {
		conn, info, err := tlsconn.Dial(ctx, addr, p.spec.Link, p.log)
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

// watch follows the application's use of the port: termios changes (for
// the mismatch guard and status) and opens (for the stale-data policy).
func (p *Port) watch(ctx context.Context) {
	p.checkSerial()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-p.tty.Events():
			if !ok {
				return
			}
			switch ev.Kind {
			case pty.SettingsChanged:
				p.mu.Lock()
				p.app = ev.Settings
				p.appKnown = true
				p.mu.Unlock()
				p.log.Info("application changed serial settings", "settings", ev.Settings.String())
				p.checkSerial()
			case pty.AppClosed:
				// Flush at the last close, not at the next open: an
				// application that has just opened the port may already
				// have written and be waiting for the reply, which a flush
				// at open (inotify is asynchronous) would race with. While
				// no application has the port open, the bridge drops what
				// the device sends (see Bridge), so the queue stays empty.
				if p.spec.Bridge.StaleData != StaleKeep {
					if err := p.tty.DiscardInput(); err != nil {
						p.log.Warn("discard stale data", "err", err)
					}
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
	Started      time.Time      `json:"started"`
	Error        string         `json:"error,omitempty"`
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
	if p.runErr != nil {
		st.Error = p.runErr.Error()
	}
	p.mu.Unlock()
	return st
}

// Spec returns the configuration the port runs with.
func (p *Port) Spec() PortSpec { return p.spec }

// Close stops the bridge, closes the PTY and removes its link. It is
// idempotent and waits for the port's goroutines.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		p.cancel()
		p.wg.Wait()
		p.closeErr = p.tty.Close()
		p.log.Info("port closed")
	})
	return p.closeErr
}
