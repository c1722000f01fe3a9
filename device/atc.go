package device

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// escapeGuard is the silence required before and after "+++", and the
// longest gap allowed between its characters [manual].
const escapeGuard = 500 * time.Millisecond

// AT result codes (ATV0 digits, ATV1 words).
const (
	atOK         = 0
	atConnect    = 1
	atNoCarrier  = 3
	atError      = 4
	atStateCmd   = 0 // command state: serial bytes are AT command lines
	atStateWait  = 1 // ATA listening or ATD connecting
	atStateData  = 2 // online: serial bytes go to the peer
	atNameOK     = "OK"
	atNameConn   = "CONNECT"
	atNameNoCarr = "NO CARRIER"
	atNameError  = "ERROR"
)

var atResultNames = map[int]string{atOK: atNameOK, atConnect: atNameConn, atNoCarrier: atNameNoCarr, atError: atNameError}

// atc is the ATC (AT command) communication mode: the equipment on the
// serial line drives the device with AT commands; ATA waits for a TCP
// client on the local port, ATD connects to a peer; "+++" escapes from the
// online state back to the command state.
type atc struct {
	p    *Port
	set  settings
	log  *slog.Logger
	boot context.Context
	wg   sync.WaitGroup

	mu         sync.Mutex
	state      int
	echo       bool
	verbose    bool
	line       []byte
	lineBad    bool
	plp        int    // AT+PLP local port
	pto        int    // AT+PTO timeout, seconds
	prip       string // AT+PRIP remote IP
	prp        int    // AT+PRP remote port
	host       string // host part of the local address
	sess       *session
	dialing    bool
	cancelWait context.CancelFunc
	lastRx     time.Time
	plus       int
	plusAt     time.Time
	escTimer   *time.Timer
	done       bool
}

func newATC(p *Port, set settings) *atc {
	a := &atc{p: p, set: set, log: p.d.log.With("port", p.name, "mode", "ATC")}
	a.defaults()
	return a
}

// defaults sets the ATZ state: echo and words on, values from the settings.
func (a *atc) defaults() {
	a.echo, a.verbose = true, true
	a.pto = a.set.TimeoutSec
	a.p.mu.Lock()
	host, port, _ := net.SplitHostPort(a.p.addr)
	a.p.mu.Unlock()
	a.host = host
	a.plp, _ = strconv.Atoi(port)
	a.prip, a.prp = "0.0.0.0", 0
	if h, pt, err := net.SplitHostPort(a.set.Peer); err == nil {
		a.prip = h
		a.prp, _ = strconv.Atoi(pt)
	}
}

func (a *atc) prepare(ctx context.Context) error {
	a.boot = ctx
	return nil
}

func (a *atc) run(ctx context.Context) {
	<-ctx.Done()
	a.mu.Lock()
	a.done = true
	if a.escTimer != nil {
		a.escTimer.Stop()
	}
	if a.cancelWait != nil {
		a.cancelWait()
	}
	s := a.sess
	a.mu.Unlock()
	if s != nil {
		s.close()
	}
	a.wg.Wait()
}

// reply writes a result code framed as the V setting asks.
func (a *atc) reply(ctx context.Context, code int) {
	a.mu.Lock()
	v := a.verbose
	a.mu.Unlock()
	if v {
		a.p.writeSerial(ctx, []byte("\r\n"+atResultNames[code]+"\r\n"))
	} else {
		a.p.writeSerial(ctx, []byte(strconv.Itoa(code)+"\r"))
	}
}

// info writes an information text line (ATI, queries).
func (a *atc) info(ctx context.Context, text string) {
	a.p.writeSerial(ctx, []byte("\r\n"+text+"\r\n"))
}

