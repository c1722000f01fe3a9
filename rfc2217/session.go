package rfc2217

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"time"
)

const (
	writeChunk       = 16 << 10 // data bytes escaped and written per conn.Write
	maxControlQueue  = 64 << 10 // queued Telnet commands before ErrControlOverflow
	closeFlushWindow = 500 * time.Millisecond
)

// option negotiation states (RFC 1143 "Q method", without the queue bit)
type qstate uint8

const (
	qNo qstate = iota
	qYes
	qWantYes
	qWantNo
)

// session is the part shared by Client and Server: the Telnet stream over
// conn, option negotiation, a queue of outgoing commands and its sender
// goroutine.
//
// Locks: readMu serialises Read; dataMu serialises Write; connMu serialises
// conn.Write between data chunks and queued commands; afterMu guards the
// messages queued behind the data (sendAfterData); optMu guards option
// states; ctrlMu guards the command queue. Order: optMu before ctrlMu;
// dataMu before afterMu and connMu.
type session struct {
	conn net.Conn
	log  *slog.Logger

	// reader side (readMu)
	readMu   sync.Mutex
	dec      Decoder
	pending  []byte // data decoded before the first Read
	rerr     error  // sticky protocol error
	deferred error  // connection error to return after the data read with it
	handle   func(Event) error
	drop     func(n int) bool // nil, or whether n decoded data bytes are dropped
	// ordered: a command takes effect after the data before it has been
	// returned by Read (the Server: a PURGE-DATA or SET-BAUDRATE that
	// follows data in one segment is handled after the caller has
	// written that data to the serial line, not before). held is such a
	// command, raw the undecoded bytes after it.
	ordered bool
	held    *Event
	raw     []byte

	// writer side
	dataMu sync.Mutex
	wbuf   []byte
	connMu sync.Mutex
	// after are messages queued by sendAfterData while a write held
	// dataMu: whoever holds dataMu writes them before its data and before
	// releasing it (guarded by afterMu).
	afterMu sync.Mutex
	after   []byte

	// option negotiation
	optMu   sync.Mutex
	us, him [256]qstate
	accept  func(opt byte) bool

	// outgoing command queue
	ctrlMu  sync.Mutex
	ctrl    []byte
	spare   []byte
	ctrlErr error
	wake    chan struct{}
	done    chan struct{}
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

func newSession(conn net.Conn, log *slog.Logger) *session {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &session{
		conn:   conn,
		log:    log,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		accept: func(opt byte) bool { return opt == OptBinary || opt == OptSGA || opt == OptComPort },
	}
	return s
}

func (s *session) start() {
	s.wg.Go(s.sender)
}

// sender writes queued commands. It exits when the connection fails or the
// session is closed, after a last flush.
func (s *session) sender() {
	for {
		stop := false
		select {
		case <-s.wake:
		case <-s.done:
			stop = true
		}
		s.ctrlMu.Lock()
		b := s.ctrl
		s.ctrl = s.spare[:0]
		s.spare = nil
		s.ctrlMu.Unlock()
		if len(b) > 0 {
			s.connMu.Lock()
			_, err := s.conn.Write(b)
			s.connMu.Unlock()
			if err != nil {
				s.ctrlMu.Lock()
				if s.ctrlErr == nil {
					s.ctrlErr = err
				}
				s.ctrlMu.Unlock()
				if !stop {
					s.log.Debug("rfc2217: sending commands failed", "err", err)
				}
				return
			}
		}
		s.ctrlMu.Lock()
		s.spare = b[:0]
		more := len(s.ctrl) > 0
		s.ctrlMu.Unlock()
		if stop && !more {
			return
		}
		if more {
			s.kick()
		}
	}
}

func (s *session) kick() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// enqueue appends bytes produced by fn to the command queue. It never blocks
// on the network.
func (s *session) enqueue(fn func([]byte) []byte) error {
	s.ctrlMu.Lock()
	defer s.ctrlMu.Unlock()
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	if s.ctrlErr != nil {
		return s.ctrlErr
	}
	if len(s.ctrl) > maxControlQueue {
		s.ctrlErr = ErrControlOverflow
		return ErrControlOverflow
	}
	s.ctrl = fn(s.ctrl)
	s.kick()
	return nil
}

func (s *session) sendMessage(m Message) error {
	s.log.Debug("rfc2217: send", "msg", m)
	return s.enqueue(m.Append)
}

// sendInline writes m into the stream at once, in order with the data:
// after every data byte whose write returned before, and before
// every data byte written after. Queued commands may be overtaken.
func (s *session) sendInline(m Message) error {
	s.log.Debug("rfc2217: send inline", "msg", m)
	s.dataMu.Lock()
	select {
	case <-s.done:
		_ = s.releaseData(nil)
		return ErrClosed
	default:
	}
	if err := s.writeAfter(); err != nil {
		_ = s.releaseData(nil)
		return err
	}
	s.connMu.Lock()
	_, err := s.conn.Write(m.Append(nil))
	s.connMu.Unlock()
	_ = s.releaseData(nil)
	return err
}

// sendAfterData writes m into the stream in order with the data, like
// sendInline, without waiting for a write in progress: after the data of
// the writes that returned before it or are in progress, before the data
// of writes that start after. If a write holds dataMu (blocked on a peer
// that does not read) m is queued and that writer sends it when its data
// is out, so the caller (the Server's reading goroutine, answering a
// request) never waits for the peer to read. The error is that of a write
// done here; a queued message's error is its writer's.
func (s *session) sendAfterData(m Message) error {
	s.log.Debug("rfc2217: send after data", "msg", m)
	s.afterMu.Lock()
	s.after = m.Append(s.after)
	s.afterMu.Unlock()
	if !s.dataMu.TryLock() {
		return nil // the holder sends it (releaseData)
	}
	return s.releaseData(nil)
}

// writeAfter writes the messages sendAfterData queued. The caller holds
// dataMu.
func (s *session) writeAfter() error {
	s.afterMu.Lock()
	b := s.after
	s.after = nil
	s.afterMu.Unlock()
	if len(b) == 0 {
		return nil
	}
	select {
	case <-s.done:
		return ErrClosed
	default:
	}
	s.connMu.Lock()
	_, err := s.conn.Write(b)
	s.connMu.Unlock()
	return err
}

// releaseData writes what sendAfterData queued and releases dataMu, again
// while messages came meanwhile and dataMu is free (a message queued
// while the holder was releasing it is never left behind). It returns err,
// or the error of writing the messages.
func (s *session) releaseData(err error) error {
	for {
		if werr := s.writeAfter(); err == nil {
			err = werr
		}
		s.dataMu.Unlock()
		s.afterMu.Lock()
		more := len(s.after) > 0
		s.afterMu.Unlock()
		if !more || !s.dataMu.TryLock() {
			return err
		}
	}
}

// request asks to enable an option: local = our side (WILL), else the peer's
// side (DO). Call before the reader runs or with it running; both are safe.
func (s *session) request(opt byte, local bool) error {
	s.optMu.Lock()
	defer s.optMu.Unlock()
	st, verb := &s.him[opt], DO
	if local {
		st, verb = &s.us[opt], WILL
	}
	if *st != qNo {
		return nil
	}
	*st = qWantYes
	return s.enqueue(func(b []byte) []byte { return AppendCommand(b, verb, opt) })
}

func (s *session) state(opt byte, local bool) qstate {
	s.optMu.Lock()
	defer s.optMu.Unlock()
	if local {
		return s.us[opt]
	}
	return s.him[opt]
}

// negotiate handles a received WILL/WONT/DO/DONT without ever acknowledging a
// state already in effect (RFC 854, RFC 1143).
func (s *session) negotiate(verb, opt byte) error {
	local := verb == DO || verb == DONT
	positive := verb == WILL || verb == DO
	yes, no := DO, DONT
	st := &s.him[opt]
	if local {
		yes, no = WILL, WONT
		st = &s.us[opt]
	}
	s.optMu.Lock()
	old := *st
	var reply byte
	switch {
	case positive && old == qNo:
		if s.accept(opt) {
			*st, reply = qYes, yes
		} else {
			reply = no
		}
	case positive && old == qWantYes:
		*st = qYes
	case positive && old == qWantNo: // peer answered our refusal with a yes
		*st = qNo
	case !positive && old == qYes:
		*st, reply = qNo, no
	case !positive && (old == qWantYes || old == qWantNo):
		*st = qNo
	}
	var err error
	if reply != 0 {
		err = s.enqueue(func(b []byte) []byte { return AppendCommand(b, reply, opt) })
	}
	now := *st
	s.optMu.Unlock()
	s.log.Debug("rfc2217: negotiation", "verb", verbName(verb), "option", opt, "local", local, "enabled", now == qYes)
	return err
}

func verbName(v byte) string {
	switch v {
	case WILL:
		return "WILL"
	case WONT:
		return "WONT"
	case DO:
		return "DO"
	case DONT:
		return "DONT"
	}
	return "?"
}

// process decodes buf in place; the data bytes end up in buf[:n]. Commands
// are dispatched as they are met; in an ordered session a command after
// data bytes is held instead (s.held) and decoding stops there: buf[used:]
// is left undecoded for the caller to keep.
func (s *session) process(buf []byte) (n, used int, err error) {
	in := 0
	for in < len(buf) {
		nd, ns, ev, err := s.dec.Decode(buf[n:], buf[in:])
		if nd > 0 && s.drop != nil && s.drop(nd) {
			nd = 0 // the next Decode writes over them
		}
		n += nd
		in += ns
		if err != nil {
			return n, in, err
		}
		if ev.Verb == 0 {
			continue
		}
		if s.ordered && n > 0 {
			h := ev
			h.Data = bytes.Clone(ev.Data) // ev.Data aliases the decoder's buffer
			s.held = &h
			return n, in, nil
		}
		if err := s.dispatch(ev); err != nil {
			return n, in, err
		}
	}
	return n, in, nil
}

func (s *session) dispatch(ev Event) error {
	switch ev.Verb {
	case WILL, WONT, DO, DONT:
		return s.negotiate(ev.Verb, ev.Option)
	case SB:
		if ev.Option != OptComPort {
			s.log.Debug("rfc2217: ignoring subnegotiation", "option", ev.Option)
			return nil
		}
		return s.handle(ev)
	default:
		s.log.Debug("rfc2217: ignoring Telnet command", "command", ev.Verb)
		return nil
	}
}

// read returns data bytes only; commands are handled on the way. Protocol
// errors are sticky; connection errors are returned as they come (a read
// deadline timeout can be retried), after any data decoded with them.
func (s *session) read(p []byte) (int, error) {
	s.readMu.Lock()
	defer s.readMu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if len(s.pending) > 0 {
			n := copy(p, s.pending)
			s.pending = s.pending[n:]
			if len(s.pending) == 0 {
				s.pending = nil
			}
			return n, nil
		}
		if s.rerr != nil {
			return 0, s.rerr
		}
		if h := s.held; h != nil { // the data before it was returned
			s.held = nil
			if err := s.dispatch(*h); err != nil {
				s.rerr = err
			}
			continue
		}
		var n int
		var err error
		if len(s.raw) > 0 { // what followed a held command
			n = copy(p, s.raw)
			s.raw = s.raw[n:]
		} else {
			if err := s.deferred; err != nil {
				s.deferred = nil
				return 0, err
			}
			n, err = s.conn.Read(p)
		}
		if n > 0 {
			m, used, perr := s.process(p[:n])
			if used < n {
				s.raw = append(bytes.Clone(p[used:n]), s.raw...)
			}
			if perr != nil {
				s.rerr = perr
			} else if err != nil {
				s.deferred = err
			}
			if m > 0 {
				return m, nil
			}
			continue
		}
		if err != nil {
			return 0, err
		}
	}
}

