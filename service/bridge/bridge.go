package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vsp-dev/vsp/service/monitor"
	"github.com/vsp-dev/vsp/tlsconn"
)

// Dialer opens one link to the device. The bridge calls it again after
// every drop, with backoff in between.
type Dialer func(ctx context.Context) (net.Conn, tlsconn.Info, error)

// Endpoint is the application side of a bridge: the PTY master. Its
// deadlines must interrupt a blocked Read or Write (the pty package's master
// is registered with Go's poller for exactly this).
type Endpoint interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// appOpener is implemented by endpoints that know whether an application
// has the port open (pty.Port does).
type appOpener interface{ AppOpen() bool }

// StalePolicy says what happens to bytes from the device while no
// application has the port open.
type StalePolicy string

// Stale data policies.
const (
	StaleDiscard StalePolicy = "discard" // drop them, as a real UART would (default)
	StaleKeep    StalePolicy = "keep"    // queue them in the tty for the next open
)

// BridgeConfig tunes a bridge. The zero value is the default.
type BridgeConfig struct {
	Buffer    int             // outage buffer in bytes; 0 = 64 KiB
	Backoff   tlsconn.Backoff // redial backoff; zero = 100 ms doubling to 1 s
	Healthy   time.Duration   // a session that lasted this long resets the backoff; 0 = 1 s
	StaleData StalePolicy     // "" = discard
	// OnOpen dials only while an application has the endpoint open (or
	// its bytes wait in the outage buffer), and closes the session
	// ReleaseAfter after the last close (policy.go); false: always.
	OnOpen       bool
	ReleaseAfter time.Duration
	// Fix, when set, says how to fix a dial error that will not pass by
	// itself (Stats.Fault), in terms of where the port is configured; it
	// is shown in Stats.Fix and logged with the error.
	Fix Fixer
}

// Fixer says how to fix a dial error ("" when it has no advice). An
// implementation is a comparable value, so that specs stay comparable
// (the daemon restarts a port only when its spec changed).
type Fixer interface {
	Fix(error) string
}

// DefaultBuffer is the outage buffer size when none is configured.
const DefaultBuffer = 64 << 10

// copyBuffer is the size of each copy loop's buffer: one TLS record's
// plaintext (16 KiB), the most a TLS Read returns; a PTY master read
// returns at most 4 KiB. Larger buffers bought nothing and cost 64 KiB per
// port (docs/performance.md).
const copyBuffer = 16 << 10

// smallBuffer is the size of the buffer each copy loop holds while it
// waits: the most one PTY master read returns (a full packet-mode read, 4
// KiB with its header byte). A loop takes a copyBuffer only while bursts
// go on (see buffers), so an idle port holds 8 KiB of copy buffers
// instead of 32 (docs/performance.md, change 11).
const smallBuffer = 4 << 10

// keepBig is how many reads in a row that a smallBuffer would have held
// end a burst: the copyBuffer goes then. Not the first one, so that
// records or writes of a little over 4 KiB (a full read, then a short
// one, again and again) do not allocate a copyBuffer each.
const keepBig = 4

// buffers are one copy loop's: small, which it waits with, and big, a
// copyBuffer taken for bursts and let go keepBig quiet reads after the
// last one. Only the loop's goroutine uses them.
type buffers struct {
	small, big []byte
	quiet      int // reads small would have held, in a row, since the last burst
}

func newBuffers() *buffers { return &buffers{small: make([]byte, smallBuffer)} }

// burst returns big, taking one if there is none: a burst goes on.
func (bb *buffers) burst() []byte {
	bb.quiet = 0
	if bb.big == nil {
		bb.big = make([]byte, copyBuffer)
	}
	return bb.big
}

// calm counts a read that small would have held; keepBig of them in a row
// let big go.
func (bb *buffers) calm() {
	if bb.big == nil {
		return
	}
	if bb.quiet++; bb.quiet >= keepBig {
		bb.big, bb.quiet = nil, 0
	}
}

