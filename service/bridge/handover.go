package bridge

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/vsp-dev/vsp/pty"
)

// AdoptPort starts a port on a pty that an earlier process ran and kept
// (systemd's file-descriptor store): master and its own slave fd, as Files
// gave them (see pty.Adopt; AdoptPort takes them over). queued is what that
// process's outage buffer held (Handover); it goes to the device before
// anything the application writes now. The link is dialed as after any
// outage.
func AdoptPort(spec PortSpec, log *slog.Logger, master, slave *os.File, queued []byte) (*Port, error) {
	if err := spec.Validate(); err != nil {
		master.Close()
		slave.Close()
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("port", spec.Name)
	tty, err := pty.Adopt(spec.PTY, master, slave, log)
	if err != nil {
		return nil, fmt.Errorf("bridge: port %s: %w", spec.Name, err)
	}
	// appSet: the earlier process may have seen the application set the
	// tty's settings, and the application will not set them again; so the
	// adopted tty's settings count as the application's (with RFC 2217 and
	// no [serial] baud they are sent to the device, even if they are only
	// the tty's initial 9600 8N1).
	p, err := startOn(spec, log, tty, queued, true, nil)
	if err != nil {
		_ = tty.Release() // the kept fds decide what becomes of the tty
		return nil, err
	}
	return p, nil
}

// Files returns duplicates of the port's pty master and of the slave fd
// the port holds, for keeping outside the process; the caller closes them.
func (p *Port) Files() (master, slave *os.File, err error) { return p.tty.Files() }

// Handover stops the port as Close does but leaves its pty to whoever
// keeps its fds (Files): the link stays, and what the outage buffer held is
// returned, in order, for AdoptPort in the next process. After Close (or
// a second Handover) it returns nothing and Close's error.
func (p *Port) Handover() ([]byte, error) {
	var queued []byte
	p.closeOnce.Do(func() {
		p.bridge.quiesce(handoverDrain)
		p.cancel()
		p.wg.Wait()
		queued = p.bridge.queued()
		p.closeErr = p.tty.Release()
		p.log.Info("port handed over; the tty stays open", "queued", len(queued))
	})
	return queued, p.closeErr
}

// A handover stops the bridge gently, so that nothing is lost between two
// processes: handoverPause bounds the wait for a write to the device that
// is under way; then the device's replies are still passed to the
// application until it has been quiet for handoverQuiet, for at most
// handoverDrain. A device that never stops sending loses what is in flight
// after that.
const (
	handoverPause = 2 * time.Second
	handoverQuiet = 50 * time.Millisecond
	handoverDrain = 500 * time.Millisecond
)

// quiesce stops taking the application's bytes (what it writes from now on
// stays in the pty, what is queued stays in the outage buffer), lets a
// write to the device that is under way finish, and passes what the device
// still sends to the application until it is quiet or max has passed. The
// link stays open throughout; Run's stop closes it afterwards. Without it,
// a stop closed the link at once, losing the chunk being sent and the
// device's reply in flight (found by packaging/test-systemd.sh).
func (b *Bridge) quiesce(max time.Duration) {
	b.quiet.Store(true)
	b.interrupt()
	select {
	case <-b.paused:
	case <-time.After(handoverPause):
		b.log.Warn("handover: a write to the device did not finish; stopping anyway")
	}
	deadline := time.Now().Add(max)
	seen := b.toApp.Load() + b.discarded.Load()
	for time.Now().Before(deadline) {
		time.Sleep(handoverQuiet)
		now := b.toApp.Load() + b.discarded.Load()
		if now == seen {
			return
		}
		seen = now
	}
}
