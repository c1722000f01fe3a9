//go:build linux

package pty

// SetFlushHandler sets f to be called with FlushRead or FlushWrite when
// the application flushes (tcflush), in the goroutine calling Read, before
// that Read returns any data the application wrote after the flush: a
// caller forwarding the data can forward the flush in order with it. The
// kernel reports the flush ahead of data the application wrote before it
// that is still queued on the master (n_tty_read returns status first);
// that data then follows the flush. The event is also sent on Events. nil
// removes the handler.
func (p *Port) SetFlushHandler(f func(EventKind)) {
	if f == nil {
		p.onFlush.Store(nil)
		return
	}
	p.onFlush.Store(&f)
}

// flushed reports an application flush: Events, and the flush handler.
func (p *Port) flushed(k EventKind) {
	p.emit(k)
	if f := p.onFlush.Load(); f != nil {
		(*f)(k)
	}
}