// write sends data, IAC-escaped, in chunks so that queued commands can be
// interleaved.
func (s *session) write(p []byte) (int, error) {
	s.dataMu.Lock()
	defer func() { _ = s.releaseData(nil) }() // a queued message's error: the next write sees the broken conn
	select {
	case <-s.done:
		return 0, ErrClosed
	default:
	}
	if err := s.writeAfter(); err != nil { // queued before this data
		return 0, err
	}
	written := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > writeChunk {
			chunk = chunk[:writeChunk]
		}
		out := chunk
		if bytes.IndexByte(chunk, IAC) >= 0 {
			if s.wbuf == nil {
				s.wbuf = make([]byte, 0, 2*writeChunk)
			}
			s.wbuf = AppendEscaped(s.wbuf[:0], chunk)
			out = s.wbuf
		}
		s.connMu.Lock()
		_, err := s.conn.Write(out)
		s.connMu.Unlock()
		if err != nil {
			return written, err
		}
		written += len(chunk)
		p = p[len(chunk):]
	}
	return written, nil
}

// close flushes queued commands (bounded by closeFlushWindow), stops the
// sender and closes conn. It is idempotent and returns the first result.
func (s *session) close() error { return s.shutdown(true) }

// stop is close without closing conn, for a failed NewClient: the caller
// keeps conn.
func (s *session) stop() { _ = s.shutdown(false) }

func (s *session) shutdown(closeConn bool) error {
	s.closeOnce.Do(func() {
		_ = s.conn.SetWriteDeadline(time.Now().Add(closeFlushWindow))
		s.ctrlMu.Lock()
		close(s.done)
		s.ctrlMu.Unlock()
		s.wg.Wait()
		if closeConn {
			s.closeErr = s.conn.Close()
		} else {
			_ = s.conn.SetWriteDeadline(time.Time{})
		}
	})
	return s.closeErr
}
