package bridge

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vsp-dev/vsp/service/monitor"
)

// Connection policy states reported in Stats.State (see also bridge.go).
const (
	StateIdle      = "idle (on-open)" // on-open: no application has the tty open, no session
	StateReleasing = "releasing"      // on-open: the last application closed; draining, then closing the session
)

// releaseDrainPoll is how often a release looks whether the outage buffer
// has drained to the device before it closes the session.
const releaseDrainPoll = 10 * time.Millisecond

// demand is what the connection policy "on-open" goes by: whether an
// application has the tty open (from the pty's open/close events), and a
// signal for every change of it or of the outage buffer.
type demand struct {
	appIn  atomic.Bool
	signal chan struct{} // cap 1; linkLoop's goroutine is the only receiver
	// released is the link the policy closed (not the device, not an
	// error); linkLoop takes it to go idle instead of backing off.
	mu       sync.Mutex
	released net.Conn
}

func newDemand() *demand { return &demand{signal: make(chan struct{}, 1)} }

func (d *demand) poke() {
	select {
	case d.signal <- struct{}{}:
	default:
	}
}

// SetAppOpen tells the bridge whether an application has its endpoint open
// (Port.watch passes on the pty's open and close events). With the
// connection policy on-open, the bridge dials only while one has, or while
// the outage buffer holds bytes an application wrote.
func (b *Bridge) SetAppOpen(open bool) {
	b.demand.appIn.Store(open)
	b.demand.poke()
}

// wanted reports whether the bridge should hold a session now.
func (b *Bridge) wanted() bool {
	if !b.cfg.OnOpen || b.demand.appIn.Load() {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ring.Len() > 0
}

// awaitDemand returns at once under the policy "always"; under "on-open" it
// waits, idle, until an application opens the tty or has written. It
// reports whether ctx is still live.
func (b *Bridge) awaitDemand(ctx context.Context) bool {
	for !b.wanted() {
		b.setState(StateIdle)
		select {
		case <-b.demand.signal:
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// watchRelease starts, under on-open, the goroutine that closes conn once
// the last application has closed the tty for ReleaseAfter and the outage
// buffer has drained. The returned func stops and joins it.
func (b *Bridge) watchRelease(ctx context.Context, conn net.Conn) (stop func()) {
	if !b.cfg.OnOpen {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b.releaseWhenIdle(ctx, conn, done)
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func (b *Bridge) releaseWhenIdle(ctx context.Context, conn net.Conn, done <-chan struct{}) {
	wait := func() bool { // false: stop
		select {
		case <-b.demand.signal:
		case <-done:
			return false
		case <-ctx.Done():
			return false
		}
		return true
	}
	for {
		for b.demand.appIn.Load() { // in use
			if !wait() {
				return
			}
		}
		if after := b.cfg.ReleaseAfter; after > 0 {
			t := time.NewTimer(after)
			expired := false
			for !expired && !b.demand.appIn.Load() {
				select {
				case <-b.demand.signal:
				case <-t.C:
					expired = true
				case <-done:
					t.Stop()
					return
				case <-ctx.Done():
					t.Stop()
					return
				}
			}
			t.Stop()
			if b.demand.appIn.Load() { // reopened in time: the session is reused
				continue
			}
		}
		if b.release(ctx, conn, done) {
			return
		}
	}
}

// release drains the outage buffer to conn and closes it. It returns false
// when an application opened the tty meanwhile (the session stays), true
// when the session is over (released, or ended otherwise).
func (b *Bridge) release(ctx context.Context, conn net.Conn, done <-chan struct{}) bool {
	tick := time.NewTicker(releaseDrainPoll)
	defer tick.Stop()
	for {
		b.sendMu.Lock() // no send is using conn while it is taken away
		b.mu.Lock()
		if b.conn != conn {
			b.mu.Unlock()
			b.sendMu.Unlock()
			return true
		}
		if b.demand.appIn.Load() {
			b.state = StateUp
			b.mu.Unlock()
			b.sendMu.Unlock()
			return false
		}
		b.state = StateReleasing
		if b.ring.Len() == 0 {
			b.conn, b.meter = nil, nil // nothing of it is lost: the close below is orderly
			b.mu.Unlock()
			b.sendMu.Unlock()
			b.demand.mu.Lock()
			b.demand.released = conn
			b.demand.mu.Unlock()
			b.releases.Add(1)
			b.log.Info("releasing the device session: no application has the port open", "after", b.cfg.ReleaseAfter)
			b.hub.Event(monitor.KindLinkDown, 0, "released (connect on-open): no application has the port open")
			_ = conn.Close() // TLS close_notify, then FIN
			return true
		}
		b.mu.Unlock()
		b.sendMu.Unlock()
		select {
		case <-tick.C:
		case <-done:
			return true
		case <-ctx.Done():
			return true
		}
	}
}

// takeReleased reports whether conn ended because the policy released it.
func (b *Bridge) takeReleased(conn net.Conn) bool {
	b.demand.mu.Lock()
	defer b.demand.mu.Unlock()
	if b.demand.released != conn || conn == nil {
		return false
	}
	b.demand.released = nil
	return true
}