func (a *atc) fromSerial(ctx context.Context, b []byte) {
	now := time.Now()
	a.mu.Lock()
	switch a.state {
	case atStateData:
		s := a.sess
		a.escape(now, b)
		a.mu.Unlock()
		if s == nil || !s.ready.Load() {
			a.p.dropped.Add(uint64(len(b)))
			return
		}
		s.send(b, &a.p.dropped)
	case atStateWait:
		// A character from the equipment aborts ATA/ATD, as on a modem.
		cancel := a.cancelWait
		a.mu.Unlock()
		a.p.dropped.Add(uint64(len(b)))
		if cancel != nil {
			cancel()
		}
	default:
		var echo []byte
		var lines []string
		var bad []bool
		for _, c := range b {
			if a.echo {
				echo = append(echo, c)
			}
			switch {
			case c == '\r':
				lines, bad = append(lines, string(a.line)), append(bad, a.lineBad)
				a.line, a.lineBad = a.line[:0], false
			case c == '\n' || c == 0:
			case c == 8 || c == 127:
				if len(a.line) > 0 {
					a.line = a.line[:len(a.line)-1]
				}
			case len(a.line) >= maxATLine:
				a.lineBad = true
			default:
				a.line = append(a.line, c)
			}
		}
		a.mu.Unlock()
		if len(echo) > 0 {
			a.p.writeSerial(ctx, echo)
		}
		for i, l := range lines {
			a.mu.Lock()
			st := a.state
			a.mu.Unlock()
			if st != atStateCmd {
				break // ATA/ATD: the rest is input typed while waiting
			}
			if bad[i] {
				a.reply(ctx, atError)
				continue
			}
			a.execute(ctx, l)
		}
	}
}

// escape tracks "+++" in online data (a.mu held): at least escapeGuard of
// silence before the first '+', at most escapeGuard between them, and
// escapeGuard of silence after the third, checked by a timer.
func (a *atc) escape(now time.Time, b []byte) {
	if a.escTimer != nil {
		a.escTimer.Stop()
	}
	gap := now.Sub(a.lastRx)
	for _, c := range b {
		switch {
		case c != '+':
			a.plus = 0
		case a.plus == 0 && gap >= escapeGuard:
			a.plus, a.plusAt = 1, now
		case a.plus > 0 && a.plus < 3 && now.Sub(a.plusAt) <= escapeGuard:
			a.plus, a.plusAt = a.plus+1, now
		default:
			a.plus = 0
		}
		gap = 0
	}
	a.lastRx = now
	if a.plus == 3 && !a.done {
		a.escTimer = time.AfterFunc(escapeGuard, func() {
			a.mu.Lock()
			ok := !a.done && a.plus == 3 && a.lastRx.Equal(now) && a.state == atStateData
			if ok {
				a.plus = 0
				a.state = atStateCmd
			}
			a.mu.Unlock()
			if ok {
				a.log.Info("escape to command state")
				a.reply(a.boot, atOK)
			}
		})
	}
}

// execute runs one AT command line.
func (a *atc) execute(ctx context.Context, line string) {
	if strings.TrimSpace(line) == "" {
		return
	}
	cmds, err := parseAT(line)
	if err != nil {
		a.log.Debug("AT", "line", line, "err", err)
		a.reply(ctx, atError)
		return
	}
	for _, c := range cmds {
		code, async := a.do(ctx, c)
		if async {
			return // ATA/ATD answer CONNECT or NO CARRIER later
		}
		if code != atOK {
			a.reply(ctx, code)
			return
		}
	}
	a.reply(ctx, atOK)
}

