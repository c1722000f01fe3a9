package bridge

import (
	"fmt"
	"reflect"
	"sync"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/monitor"
	"github.com/vsp-dev/vsp/tlsconn"
)

// What a port tells its observers (service/monitor): the bytes each way
// (tapped in bridge.go) and its events, in order with them.

// Hub returns the port's observers' hub: `vsp monitor` subscribes to it.
// It is the same hub across Restart.
func (p *Port) Hub() *monitor.Hub { return p.bridge.hub }

// tapEvent records an application's use of the tty.
func (p *Port) tapEvent(ev pty.Event) {
	h := p.bridge.hub
	if !h.Active() {
		return
	}
	switch ev.Kind {
	case pty.AppOpened:
		h.Event(monitor.KindOpen, 0, "")
	case pty.AppClosed:
		h.Event(monitor.KindClose, 0, "")
	case pty.SettingsChanged:
		h.Event(monitor.KindSettings, 0, ev.Settings.String())
	}
}

// tapFlush records an application's flush (in the goroutine that reads
// the tty, so in order with its data): dropped bytes of the outage buffer,
// and whether it went to the device as RFC 2217 PURGE-DATA.
func (b *Bridge) tapFlush(k pty.EventKind, dropped int, purge bool) {
	if !b.hub.Active() {
		return
	}
	d := "input (tcflush TCIFLUSH)"
	if k == pty.FlushWrite {
		d = "output (tcflush TCOFLUSH)"
	}
	if purge {
		d += ", PURGE-DATA sent to the device"
	}
	b.hub.Event(monitor.KindFlush, uint64(dropped), d)
}

// tapHold records the mismatch guard holding data, or letting it go.
func (b *Bridge) tapHold(reason string) {
	if reason != "" {
		b.hub.Event(monitor.KindHeld, 0, "data held: "+reason)
	} else {
		b.hub.Event(monitor.KindReleased, 0, "data no longer held")
	}
}

func (b *Bridge) tapLinkUp(info tlsconn.Info) {
	if !b.hub.Active() {
		return
	}
	d := info.Addr
	if info.Version != "" {
		d += " " + info.Version
	}
	b.hub.Event(monitor.KindLinkUp, 0, d)
}

func (b *Bridge) tapLinkDown(err error) {
	if !b.hub.Active() {
		return
	}
	d := "link lost"
	if err != nil {
		d = err.Error()
	}
	b.hub.Event(monitor.KindLinkDown, 0, d)
}

// traceState is a port's trace file: the one [trace] asks for, or why it
// cannot be written.
type traceState struct {
	mu  sync.Mutex
	cur *monitor.Trace
	err error
}

func (t *traceState) status() (file, errText string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cur != nil {
		file = t.cur.Config().File
	}
	if t.err != nil {
		errText = t.err.Error()
	}
	return file, errText
}

// startTrace opens the trace file spec.Trace names, if any. A trace that
// cannot be opened does not stop the port: the error is logged and shown
// in Status.
func (p *Port) startTrace() {
	p.mu.Lock()
	cfg := p.spec.Trace // SetTrace changes it
	p.mu.Unlock()
	p.trace.mu.Lock()
	defer p.trace.mu.Unlock()
	if p.trace.cur != nil {
		_ = p.trace.cur.Close()
		p.trace.cur = nil
	}
	p.trace.err = nil
	if cfg.File == "" {
		return
	}
	t, err := monitor.StartTrace(p.bridge.hub, cfg, p.log)
	if err != nil {
		p.trace.err = fmt.Errorf("bridge: port %s: %w", p.spec.Name, err)
		p.log.Error("trace file not written", "err", err)
		return
	}
	p.trace.cur = t
	p.log.Info("tracing the port's traffic", "file", cfg.File)
}

func (p *Port) stopTrace() {
	p.trace.mu.Lock()
	defer p.trace.mu.Unlock()
	if p.trace.cur != nil {
		_ = p.trace.cur.Close()
		p.trace.cur = nil
	}
}

// SetTrace applies a new [trace] table to the running port: the trace file
// is closed and the new one opened; the tty, the link and the bridge are
// not touched. It returns the error StartTrace gave, if any (the port runs
// on, untraced).
func (p *Port) SetTrace(cfg monitor.TraceConfig) error {
	p.mu.Lock()
	p.spec.Trace = cfg
	p.mu.Unlock()
	p.startTrace()
	p.trace.mu.Lock()
	defer p.trace.mu.Unlock()
	return p.trace.err
}

// OnlyTraceDiffers reports whether a and b differ in nothing but Trace:
// then SetTrace applies b, with no restart.
func OnlyTraceDiffers(a, b PortSpec) bool {
	a.Trace, b.Trace = monitor.TraceConfig{}, monitor.TraceConfig{}
	return reflect.DeepEqual(a, b)
}