// next returns the buffer for the next read, after a read of n bytes: a
// read that small could not have held, or that filled it, is a burst
// (more is likely waiting: the rest of a TLS record, a stream), and whole
// records are read into big while it lasts.
func (bb *buffers) next(n int) []byte {
	if n >= len(bb.small) {
		return bb.burst()
	}
	bb.calm()
	if bb.big != nil {
		return bb.big
	}
	return bb.small
}

// Link states reported in Stats.State.
const (
	StateConnecting   = "connecting"
	StateUp           = "up"
	StateBackoff      = "backing off"
	StateBusy         = "device busy"
	StateCertChange   = "certificate changed"  // tofu: refused, not the certificate first seen
	StateCertMismatch = "certificate mismatch" // refused: the certificate does not match the pin
	StateHeld         = "held"
	StateStopped      = "stopped"
)

// errDeviceClosed: the device closed the link in an orderly way.
var errDeviceClosed = errors.New("device closed the connection")

// busyWindow: a session the device ends this soon after it was set up,
// without sending anything, is taken as the device refusing a second client
// (an ezTCP in T2S mode that still holds an old session).
const busyWindow = 500 * time.Millisecond

// Stats is a snapshot of a bridge's live state.
type Stats struct {
	State        string       `json:"state"`
	ToDevice     uint64       `json:"bytes_to_device"`
	ToApp        uint64       `json:"bytes_to_app"`
	Buffered     int          `json:"buffered"`
	BufferSize   int          `json:"buffer_size"`
	PossiblyLost uint64       `json:"possibly_lost"`
	Discarded    uint64       `json:"discarded_no_app"`
	Flushed      uint64       `json:"flushed_by_app,omitempty"`
	Connects     uint64       `json:"connects"`
	Releases     uint64       `json:"releases,omitempty"` // sessions closed by connect = "on-open"
	Reconnects   uint64       `json:"reconnects"`
	LastConnect  time.Time    `json:"last_connect,omitzero"`
	LastError    string       `json:"last_error,omitempty"`
	LastErrorAt  time.Time    `json:"last_error_at,omitzero"`
	Held         string       `json:"held,omitempty"`
	Session      tlsconn.Info `json:"session,omitzero"`
	Fault        string       `json:"fault,omitempty"` // why dials fail for good (Fault*); "" while up or when it may pass
	Fix          string       `json:"fix,omitempty"`   // how to fix Fault (BridgeConfig.Fix)
}

// counters are a port's byte and event counts (see Stats). They belong to
// the port, not to one bridge: Port.Restart hands them to the bridge that
// follows, so a reload of the port file keeps them, and only deleting the
// port resets them.
type counters struct {
	toDevice, toApp, lost, discarded, connects atomic.Uint64
	hub                                        *monitor.Hub  // the port's observers (monitor, trace); nil: none ever
	flushed                                    atomic.Uint64 // application bytes dropped by its write flushes (flush.go)
	releases                                   atomic.Uint64 // sessions closed by the on-open policy (policy.go)
	udp                                        udpCounts     // datagram counts of a U2S port (udp.go)
}

// Bridge copies bytes both ways between an Endpoint and a link that it
// dials, drops and redials for as long as it runs. The endpoint is never
// closed by the bridge: an application on the port never sees the link go.
type Bridge struct {
	ep   Endpoint
	dial Dialer
	cfg  BridgeConfig
	log  *slog.Logger

	wake chan struct{} // cap 1: buffer space freed or link became usable

	// sendMu makes taking the link and writing to it one step for
	// appToDevice, so that a release (policy.go) never closes a link a
	// send has taken: bytes read after it go to the outage buffer.
	sendMu sync.Mutex

	mu          sync.Mutex
	conn        net.Conn   // nil while the link is down
	meter       *linkMeter // counts what was handed to conn
	linkErr     error      // why the last link was taken down
	ring        *ring
	held        string
	state       string
	lastErr     string
	lastErrAt   time.Time
	fault, fix  string
	lastConnect time.Time
	info        tlsconn.Info

	*counters

	demand *demand // the connection policy's input (policy.go)

	rbufs *buffers // deviceToApp's; only linkLoop's goroutine uses them

	// appWrote is when the application last wrote (unix ns): proof that it
	// has the port open even before the pty reports the open, which it
	// learns asynchronously (inotify).
	appWrote atomic.Int64

	// quiet stops appToDevice from taking more of the application's
	// bytes, before a handover (handover.go); it closes paused when it
	// has stopped.
	quiet     atomic.Bool
	pauseOnce sync.Once
	paused    chan struct{}
}

