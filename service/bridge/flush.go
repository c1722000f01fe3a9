package bridge

import "github.com/vsp-dev/vsp/pty"

// An application's tcflush() reaches the Port through the tty's flush
// handler, in the goroutine that reads the tty, so it is handled in order
// with the application's data (pty.Port.SetFlushHandler):
//
//   - a write flush (TCOFLUSH) drops what the outage buffer holds of the
//     application's bytes (counted in Stats.Flushed); the kernel has
//     already dropped what was still in the pty;
//   - with RFC 2217 either flush becomes PURGE-DATA, written into the link
//     after the data written before the flush and before the data written
//     after; for a read flush (TCIFLUSH) the client drops every device byte
//     that arrives before the device's answer (it is in-band, so those
//     bytes left the device before it purged): an exact flush end to end;
//   - without RFC 2217 a read flush has nothing to forward: bytes the
//     device sent before the flush that are still on the wire arrive
//     after it (docs/serial-settings.md).
//
// The flush reaches the handler when Read meets it, after the kernel did
// it: device bytes written to the tty in between are delivered, and bytes
// the application wrote just before the flush that Read had not yet taken
// go to the device after the PURGE-DATA (the kernel reports the flush
// ahead of them). docs/serial-settings.md measures both.

// flushed handles an application's flush of kind k.
func (p *Port) flushed(k pty.EventKind) {
	var n int
	if k == pty.FlushWrite {
		n = p.bridge.dropQueued()
	}
	if p.rfc != nil {
		p.rfc.purge(purgeOf(k))
	}
	p.bridge.tapFlush(k, n, p.rfc != nil)
}

// dropQueued empties the outage buffer (an application's write flush) and
// returns how many bytes it dropped.
func (b *Bridge) dropQueued() int {
	b.mu.Lock()
	n := b.ring.Len()
	b.ring.Discard(n)
	b.mu.Unlock()
	if n > 0 {
		b.flushed.Add(uint64(n))
		b.log.Info("application flushed its output: dropped the bytes held for the device", "bytes", n)
	}
	return n
}