// do runs one command. async reports that the result comes later.
func (a *atc) do(ctx context.Context, c atCmd) (code int, async bool) {
	onoff := func(set func(bool)) int {
		switch c.Arg {
		case "", "0":
			set(false)
		case "1":
			set(true)
		default:
			return atError
		}
		return atOK
	}
	switch c.Name {
	case "A":
		if !a.startAnswer() { // a session is up, or the device is stopping
			return atError, false
		}
		return atOK, true
	case "D":
		if !a.startDial(c.Arg) {
			return atError, false
		}
		return atOK, true
	case "E":
		return onoff(func(v bool) { a.mu.Lock(); a.echo = v; a.mu.Unlock() }), false
	case "V":
		return onoff(func(v bool) { a.mu.Lock(); a.verbose = v; a.mu.Unlock() }), false
	case "H":
		a.hangUp()
		return atOK, false
	case "O":
		a.mu.Lock()
		s := a.sess
		if s != nil {
			a.state = atStateData
			a.lastRx = time.Now()
			a.plus = 0
		}
		a.mu.Unlock()
		if s == nil {
			return atNoCarrier, false
		}
		a.reply(ctx, atConnect)
		return atOK, true
	case "Z":
		a.hangUp()
		a.mu.Lock()
		a.defaults()
		a.mu.Unlock()
		return atOK, false
	case "I":
		switch c.Arg {
		case "", "0":
			a.info(ctx, a.p.d.model.name)
		case "3":
			a.info(ctx, a.p.d.model.name+" / "+a.p.d.cfg.Firmware)
		case "7":
			a.info(ctx, a.p.d.mac.String())
		default:
			return atError, false
		}
		return atOK, false
	case "+PLP", "+PTO", "+PRP":
		a.mu.Lock()
		ptr := map[string]*int{"+PLP": &a.plp, "+PTO": &a.pto, "+PRP": &a.prp}[c.Name]
		v := *ptr
		a.mu.Unlock()
		if c.Query {
			a.info(ctx, strconv.Itoa(v))
			return atOK, false
		}
		if !c.Set {
			return atError, false
		}
		n, err := strconv.Atoi(c.Arg)
		if err != nil || n < 0 || n > 65535 {
			return atError, false
		}
		a.mu.Lock()
		*ptr = n
		a.mu.Unlock()
		return atOK, false
	case "+PRIP":
		if c.Query {
			a.mu.Lock()
			v := a.prip
			a.mu.Unlock()
			a.info(ctx, v)
			return atOK, false
		}
		if ip := net.ParseIP(c.Arg); !c.Set || ip == nil || ip.To4() == nil {
			return atError, false
		}
		a.mu.Lock()
		a.prip = c.Arg
		a.mu.Unlock()
		return atOK, false
	}
	return atError, false
}

// hangUp closes the session (ATH, ATZ). The session is detached first, so
// the local hang-up answers OK only, without NO CARRIER.
func (a *atc) hangUp() {
	a.mu.Lock()
	s := a.sess
	a.sess = nil
	a.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// beginWait switches to the waiting state and accounts for the goroutine
// the caller then starts (it must call a.wg.Done); false when a session is
// up or the boot is ending.
func (a *atc) beginWait() (context.Context, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sess != nil || a.done {
		return nil, false
	}
	ctx, cancel := context.WithCancel(a.boot)
	a.state, a.cancelWait = atStateWait, cancel
	a.wg.Add(1) // under a.mu with done false: run's Wait cannot have started
	return ctx, true
}

// startAnswer handles ATA: listen on the local port for one client.
func (a *atc) startAnswer() bool {
	wctx, ok := a.beginWait()
	if !ok {
		return false
	}
	a.mu.Lock()
	addr := net.JoinHostPort(a.host, strconv.Itoa(a.plp))
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(wctx, "tcp", addr)
		if err != nil {
			a.log.Info("ATA: listen failed", "err", err)
			a.connected(nil)
			return
		}
		a.p.mu.Lock()
		a.p.bound = ln.Addr()
		a.p.mu.Unlock()
		stop := context.AfterFunc(wctx, func() { ln.Close() })
		c, err := ln.Accept()
		stop()
		ln.Close()
		a.p.mu.Lock()
		a.p.bound = nil
		a.p.mu.Unlock()
		if err != nil {
			a.connected(nil)
			return
		}
		a.p.setKeepAlive(c, a.set)
		raw := newCountingConn(c, &a.p.netRx, &a.p.netTx)
		s := &session{raw: raw, conn: raw, peer: c.RemoteAddr().String()}
		if a.set.SSL {
			tc := tls.Server(raw, a.p.serverTLS())
			s.conn = tc
			hctx, cancel := context.WithTimeout(wctx, handshakeTimeout)
			err := tc.HandshakeContext(hctx)
			cancel()
			if err != nil {
				a.log.Info("ATA: TLS handshake failed", "err", err)
				s.close()
				a.connected(nil)
				return
			}
			st := tc.ConnectionState()
			s.cipher, s.version = deviceCipherName(st.CipherSuite), tls.VersionName(st.Version)
		}
		a.connected(s)
	}()
	return true
}