// NewBridge returns a bridge between ep and the links dial opens. Run
// starts it.
func NewBridge(ep Endpoint, dial Dialer, cfg BridgeConfig, log *slog.Logger) *Bridge {
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.Healthy <= 0 {
		// Long enough to tell a device that refuses us (it closes within
		// busyWindow) from one that worked and then went away; short
		// enough that a device rebooting soon after a reboot is redialed
		// at once when it is back (10 s here made recovery take 5 s:
		// docs/performance.md).
		cfg.Healthy = time.Second
	}
	if cfg.StaleData == "" {
		cfg.StaleData = StaleDiscard
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bridge{
		ep: ep, dial: dial, cfg: cfg, log: log,
		wake:     make(chan struct{}, 1),
		paused:   make(chan struct{}),
		ring:     newRing(cfg.Buffer),
		state:    StateConnecting,
		counters: new(counters),
		demand:   newDemand(),
	}
}

// Run bridges until ctx is cancelled, which is a normal end (nil error).
// It returns an error only when the endpoint fails.
func (b *Bridge) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	stopped := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(stopped)
		b.interrupt()
		_ = b.ep.SetWriteDeadline(time.Now())
		b.mu.Lock()
		conn := b.conn
		b.mu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	})
	g.Go(func() error { return b.appToDevice(ctx) })
	// The link loop runs in the caller's goroutine (one goroutine less per
	// port). It ends only once ctx is done, and so does appToDevice.
	b.linkLoop(ctx)
	err := g.Wait()
	// The callback must be over before the deadlines are reset below: the
	// endpoint may be handed to a new bridge (Port.Restart).
	if !stop() {
		<-stopped
	}
	b.mu.Lock()
	b.state = StateStopped
	if b.conn != nil {
		_ = b.conn.Close()
		b.conn = nil
	}
	b.mu.Unlock()
	// Leave the endpoint usable for whoever owns it next.
	_ = b.ep.SetReadDeadline(time.Time{})
	_ = b.ep.SetWriteDeadline(time.Time{})
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// Stats returns a snapshot of the bridge's state and counters.
func (b *Bridge) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := Stats{
		State:       b.state,
		Buffered:    b.ring.Len(),
		BufferSize:  b.ring.Cap(),
		LastConnect: b.lastConnect,
		LastError:   b.lastErr,
		LastErrorAt: b.lastErrAt,
		Held:        b.held,
		Session:     b.info,
		Fault:       b.fault,
		Fix:         b.fix,
	}
	if b.held != "" && b.state == StateUp {
		s.State = StateHeld
	}
	s.ToDevice = b.toDevice.Load()
	s.ToApp = b.toApp.Load()
	s.PossiblyLost = b.lost.Load()
	s.Discarded = b.discarded.Load()
	s.Flushed = b.flushed.Load()
	s.Connects = b.connects.Load()
	s.Releases = b.releases.Load()
	if s.Connects > 0 {
		s.Reconnects = s.Connects - 1
	}
	return s
}

// queue puts p at the head of the outage buffer (what an earlier bridge on
// the same endpoint still held); as much as the buffer takes. Call it
// before Run.
func (b *Bridge) queue(p []byte) {
	if len(p) == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := b.ring.Write(p); n < len(p) {
		b.lost.Add(uint64(len(p) - n))
		b.log.Warn("outage buffer smaller than what the previous configuration held; the rest is lost", "lost", len(p)-n)
	}
}

// queued returns what the outage buffer holds, in order, and empties it.
// Call it after Run has returned.
func (b *Bridge) queued() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []byte
	for b.ring.Len() > 0 {
		p := b.ring.Peek()
		out = append(out, p...)
		b.ring.Discard(len(p))
	}
	return out
}

