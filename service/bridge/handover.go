package bridge

import (
	"fmt"
	"log/slog"
	"os"

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
		p.cancel()
		p.wg.Wait()
		queued = p.bridge.queued()
		p.closeErr = p.tty.Release()
		p.log.Info("port handed over; the tty stays open", "queued", len(queued))
	})
	return queued, p.closeErr
}
