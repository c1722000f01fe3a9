//go:build linux

package pty

import (
	"fmt"
	"log/slog"
	"os"

	"golang.org/x/sys/unix"
)

// Adopt builds a Port on a pty pair an earlier Port opened, from its master
// and the slave fd that Port held (see Files): for a daemon that kept them
// across its own restart (systemd's file-descriptor store). The tty keeps
// its /dev/pts/N and the application's open fd never notices; what the
// application wrote meanwhile is still queued in the pty and is read as
// usual. The application's termios settings are left as they are, except
// EXTPROC, which is set while its input is raw and cleared otherwise, as
// on any Port (an older vsp set it always; see follow).
// Packet mode is switched on again,
// the owner and mode are applied as configured, the link is pointed at the
// slave under the same rules as Open, and open/close tracking starts with
// the opens the application already has.
//
// Adopt takes master and slave over: the Port closes them, and Adopt
// closes them at once when it fails.
func Adopt(cfg Config, master, slave *os.File, log *slog.Logger) (_ *Port, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	defer master.Close()
	defer slave.Close()
	uid, gid, err := checkConfig(&cfg)
	if err != nil {
		return nil, err
	}
	p := &Port{cfg: cfg, log: log, events: make(chan Event, eventBuffer)}
	defer func() {
		if err != nil {
			p.closeFiles()
		}
	}()
	if err := p.adoptPair(master, slave); err != nil {
		return nil, err
	}
	p.startTermWatch()
	if err := p.followNow(); err != nil {
		return nil, err
	}
	if err := p.own(uid, gid); err != nil {
		return nil, err
	}
	if p.settings, err = p.Settings(); err != nil {
		return nil, err
	}
	if err := p.watch(); err != nil {
		return nil, err
	}
	// Opens from now on are counted by the watch; the application's
	// current ones are counted here. An open in between counts twice,
	// which errs towards "open" (the stale-data policy then keeps data).
	if n := otherOpens(p.name, cfg.Keeper); n > 0 {
		p.opens.Store(int64(n))
	}
	if err := p.expose(); err != nil {
		return nil, err
	}
	settings := p.settings.String() // before run: its watchers update p.settings
	p.run()
	log.Info("pty: port adopted", "slave", p.name, "link", p.link, "settings", settings, "app_open", p.AppOpen())
	return p, nil
}

// adoptPair takes duplicates of a kept master and slave, checks that they
// are the two ends of one pty pair, and restores the master's mode.
func (p *Port) adoptPair(master, slave *os.File) error {
	mfd, err := dupFile(master)
	if err != nil {
		return err
	}
	// Non-blocking, whatever mode the kept fd was in: the master's
	// read(2) and write(2) must never block (see master).
	if err := unix.SetNonblock(mfd, true); err != nil {
		_ = unix.Close(mfd)
		return fmt.Errorf("pty: adopt master: %w", err)
	}
	if err := p.takeMaster(mfd, false); err != nil {
		return err
	}
	var node unix.Stat_t
	if err := unix.Stat(p.name, &node); err != nil {
		return fmt.Errorf("pty: adopt: %w", err)
	}
	sfd, err := dupFile(slave)
	if err != nil {
		return err
	}
	p.slave = os.NewFile(uintptr(sfd), p.name) // blocking and never read
	if p.sraw, err = p.slave.SyscallConn(); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	var st unix.Stat_t
	if err := p.slaveCtl(func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return fmt.Errorf("pty: adopt: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != node.Rdev {
		return fmt.Errorf("%w: the kept slave fd is not %s, the master's slave", ErrBadConfig, p.name)
	}
	return nil
}

// Files returns duplicates of the Port's master and of its own slave fd,
// to be kept outside the process (systemd's file-descriptor store) and
// given to Adopt by a later process. The caller closes them.
func (p *Port) Files() (master, slave *os.File, err error) {
	var mfd, sfd int
	if err := p.masterCtl(func(fd int) (err error) {
		mfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	}); err != nil {
		return nil, nil, fmt.Errorf("pty: dup master: %w", err)
	}
	if err := p.slaveCtl(func(fd int) (err error) {
		sfd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	}); err != nil {
		_ = unix.Close(mfd)
		return nil, nil, fmt.Errorf("pty: dup slave: %w", err)
	}
	return os.NewFile(uintptr(mfd), "/dev/ptmx"), os.NewFile(uintptr(sfd), p.name), nil
}

// Release closes the Port like Close but leaves its link in place: the
// pty lives on in the copies of its fds kept elsewhere (Files), for a later
// process to Adopt.
func (p *Port) Release() error {
	p.keepLink.Store(true)
	return p.Close()
}

// dupFile duplicates f's fd (close-on-exec) without touching f's mode.
func dupFile(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("pty: %s: %w", f.Name(), err)
	}
	var dup int
	var derr error
	if err := rc.Control(func(fd uintptr) { dup, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, fmt.Errorf("pty: %s: %w", f.Name(), err)
	}
	if derr != nil {
		return -1, fmt.Errorf("pty: dup %s: %w", f.Name(), derr)
	}
	return dup, nil
}