// Hold stops passing application data to the device (it is buffered, then
// the application's writes block) while reason is non-empty; Hold("")
// releases it. Used by the serial-settings mismatch guard.
func (b *Bridge) Hold(reason string) {
	b.mu.Lock()
	changed := b.held != reason
	b.held = reason
	b.mu.Unlock()
	if changed {
		b.tapHold(reason)
		b.interrupt()
	}
}

// interrupt wakes appToDevice wherever it waits: in the endpoint's Read (by
// an expired deadline) or on the wake channel.
func (b *Bridge) interrupt() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
	_ = b.ep.SetReadDeadline(time.Now())
}

// usableLocked returns the link to write to, or nil while the link is down
// or data is held.
func (b *Bridge) usableLocked() net.Conn {
	if b.held != "" {
		return nil
	}
	return b.conn
}

// appToDevice reads what the application writes and sends it on the link,
// or queues it in the outage buffer while the link is down. With the
// buffer full it stops reading, so the application's writes block.
func (b *Bridge) appToDevice(ctx context.Context) error {
	defer b.pauseOnce.Do(func() { close(b.paused) }) // nothing more goes out
	bufs := newBuffers()
	for {
		if ctx.Err() != nil {
			return nil
		}
		if b.quiet.Load() { // handing over: what is left stays in the pty and the ring
			b.pauseOnce.Do(func() { close(b.paused) })
			<-ctx.Done()
			return nil
		}
		b.sendMu.Lock()
		b.mu.Lock()
		conn, meter := b.usableLocked(), b.meter
		if conn != nil && b.ring.Len() > 0 {
			buf := bufs.small
			if b.ring.Len() > len(buf) {
				buf = bufs.burst() // draining after an outage
			}
			n := copy(buf, b.ring.Peek())
			b.ring.Discard(n)
			b.mu.Unlock()
			b.hub.Event(monitor.KindReleased, uint64(n), "from the outage buffer")
			b.send(conn, meter, buf[:n])
			b.sendMu.Unlock()
			continue
		}
		space := b.ring.Free()
		b.mu.Unlock()
		b.sendMu.Unlock()
		if space == 0 { // link down and buffer full: back-pressure the app
			select {
			case <-b.wake:
			case <-ctx.Done():
				return nil
			}
			continue
		}
		n, err := b.ep.Read(bufs.small[:min(space, len(bufs.small))])
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				_ = b.ep.SetReadDeadline(time.Time{})
				continue
			}
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("bridge: read from port: %w", err)
		}
		if n == 0 {
			continue
		}
		buf := bufs.small
		if rr, ok := b.ep.(readyReader); ok && n >= burstMin && min(space, copyBuffer)-n >= burstMin {
			buf = bufs.burst()
			copy(buf, bufs.small[:n])
			n = b.readBurst(rr, buf[:min(space, len(buf))], n)
		} else {
			bufs.calm()
		}
		b.appWrote.Store(time.Now().UnixNano())
		b.hub.Data(monitor.ToDevice, buf[:n])
		b.sendMu.Lock()
		b.mu.Lock()
		conn, meter = b.usableLocked(), b.meter
		if conn != nil && b.ring.Len() == 0 {
			b.mu.Unlock()
			b.send(conn, meter, buf[:n])
			b.sendMu.Unlock()
			continue
		}
		b.ring.Write(buf[:n]) // fits: n <= space and only this goroutine adds
		b.mu.Unlock()
		b.sendMu.Unlock()
		b.demand.poke() // on-open: bytes to deliver (policy.go)
		b.hub.Event(monitor.KindHeld, uint64(n), "in the outage buffer")
	}
}

// readyReader is implemented by endpoints that can read without waiting
// (pty.Port): ReadReady returns what is there already, 0 when nothing is.
type readyReader interface {
	ReadReady(b []byte) (int, error)
}

