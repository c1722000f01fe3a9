//go:build linux

package pty

// SetFlushHandler sets f to be called with FlushRead or FlushWrite when
// the application flushes (tcflush), in the goroutine calling Read,
// between two Reads, as soon as Read reads the flush's status byte (status
// first), and in order with the settings handler's calls
// (SetSettingsHandler): after every byte Read returned before that status
// byte and before any byte it returns after. A flush read while a settings
// change still waits for bytes queued before it comes after that change's
// call, so after those bytes too (the two handlers keep one order).
//
//   - FlushWrite (TCOFLUSH): the kernel has dropped the application's
//     bytes still queued on the master, so the order is exact.
//   - FlushRead (TCIFLUSH): the kernel delivers the status byte ahead of
//     the data still queued on the master, so bytes the application wrote
//     before its tcflush that Read had not yet returned come after f, and
//     bytes it wrote after the tcflush come after f too. Nothing in the
//     data separates the two; waiting for the bytes queued when the status
//     byte is read (drain first) would put the first kind before f and
//     also most of the second, which an application writes right after
//     its flush (a request after reset_input_buffer). Measured by
//     BenchmarkFlushOrdering over 1000 cycles of write 8 bytes, close, reopen,
//     tcflush, write 2 bytes, on a plain packet-mode pty judged both ways
//     from the same reads: called back to back, status first keeps the
//     order the application wrote in 40–54 % of the cycles, drain first in
//     4–38 % (status first misses when the 8 bytes are not read yet, drain
//     first when the 2 bytes are already queued; a reader spending 100 µs
//     per read is the worse case for both); with 50 µs between the
//     application's calls both keep it in 99.5–100 %. LIMITS.md.
//
// The event is also sent on Events, at once. nil removes the handler.
func (p *Port) SetFlushHandler(f func(EventKind)) {
	if f == nil {
		p.onFlush.Store(nil)
		return
	}
	p.onFlush.Store(&f)
}

// flushed reports an application flush read in the status byte just read:
// on Events, and queued for the flush handler, due before the next byte
// (see SetFlushHandler), behind any settings change still waiting.
func (p *Port) flushed(k EventKind) {
	p.emit(k)
	if p.onFlush.Load() == nil {
		return
	}
	p.queue(pendingChange{kind: k, target: p.rdTotal.Load()}, false)
}
