package device

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Port is one serial port of the device (COM1, COM2) with the communication
// mode it runs. Ports live as long as the device; a reset re-boots them.
type Port struct {
	d    *Device
	idx  int
	name string
	spec string  // backend specification
	be   backend // set by Start

	sioRx, sioTx, netRx, netTx, dropped, purged atomic.Uint64

	// rxmu orders the bytes received from the line with receive purges
	// (RFC 2217 PURGE-DATA): pump holds it while it checks that bytes are
	// not stale and records them in handing, purge while it flushes the
	// backend. It is never held across the handing over (a network write
	// that can block): purge runs in the session's reading goroutine, and
	// waiting there for a client that does not read would also stop the
	// client's data to the line.
	rxmu sync.Mutex
	// handing is closed when the bytes pump is handing to the mode have
	// been taken (sent to the client); nil while it hands none. Guarded
	// by rxmu.
	handing chan struct{}

	lmu     sync.Mutex // serialises changes of the line (console, RFC 2217): read, configure, store
	mu      sync.Mutex
	addr    string   // listen address, pinned to the actual port after the first boot
	bound   net.Addr // current listener address
	line    Serial
	enabled bool
	mode    mode
}

// Counters are a port's byte counters since the last boot, named as on the
// device's status screen. Net counters count bytes on the TCP connection,
// TLS records included, as the device does.
type Counters struct {
	SioRx   uint64 `json:"sio_rx"`  // received from the serial line
	NetTx   uint64 `json:"net_tx"`  // sent to the network
	NetRx   uint64 `json:"net_rx"`  // received from the network
	SioTx   uint64 `json:"sio_tx"`  // sent to the serial line
	Dropped uint64 `json:"dropped"` // serial bytes discarded (no session, Event Byte buffer full)
	Purged  uint64 `json:"purged"`  // bytes discarded by RFC 2217 PURGE-DATA (both directions)
}

// mode is a communication mode a COM port runs (T2S today; COD, ATC and U2S
// get a type of their own implementing this interface).
type mode interface {
	// prepare binds what must be up before Start returns.
	prepare(ctx context.Context) error
	// run serves until ctx is cancelled, then releases everything it owns.
	run(ctx context.Context)
	// fromSerial delivers bytes received on the serial line; it may block
	// (flow control) until ctx ends.
	fromSerial(ctx context.Context, b []byte)
	// closeSession drops the network session; it reports whether one was up.
	closeSession() bool
	// status reports the mode's state for the status screen.
	status() modeStatus
}

// modeStatus is what a mode reports for the status screen.
type modeStatus struct {
	TCPState string // LISTEN, ESTABLISHED, CLOSED
	Peer     string
	Local    string // local address of the session when it is not the listener's (COD)
	SSLState int    // 1 listening, 7 handshaking, 8 session up, 0 off
	Cipher   string // RSA_AES_256_CBC_SHA style
	Version  string // TLS 1.0 ...
	Buffered int    // Event Byte buffer
}

// Name returns "COM1" or "COM2".
func (p *Port) Name() string { return p.name }

// Addr returns the address the port's data listener is bound to (nil when
// the port is disabled or not started).
func (p *Port) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bound
}

// Serial returns the port's current serial settings.
func (p *Port) Serial() Serial {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.line
}

// Counters returns the byte counters.
func (p *Port) Counters() Counters {
	return Counters{SioRx: p.sioRx.Load(), NetTx: p.netTx.Load(), NetRx: p.netRx.Load(), SioTx: p.sioTx.Load(),
		Dropped: p.dropped.Load(), Purged: p.purged.Load()}
}

// SetSerial changes the port's serial settings at run time (the hook for
// RFC 2217 and the console). Zero fields take the defaults. The model limits
// apply (e.g. at most 115200 bps with SSL on: *LimitError with Rule
// RuleSSLMaxBaud); on error nothing changes.
func (p *Port) SetSerial(s Serial) error {
	d := p.d
	s = s.withDefaults()
	p.lmu.Lock()
	defer p.lmu.Unlock()
	d.mu.Lock()
	next := d.set.clone()
	for len(next.Lines) <= p.idx {
		next.Lines = append(next.Lines, Serial{}.withDefaults())
	}
	next.Lines[p.idx] = s
	if err := next.validate(d.model); err != nil {
		d.mu.Unlock()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	if p.be != nil {
		if err := p.be.configure(s); err != nil {
			d.mu.Unlock()
			return err
		}
	}
	d.set = next
	if p.idx < len(d.running.Lines) {
		d.running.Lines[p.idx] = s
	}
	d.mu.Unlock()
	p.mu.Lock()
	p.line = s
	p.mu.Unlock()
	d.log.Info("serial settings changed", "port", p.name, "serial", s.String())
	return nil
}

// CloseSession drops the port's network session (console "sc com1 close");
// it reports whether one was up.
func (p *Port) CloseSession() bool {
	p.mu.Lock()
	m := p.mode
	p.mu.Unlock()
	return m != nil && m.closeSession()
}

func (p *Port) currentMode() mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// boot starts the port's mode for one boot of the device.
func (p *Port) boot(br *bootRun, set settings, enabled bool) error {
	p.sioRx.Store(0)
	p.sioTx.Store(0)
	p.netRx.Store(0)
	p.netTx.Store(0)
	p.dropped.Store(0)
	p.purged.Store(0)
	line := Serial{}.withDefaults()
	if p.idx < len(set.Lines) {
		line = set.Lines[p.idx]
	}
	if err := p.be.configure(line); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.mu.Lock()
	p.line = line
	p.enabled = enabled
	p.mu.Unlock()
	if !enabled {
		return nil
	}
	var m mode
	switch set.Mode {
	case "COD":
		m = newCOD(p, set)
	case "ATC":
		m = newATC(p, set)
	case "U2S":
		m = newU2S(p, set)
	default:
		m = newT2S(p, set)
	}
	if err := m.prepare(br.ctx); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
	br.wg.Add(1)
	go func() {
		defer br.wg.Done()
		m.run(br.ctx)
	}()
	return nil
}

// halt detaches the mode (it stops by itself when the boot context ends).
func (p *Port) halt() {
	p.mu.Lock()
	p.mode = nil
	p.bound = nil
	p.mu.Unlock()
}

// listen binds the port's data listener, pinning the actual port so a reboot
// listens on the same address.
func (p *Port) listen(ctx context.Context) (net.Listener, error) {
	p.mu.Lock()
	addr := p.addr
	p.mu.Unlock()
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("device: listen: %w", err)
	}
	p.mu.Lock()
	p.addr = ln.Addr().String()
	p.bound = ln.Addr()
	p.mu.Unlock()
	return ln, nil
}

