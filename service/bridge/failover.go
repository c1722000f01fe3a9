package bridge

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

// failbackEvery is how often a port connected to a backup device checks
// whether its primary device is reachable again.
const failbackEvery = 3 * time.Second

// failover holds a link to the primary device that the failback check
// opened, until the bridge's next dial takes it.
//
// A port with several devices dials them in order, primary first, on every
// (re)connect (Port.dial), with the same trust settings for each: with
// trust "pin" a single pin must match every device, so failover lists are
// meant for trust "tofu" (one known-devices entry per address) or "ca".
// While a backup carries the link, Port.failback dials the primary every
// failbackEvery; when that succeeds the backup link is dropped (bytes in
// flight on it count as possibly lost) and the bridge's next dial returns
// the primary link.
type failover struct {
	mu   sync.Mutex
	conn net.Conn
	info tlsconn.Info
}

// put stores a ready link, closing any older one.
func (f *failover) put(conn net.Conn, info tlsconn.Info) {
	f.mu.Lock()
	old := f.conn
	f.conn, f.info = conn, info
	f.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

// take returns the stored link, if any, and forgets it.
func (f *failover) take() (net.Conn, tlsconn.Info, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	conn, info := f.conn, f.info
	f.conn, f.info = nil, tlsconn.Info{}
	return conn, info, conn != nil
}

// close closes a stored link nobody took.
func (f *failover) close() {
	if conn, _, ok := f.take(); ok {
		_ = conn.Close()
	}
}

// failback runs while the port runs, if it has backup devices: when the
// link is up on a backup and the primary answers (TLS handshake and trust
// check included), it moves the link back to the primary.
func (p *Port) failback(ctx context.Context) {
	defer p.failover.close()
	primary := p.spec.Devices[0]
	t := time.NewTicker(failbackEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := p.bridge.Stats()
		if (st.State != StateUp && st.State != StateHeld) || st.Session.Addr == primary || st.Session.Addr == "" {
			continue
		}
		conn, info, err := tlsconn.Dial(ctx, primary, p.spec.Link, p.log)
		if err != nil {
			p.log.Debug("primary device still unavailable", "device", primary, "err", err)
			continue
		}
		p.log.Info("primary device is back; moving the link to it", "device", primary, "from", st.Session.Addr)
		p.failover.put(conn, info)
		if !p.bridge.DropIf(st.Connects, fmt.Errorf("moving back to the primary device %s", primary)) {
			// The link changed meanwhile (the bridge redialed, primary
			// first): leave it, and give back the extra session.
			p.log.Debug("link changed while the primary was checked; not moving it", "device", primary)
			if c, _, ok := p.failover.take(); ok {
				_ = c.Close()
			}
		}
	}
}
