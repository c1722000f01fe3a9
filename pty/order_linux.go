//go:build linux

package pty

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// maxPending bounds the settings changes waiting for Read (when nobody
// calls Read, the oldest are dropped: the handler then misses intermediate
// settings, never the latest).
const maxPending = 64

// SetSettingsHandler sets f to be called with the new settings each time
// the application's termios settings change in a way visible in Settings
// (the same changes SettingsChanged reports on Events, which it still
// does). f is called in the goroutine calling Read, between two Reads, in
// the order of the changes:
//
//   - after Read has returned every byte that was queued on the master
//     when the change was measured, and before it returns any byte queued
//     after. The change is measured (the master's queue length, TIOCINQ)
//     by whoever sees it first: the termios watch or the poll, on their
//     own goroutines, when no read(2) of the master is in progress
//     (typically microseconds after the tcsetattr), otherwise Read itself
//     as soon as it gets to it; a change reported in the read stream
//     (packet mode, TIOCPKT_IOCTL) is measured by Read when it reads that
//     status byte, which the kernel delivers ahead of data still queued.
//   - A change seen while Read waits with nothing to read wakes it (its
//     own deadline, set to the past and restored, invisible to the
//     caller), so f runs promptly without data.
//
// Nothing in the pty's data stream separates bytes the application wrote
// before its tcsetattr from bytes it wrote after: bytes written just
// after the change that are already queued when it is measured come
// before f, and bytes written just before it that the kernel had not yet
// moved from its flip buffer onto the master's queue (its flush work runs
// asynchronously, usually within microseconds) come after. A flush of the
// application's output (FlushWrite, which drops the master's queue)
// releases every waiting handler call at once. The handler must not call
// Read. nil removes the handler; changes still waiting are then dropped.
//
// Changes made while no handler was set (between Open and the first
// SetSettingsHandler, or while it was nil) are not lost: setting a handler
// then queues one call with the latest settings, due like a change
// measured at that moment. An application that opens the port and sets
// its speed at once, before the caller has set its handler, gets that
// speed forwarded.
func (p *Port) SetSettingsHandler(f func(Settings)) {
	if f == nil {
		p.onSettings.Store(nil)
		return
	}
	p.smu.Lock() // p.settings is the latest change reported
	p.pmu.Lock()
	p.onSettings.Store(&f)
	missed := p.missed
	p.missed = false
	p.pmu.Unlock()
	if missed {
		p.queue(pendingChange{kind: SettingsChanged, s: p.settings, target: -1}, true)
	}
	p.smu.Unlock()
	if missed {
		p.wakeRead()
	}
}

// pendingChange is a settings change or a flush waiting for its handler
// call.
type pendingChange struct {
	kind   EventKind // SettingsChanged, FlushRead or FlushWrite
	s      Settings  // for SettingsChanged
	target int64     // value of rdTotal at which the handler is due; -1 until measured
}

// readOrder is the state Read and the watchers share to call the settings
// handler in order with the data (fields of Port).
type readOrder struct {
	onSettings atomic.Pointer[func(Settings)]  // see SetSettingsHandler
	onFlush    atomic.Pointer[func(EventKind)] // see SetFlushHandler

	pmu    sync.Mutex      // guards pend and missed
	pend   []pendingChange // changes and flushes not yet passed to their handler, oldest first
	missed bool            // a settings change came while no settings handler was set
	npend  atomic.Int32    // len(pend), read by Read without pmu

	// rdTotal counts the data bytes Read has taken from the master;
	// rdSeq is odd while Read is inside a read(2) of the master (and its
	// count not yet added). Written by Read only.
	rdTotal atomic.Int64
	rdSeq   atomic.Uint64

	dmu   sync.Mutex  // guards rdl and the master's read deadline
	rdl   time.Time   // the caller's read deadline
	woken atomic.Bool // the master's read deadline is our wake-up, not rdl
}

// changed queues s for the settings handler, if one is set (else it is
// marked missed, for SetSettingsHandler to pass on). inRead says
// the caller is Read's own goroutine (a status packet): the change is
// measured at once and nobody needs waking. Otherwise (the termios watch,
// the poll) it is measured here when Read is not inside a read(2) of the
// master, and Read is woken.
func (p *Port) changed(s Settings, inRead bool) {
	p.pmu.Lock()
	if p.onSettings.Load() == nil { // SetSettingsHandler passes it on
		p.missed = true
		p.pmu.Unlock()
		return
	}
	p.pmu.Unlock()
	p.queue(pendingChange{kind: SettingsChanged, s: s, target: -1}, true)
	if !inRead {
		p.wakeRead()
	}
}