// burstMin: an application read of at least this much (a full PTY master
// buffer is 4 KiB) is taken as part of a burst, and what else the
// application has written already is read with it (readBurst). A PTY
// master read returns at most 4 KiB, so a stream would otherwise go out
// in 4 KiB TLS records; smaller reads (requests, single bytes) go out at
// once, without an extra read that would only find nothing.
const burstMin = 4<<10 - 1

// readBurst fills buf, whose first n bytes came from a Read, with what
// rr has ready, without waiting, while another full master read fits;
// it returns the new length. One 16 KiB record instead of four 4 KiB
// ones costs the bridge and the device less per byte (docs/performance.md,
// change 8). An error stops it: the next Read reports it again.
func (b *Bridge) readBurst(rr readyReader, buf []byte, n int) int {
	for len(buf)-n >= burstMin {
		m, err := rr.ReadReady(buf[n:])
		n += m
		if m == 0 || err != nil {
			break
		}
	}
	return n
}

// send writes p to conn. Bytes a dying connection did not take are counted
// as possibly lost, never silently dropped; they are not resent, since the
// device may already have received part of them. Bytes it took are
// recorded in meter, which decides how many of them count as possibly lost
// if the link dies later (see linkFailed).
func (b *Bridge) send(conn net.Conn, meter *linkMeter, p []byte) {
	n, err := conn.Write(p)
	b.toDevice.Add(uint64(n))
	if meter != nil && !meter.add(n, time.Now()) {
		b.lost.Add(uint64(n)) // the link was declared dead meanwhile
		b.hub.Event(monitor.KindLost, uint64(n), "sent on a link already declared dead")
	}
	if err != nil {
		b.lost.Add(uint64(len(p) - n))
		b.hub.Event(monitor.KindLost, uint64(len(p)-n), "not taken by the failing link")
		b.linkFailed(conn, fmt.Errorf("write to device: %w", err))
	}
}

// linkFailed takes conn down if it is still the current link.
func (b *Bridge) linkFailed(conn net.Conn, err error) {
	b.mu.Lock()
	if b.conn != conn {
		b.mu.Unlock()
		return
	}
	b.conn = nil
	if b.meter != nil {
		q, qerr := tlsconn.QueueOf(conn) // before Close: it reads the socket
		if qerr != nil {
			b.log.Debug("send queue", "err", qerr)
		}
		if lost := b.meter.finish(q, time.Now()); lost > 0 {
			b.lost.Add(lost)
			b.hub.Event(monitor.KindLost, lost, "sent but not known to have arrived when the link went down")
			b.log.Warn("bytes possibly lost with the link", "bytes", lost, "unacked", q.Unacked)
		}
		b.meter = nil
	}
	b.linkErr = err
	if err != nil {
		b.setErrLocked(err)
	}
	b.mu.Unlock()
	// Close outside the lock: a TLS close_notify to a stalled peer can
	// take seconds, and Stats, the control socket and appToDevice need it.
	_ = conn.Close()
}

func (b *Bridge) setErrLocked(err error) {
	b.lastErr = err.Error()
	b.lastErrAt = time.Now()
}

func (b *Bridge) setState(s string) {
	b.mu.Lock()
	b.state = s
	b.mu.Unlock()
}