// startDial handles ATD: connect to the dial string's host[:port], or to
// AT+PRIP:AT+PRP when it is empty.
func (a *atc) startDial(dial string) bool {
	a.mu.Lock()
	host, port := a.prip, a.prp
	a.mu.Unlock()
	if dial != "" {
		if h, p, err := net.SplitHostPort(dial); err == nil {
			host = h
			port, _ = strconv.Atoi(p)
		} else {
			host = dial
		}
	}
	wctx, ok := a.beginWait()
	if !ok {
		return false
	}
	a.mu.Lock()
	a.dialing = true
	a.mu.Unlock()
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	go func() {
		defer a.wg.Done()
		dialer := net.Dialer{Timeout: dialTimeout, KeepAlive: -1}
		c, err := dialer.DialContext(wctx, "tcp", addr)
		if err != nil {
			a.log.Info("ATD: connect failed", "addr", addr, "err", err)
			a.connected(nil)
			return
		}
		a.p.setKeepAlive(c, a.set)
		raw := newCountingConn(c, &a.p.netRx, &a.p.netTx)
		s := &session{raw: raw, conn: raw, peer: c.RemoteAddr().String()}
		if a.set.SSL {
			s.conn = tls.Client(raw, a.p.clientTLS())
		}
		if err := handshakeClient(wctx, s); err != nil {
			a.log.Info("ATD: TLS handshake failed", "err", err)
			s.close()
			a.connected(nil)
			return
		}
		a.connected(s)
	}()
	return true
}

// connected ends the waiting state: with a session it goes online and
// serves it; without one it answers NO CARRIER.
func (a *atc) connected(s *session) {
	a.mu.Lock()
	if a.cancelWait != nil {
		a.cancelWait()
		a.cancelWait = nil
	}
	a.dialing = false
	if s == nil || a.done {
		a.state = atStateCmd
		a.mu.Unlock()
		if s != nil {
			s.close()
		}
		a.reply(a.boot, atNoCarrier)
		return
	}
	s.touch()
	s.ready.Store(true)
	a.sess = s
	a.state = atStateData
	a.lastRx = time.Now()
	a.plus = 0
	pto := a.pto
	a.mu.Unlock()
	a.log.Info("session up", "peer", s.peer, "tls", s.version)
	a.reply(a.boot, atConnect)
	a.p.netToSerial(a.boot, s, pto, a.log)
	s.close()
	a.mu.Lock()
	remote := a.sess == s // still attached: not hung up locally
	if remote {
		a.sess = nil
		a.state = atStateCmd
	}
	a.mu.Unlock()
	a.log.Info("session closed", "remote", remote)
	if remote {
		a.reply(a.boot, atNoCarrier)
	}
}

func (a *atc) closeSession() bool { return closeCurrent(&a.mu, &a.sess) }

func (a *atc) status() modeStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := modeStatus{TCPState: "CLOSED"}
	switch {
	case a.sess != nil:
		st.TCPState = "ESTABLISHED"
		st.Peer = a.sess.peer
		if a.set.SSL {
			st.SSLState, st.Cipher, st.Version = 8, a.sess.cipher, a.sess.version
		}
	case a.state == atStateWait && a.dialing:
		st.TCPState = "SYN_SENT"
	case a.state == atStateWait:
		st.TCPState = "LISTEN"
	}
	return st
}

// String names the ATC state (for logs and tests).
func (a *atc) String() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return fmt.Sprintf("ATC state %d", a.state)
}