// queue appends c to the pending handler calls; with measure, its target
// is measured now (rdTotal plus the master's queue) unless Read is inside
// a read(2) of the master, and then Read measures it before its next
// read. Read starts a read(2) only under pmu (beginRead), so a change
// measured here is seen by that Read before it reads past the target.
//
// The queue is bounded by merging settings changes when it is full (the
// handler then misses intermediate settings, never the latest): flushes
// are never dropped, and only Read queues them, as it reads their status
// bytes, so they cannot pile up while Read is stalled.
func (p *Port) queue(c pendingChange, measure bool) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if measure && p.rdSeq.Load()%2 == 0 {
		if q, ok := p.masterQueued(); ok {
			c.target = p.rdTotal.Load() + q
		}
	}
	if len(p.pend) >= maxPending && c.kind == SettingsChanged {
		for i := 0; i+1 < len(p.pend); i++ {
			if p.pend[i].kind == SettingsChanged && p.pend[i+1].kind == SettingsChanged {
				p.pend = append(p.pend[:i], p.pend[i+1:]...)
				break
			}
		}
		if last := len(p.pend) - 1; len(p.pend) >= maxPending && p.pend[last].kind == SettingsChanged {
			p.pend = p.pend[:last] // the newer change replaces it
		}
	}
	p.pend = append(p.pend, c)
	p.npend.Store(int32(len(p.pend)))
}

// beginRead marks Read inside a read(2) of the master (rdSeq odd) and
// reports whether handler calls are pending. Under pmu: a watcher that
// measured a change before it has queued it too (see queue).
func (p *Port) beginRead() (pending bool) {
	p.pmu.Lock()
	p.rdSeq.Add(1)
	pending = len(p.pend) > 0
	p.pmu.Unlock()
	return pending
}

// dataBytes returns how many data bytes a packet-mode read of n bytes
// into buf returned (0 for a status byte).
func dataBytes(buf []byte, n int) int {
	if n > 1 && buf[0] == unix.TIOCPKT_DATA {
		return n - 1
	}
	return 0
}

// endRead counts n data bytes read and marks the read(2) over.
func (p *Port) endRead(n int) {
	if n > 0 {
		p.rdTotal.Add(int64(n))
	}
	p.rdSeq.Add(1)
}

// masterQueued returns how many bytes of the application's output wait in
// the master's read queue; ok is false if it cannot tell. TIOCINQ counts
// the line discipline's queue, not the bytes pty_write left in the flip
// buffer for the kernel's flush work (which runs asynchronously); a
// poll(2) first waits for that work when the queue is empty (n_tty_poll),
// so bytes the application wrote just before its tcsetattr are counted
// then. When the queue is not empty, bytes still in the flip buffer are
// not.
func (p *Port) masterQueued() (n int64, ok bool) {
	err := p.masterCtl(func(fd int) error {
		fds := [1]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(fds[:], 0)
		q, err := unix.IoctlGetInt(fd, unix.TIOCINQ)
		n = int64(q)
		return err
	})
	return n, err == nil
}

// settle calls the settings and flush handlers for every pending change
// or flush whose bytes Read has all returned, measures the changes nobody
// measured yet, and returns how many more data bytes Read may return
// before the next call is due (-1: nothing pending). Called by Read only, between beginRead and its
// read(2).
func (p *Port) settle() int {
	p.pmu.Lock()
	for len(p.pend) > 0 {
		total := p.rdTotal.Load()
		for i := range p.pend { // every change nobody measured yet, wherever it is
			if p.pend[i].target < 0 {
				if q, ok := p.masterQueued(); ok {
					for j := i; j < len(p.pend); j++ {
						if p.pend[j].target < 0 {
							p.pend[j].target = total + q
						}
					}
				}
				break
			}
		}
		if p.pend[0].target < 0 { // masterQueued failed (the master is closing)
			p.pend[0].target = total
		}
		if d := p.pend[0].target - total; d > 0 {
			p.pmu.Unlock()
			return int(d)
		}
		c := p.pend[0]
		p.pend = append(p.pend[:0], p.pend[1:]...)
		p.npend.Store(int32(len(p.pend)))
		p.pmu.Unlock()
		if c.kind == SettingsChanged {
			if f := p.onSettings.Load(); f != nil {
				(*f)(c.s)
			}
		} else if f := p.onFlush.Load(); f != nil {
			(*f)(c.kind)
		}
		p.pmu.Lock()
	}
	p.pmu.Unlock()
	return -1
}

// outputFlushed releases the pending handler calls waiting for bytes the
// application's output flush dropped from the master's queue. Called by
// Read when it reads the TIOCPKT_FLUSHWRITE status byte, which the kernel
// delivers ahead of anything queued after the flush.
func (p *Port) outputFlushed() {
	if p.npend.Load() == 0 {
		return
	}
	total := p.rdTotal.Load()
	p.pmu.Lock()
	for i := range p.pend {
		if p.pend[i].target > total {
			p.pend[i].target = total
		}
	}
	p.pmu.Unlock()
}

// wakeRead makes a Read waiting in the poller return and look at the
// pending changes: its read deadline is set to the past and marked as
// ours; Read restores the caller's deadline (unwake) and carries on.
func (p *Port) wakeRead() {
	p.dmu.Lock()
	if !p.woken.Load() {
		p.woken.Store(true)
		_ = p.m.rep.SetReadDeadline(time.Unix(1, 0))
	}
	p.dmu.Unlock()
}

// unwake restores the caller's read deadline after a wakeRead.
func (p *Port) unwake() {
	p.dmu.Lock()
	if p.woken.Load() {
		p.woken.Store(false)
		_ = p.m.rep.SetReadDeadline(p.rdl)
	}
	p.dmu.Unlock()
}
