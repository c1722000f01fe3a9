//go:build linux

package pty

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// How the application's tcsetattr is heard: EXTPROC while its input is raw
// anyway, the termios watch otherwise.
//
// n_tty_set_termios sets ldata->raw when none of ISTRIP, IUCLC, IGNCR,
// ICRNL, INLCR, ICANON, IXON, ISIG, ECHO and PARMRK is set, and
// __receive_buf then takes the raw (or real-raw) receive path whatever
// EXTPROC says; EXTPROC only diverts a non-raw tty onto the raw path
// (unless ISTRIP or IUCLC+IEXTEN, "preops", are set, which a raw tty has
// not). Its other uses in n_tty (input_available_p, copy_from_read_buf,
// n_tty_read, TIOCINQ) are all "icanon && EXTPROC", and a raw tty has no
// ICANON. So while the input is raw, EXTPROC changes nothing for the
// application, and it makes pty_set_termios raise TIOCPKT_IOCTL in the
// master's read stream on every tcsetattr (it checks the old termios or
// the new one): Read hears the change with no other wake-up, and the
// termios watch, whose wake-ups also come with every master read of
// application data, is disarmed. When a tcsetattr makes the input
// non-raw, vsp clears EXTPROC at once (its own TCSETS2 on its slave fd)
// and arms the termios watch; when the input becomes raw again, it sets
// EXTPROC and disarms the watch. EXTPROC is vsp's: an application that
// sets it on a non-raw tty has it cleared, one that clears it (a termios
// built from scratch) on a raw tty has it set again.

// rawInputIflags and rawInputLflags are the flags that make n_tty process input
// (n_tty_set_termios: any of them clears ldata->raw).
const (
	rawInputIflags = unix.ISTRIP | unix.IUCLC | unix.IGNCR | unix.ICRNL | unix.INLCR | unix.IXON | unix.PARMRK
	rawInputLflags = unix.ICANON | unix.ISIG | unix.ECHO
)

// rawInput reports whether t makes n_tty's receive path raw, so that
// EXTPROC changes nothing about input processing.
func rawInput(t *unix.Termios) bool {
	return t.Iflag&rawInputIflags == 0 && t.Lflag&rawInputLflags == 0
}

// follow makes the notification means fit t, the termios just read (smu
// held, or before the Port runs: followNow): EXTPROC set and the termios watch disarmed while the input is
// raw, EXTPROC clear and the watch armed otherwise. Without a termios
// watch EXTPROC is still used while raw (the poll covers the rest).
func (p *Port) follow(t *unix.Termios) {
	raw := rawInput(t)
	if !raw {
		p.armTermWatch(true) // before EXTPROC goes: no change unheard
	}
	if (t.Lflag&unix.EXTPROC != 0) != raw {
		wrote, err := p.setExtproc(t, raw)
		if err != nil {
			p.log.Warn("pty: cannot switch EXTPROC", "slave", p.name, "extproc", raw, "err", err)
			return
		}
		if !wrote {
			// The application changed the termios meanwhile: the watch
			// stays armed (disarming it would drop the wake-up of that
			// change), and that change is followed in turn.
			return
		}
	}
	if raw {
		p.armTermWatch(false) // after EXTPROC is set: no change unheard
	}
}

// setExtproc writes t with EXTPROC set or cleared, through the Port's
// slave fd, if the termios is still t (and then reports wrote): an application's tcsetattr since t
// was read is not overwritten (it is reported and followed in turn).
// Between the check and the write there remain two system calls, in which
// an application's tcsetattr would be lost.
func (p *Port) setExtproc(t *unix.Termios, on bool) (wrote bool, err error) {
	err = p.slaveCtl(func(fd int) error {
		now, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return fmt.Errorf("pty: read termios: %w", err)
		}
		if *now != *t {
			return nil // changed meanwhile: its notification follows
		}
		w := *t
		if on {
			w.Lflag |= unix.EXTPROC
		} else {
			w.Lflag &^= unix.EXTPROC
		}
		// Counted before the write, which the application may see at
		// once: whoever sees the switch sees it counted.
		p.extprocSwitches.Add(1)
		p.extprocAt.Store(time.Now().UnixNano())
		if err := unix.IoctlSetTermios(fd, ioctlSetTermios, &w); err != nil {
			p.extprocSwitches.Add(^uint64(0)) // not made
			return fmt.Errorf("pty: write termios: %w", err)
		}
		wrote = true
		return nil
	})
	return wrote, err
}

// followNow reads the termios and makes the notification means fit it
// (for Open and Adopt, before the watchers run).
func (p *Port) followNow() error {
	var t *unix.Termios
	if err := p.masterCtl(func(fd int) (err error) {
		t, err = unix.IoctlGetTermios(fd, ioctlGetTermios)
		return err
	}); err != nil {
		return fmt.Errorf("pty: read termios: %w", err)
	}
	p.follow(t)
	return nil
}