// linkLoop dials, runs the device-to-app copy on each link until it drops,
// and redials with backoff.
func (b *Bridge) linkLoop(ctx context.Context) {
	bo := b.cfg.Backoff
	for ctx.Err() == nil {
		if !b.awaitDemand(ctx) { // on-open: until an application opens the port
			return
		}
		b.setState(StateConnecting)
		conn, info, err := b.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			b.mu.Lock()
			b.setErrLocked(err)
			b.state = StateBackoff
			if isPeerClose(err) { // accepted, then closed during the handshake
				b.state = StateBusy
			}
			b.fault, b.fix = faultOf(err), ""
			if s, ok := faultStates[b.fault]; ok {
				b.state = s
			}
			if b.fault != "" && b.cfg.Fix != nil {
				b.fix = b.cfg.Fix.Fix(err)
			}
			state, fix := b.state, b.fix
			b.mu.Unlock()
			if fix != "" {
				b.log.Warn("link down", "state", state, "err", err, "fix", fix)
			} else {
				b.log.Warn("link down", "state", state, "err", err)
			}
			if !sleep(ctx, bo.Next()) {
				return
			}
			continue
		}
		start := time.Now()
		b.mu.Lock()
		if ctx.Err() != nil {
			// Run's stop callback has run already (it reads b.conn under
			// b.mu) and would never close this link: deviceToApp would
			// block on it forever.
			b.mu.Unlock()
			_ = conn.Close()
			return
		}
		b.connects.Add(1)
		b.conn = conn
		b.meter = &linkMeter{}
		b.info = info
		b.state = StateUp
		b.fault, b.fix = "", ""
		b.lastConnect = start
		b.mu.Unlock()
		b.log.Info("link up", "addr", info.Addr, "tls", info.Version, "cipher", info.Cipher)
		b.tapLinkUp(info)
		b.interrupt() // flush what was queued during the outage

		stopRelease := b.watchRelease(ctx, conn)
		got, err := b.deviceToApp(conn)
		stopRelease()
		if ctx.Err() != nil {
			return
		}
		if b.takeReleased(conn) { // on-open: closed by us, in order; go idle
			b.log.Info("device session released", "lasted", time.Since(start).Round(time.Millisecond))
			bo.Reset()
			continue
		}
		b.mu.Lock()
		if b.conn != conn && b.linkErr != nil {
			err = b.linkErr // a write failed first; the read only saw the close
		}
		b.mu.Unlock()
		lasted := time.Since(start)
		busy := got == 0 && lasted < busyWindow && isPeerClose(err)
		if busy {
			err = fmt.Errorf("device busy: %s closed the session right after connect (it may still hold an old session): %w", info.Addr, err)
		}
		b.linkFailed(conn, err)
		b.mu.Lock()
		b.state = StateBackoff
		if busy {
			b.state = StateBusy
		}
		b.mu.Unlock()
		b.log.Warn("link lost", "after", lasted.Round(time.Millisecond), "busy", busy, "err", err)
		b.tapLinkDown(err)
		if lasted >= b.cfg.Healthy {
			bo.Reset()
		}
		if !sleep(ctx, bo.Next()) {
			return
		}
	}
}

// deviceToApp copies from conn to the endpoint until conn fails. It returns
// how many bytes it received and why it stopped.
func (b *Bridge) deviceToApp(conn net.Conn) (uint64, error) {
	if b.rbufs == nil { // for every link of the bridge
		b.rbufs = newBuffers()
	}
	buf := b.rbufs.small
	var got uint64
	opener, _ := b.ep.(appOpener)
	for {
		n, err := conn.Read(buf)
		next := b.rbufs.next(n)
		if n > 0 {
			got += uint64(n)
			b.hub.Data(monitor.ToApp, buf[:n])
			if b.cfg.StaleData == StaleDiscard && opener != nil && !opener.AppOpen() && !b.appWroteRecently() {
				b.discarded.Add(uint64(n))
				b.hub.Event(monitor.KindDiscarded, uint64(n), "no application has the port open")
			} else if _, werr := b.ep.Write(buf[:n]); werr != nil {
				return got, fmt.Errorf("write to port: %w", werr)
			} else {
				b.toApp.Add(uint64(n))
			}
		}
		if err != nil {
			if err == io.EOF {
				err = errDeviceClosed
			}
			return got, err
		}
		buf = next
	}
}

// openGrace: device bytes arriving this soon after the application wrote
// are delivered even while the pty does not report the port open yet. An
// application that opens the port and writes at once (a poller sending a
// request) must get the reply, however late the open notification is
// processed (it was, under load, with 1000 ports: see docs/performance.md).
const openGrace = 2 * time.Second

func (b *Bridge) appWroteRecently() bool {
	t := b.appWrote.Load()
	return t != 0 && time.Since(time.Unix(0, t)) < openGrace
}

// isPeerClose reports whether err means the device ended the session (as
// opposed to a timeout or a local failure).
func isPeerClose(err error) bool {
	return errors.Is(err, errDeviceClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF)
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