// pump reads the serial line for the device's lifetime and hands the bytes
// to the running mode (dropping them while none runs). Bytes it took from
// the line before a receive purge are dropped too (counted in purged),
// even when the purge came while it held them (pacing, or a session slow
// to take them).
func (p *Port) pump(ctx context.Context) {
	defer p.d.wg.Done()
	buf := make([]byte, 4096)
	for {
		n, epoch, err := p.be.read(buf)
		if n > 0 {
			p.sioRx.Add(uint64(n))
			p.pace(ctx, n, false)
			p.rxmu.Lock()
			if p.be.inputEpoch() != epoch {
				p.rxmu.Unlock()
				p.purged.Add(uint64(n))
				p.d.log.Info("serial bytes received before a purge dropped", "port", p.name, "bytes", n)
			} else if m := p.currentMode(); m != nil {
				done := make(chan struct{})
				p.handing = done
				p.rxmu.Unlock()
				m.fromSerial(ctx, buf[:n])
				p.rxmu.Lock()
				p.handing = nil
				p.rxmu.Unlock()
				close(done)
			} else {
				p.rxmu.Unlock()
				p.dropped.Add(uint64(n))
			}
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				p.d.log.Debug("serial read ended", "port", p.name, "err", err)
			}
			return
		}
	}
}

// purge discards what the port holds of the line's data: with input, the
// bytes received from the line not yet sent to the network; with output,
// the bytes held for the line. It returns how many it dropped of each.
//
// A receive purge returns (and the RFC 2217 server answers) after the
// bytes pump was handing to the client when it came: they left the line
// before the purge, so the client must get them before the answer (it
// drops them). It waits for them at most purgeHandoverWait: a client that
// takes nothing for that long is not reading, and waiting longer would
// stop its data to the line too (a real device never holds its TCP side
// for a purge); those bytes may then reach it after the answer.
func (p *Port) purge(input, output bool) (in, out int, err error) {
	p.rxmu.Lock()
	in, out, err = p.be.flush(input, output)
	handing := p.handing
	p.rxmu.Unlock()
	p.purged.Add(uint64(in + out))
	if input && handing != nil {
		t := time.NewTimer(purgeHandoverWait)
		defer t.Stop()
		select {
		case <-handing:
		case <-t.C:
			p.d.log.Warn("purge answered while serial bytes received before it were still being sent: the client is not reading", "port", p.name, "waited", purgeHandoverWait)
		}
	}
	return in, out, err
}

// purgeHandoverWait bounds how long a receive purge waits for the bytes
// being sent to the client when it came (Port.purge).
const purgeHandoverWait = time.Second

// writeSerial sends b to the serial line, paced when configured.
func (p *Port) writeSerial(ctx context.Context, b []byte) error {
	line := p.Serial()
	step := len(b)
	if line.TXInterval > 0 {
		step = 1
	} else if p.d.cfg.Pacing {
		step = max(1, line.Baud/line.bitsPerChar()/100) // about 10 ms of line time
	}
	for len(b) > 0 {
		k := min(step, len(b))
		n, err := p.be.write(ctx, b[:k])
		p.sioTx.Add(uint64(n))
		if err != nil {
			return err
		}
		b = b[k:]
		p.pace(ctx, k, true)
		if line.TXInterval > 0 && len(b) > 0 {
			sleep(ctx, time.Duration(line.TXInterval)*time.Millisecond)
		}
	}
	return nil
}

// pace sleeps for the line time of n characters when pacing is on.
func (p *Port) pace(ctx context.Context, n int, _ bool) {
	if !p.d.cfg.Pacing {
		return
	}
	line := p.Serial()
	sleep(ctx, time.Duration(n*line.bitsPerChar())*time.Second/time.Duration(line.Baud))
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
