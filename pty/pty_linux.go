//go:build linux

package pty

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cpty "github.com/creack/pty"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// Port is a virtual serial port: the master side of a pty pair whose slave
// the application opens (directly as Name, or through the symlink Link).
//
// Read and Write move data; they may be called concurrently with each other
// and with every other method. Close unblocks them.
type Port struct {
	cfg   Config
	log   *slog.Logger
	name  string     // slave path, /dev/pts/N
	link  string     // symlink path, "" if none
	claim *linkClaim // the link's directory and lock; nil without a link

	m      *master         // the master, out of Go's poller (master_linux.go)
	slave  *os.File        // our own slave fd (O_NOCTTY), never read
	sraw   syscall.RawConn // slave.SyscallConn()
	tw     *termWatch      // hears the application's tcsetattr; nil if unavailable
	opw    *OpenWatcher    // tracks application opens; nil if unavailable
	ownOpw bool            // opw is the Port's own (no Config.Watcher)
	wd     int             // watch descriptor of the slave node in opw

	rmu   sync.Mutex // serialises Read (and guards small)
	small [2]byte    // header+byte buffer for 1-byte Reads

	readOrder // see SetSettingsHandler

	smu      sync.Mutex    // guards settings and the notification means; held across the TCGETS2 that refreshes it
	settings Settings      // last reported settings
	rereads  atomic.Uint64 // termios re-reads by refresh (the watchers' cost)

	extprocSwitches atomic.Uint64 // EXTPROC set or cleared by follow
	extprocAt       atomic.Int64  // time of the last switch, Unix ns

	emu      sync.Mutex // guards sends on events and evClosed
	events   chan Event
	evClosed bool
	dropped  atomic.Uint64

	opens     atomic.Int64 // application opens minus closes of the slave
	selfFlush atomic.Bool  // a DiscardInput flush is pending report
	closed    atomic.Bool  // Close has started
	keepLink  atomic.Bool  // Release: Close leaves the link

	cancel    context.CancelFunc
	group     *errgroup.Group
	closeOnce sync.Once
	closeErr  error
}

// Open creates a pty pair, puts the slave in raw 8N mode at 9600 (or Config.Initial), applies
// ownership and permissions, creates the symlink and starts watching the
// application. log may be nil.
func Open(cfg Config, log *slog.Logger) (_ *Port, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
	if err := p.openPair(); err != nil {
		return nil, err
	}
	if err := p.setup(uid, gid); err != nil {
		return nil, err
	}
	p.startTermWatch()
	if err := p.followNow(); err != nil {
		return nil, err
	}
	if err := p.watch(); err != nil {
		return nil, err
	}
	if err := p.expose(); err != nil {
		return nil, err
	}
	settings := p.settings.String() // before run: its watchers update p.settings
	p.run()
	log.Info("pty: port open", "slave", p.name, "link", p.link, "settings", settings)
	return p, nil
}

// checkConfig validates cfg, fills in its defaults and resolves the owner.
func checkConfig(cfg *Config) (uid, gid int, err error) {
	if cfg.Mode&^os.ModePerm != 0 {
		return 0, 0, fmt.Errorf("%w: Mode %v has bits other than permissions", ErrBadConfig, cfg.Mode)
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if uid, gid, err = lookupOwner(cfg.Owner, cfg.Group); err != nil {
		return 0, 0, err
	}
	if cfg.Link != "" {
		cfg.Link = filepath.Clean(cfg.Link)
		if err := checkLinkAllowed(cfg.Link, os.Geteuid()); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// watch starts following application opens and closes of the slave, with
// Config.Watcher or a watcher of the Port's own.
func (p *Port) watch() (err error) {
	if p.cfg.Watcher != nil {
		p.wd, err = p.cfg.Watcher.add(p)
		if err == nil {
			p.opw = p.cfg.Watcher
		}
		return err
	}
	w, err := NewOpenWatcher(p.log)
	if err == nil {
		if p.wd, err = w.add(p); err != nil {
			_ = w.Close()
		}
	}
	if err != nil {
		// Not fatal: AppOpen stays true and no AppOpened/AppClosed events
		// are produced.
		p.log.Warn("pty: cannot watch application open/close", "slave", p.name, "err", err)
		return nil
	}
	p.opw, p.ownOpw = w, true
	return nil
}

// unwatch stops the open/close tracking that watch started. It is
// idempotent.
func (p *Port) unwatch() error {
	if p.opw == nil {
		return nil
	}
	p.opw.remove(p.wd, p)
	if p.ownOpw {
		return p.opw.Close()
	}
	return nil
}

// expose points the configured link at the slave.
func (p *Port) expose() error {
	if p.cfg.Link == "" {
		return nil
	}
	c, err := claimLink(&p.cfg, p.name)
	if err != nil {
		return err
	}
	p.claim, p.link = c, p.cfg.Link
	return nil
}

// run starts the Port's goroutines.
func (p *Port) run() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.group, ctx = errgroup.WithContext(ctx)
	switch {
	case p.tw != nil: // the watch's goroutine polls too: one goroutine per Port
		p.group.Go(func() error { return p.runTermWatch(ctx) })
	case p.cfg.PollInterval > 0:
		p.group.Go(func() error { return p.runPoll(ctx) })
	}
}

// takeMaster makes fd, a non-blocking pty master, the Port's master:
// kept out of Go's poller (see master), in packet mode, with its slave's
// name in p.name. unlock unlocks the slave of a new pair; a kept pair
// (Adopt) is unlocked already. It takes fd over (closed on failure).
func (p *Port) takeMaster(fd int, unlock bool) error {
	var err error
	if p.m, err = newMaster(fd); err != nil {
		return err
	}
	var n uint32
	if err := p.masterCtl(func(fd int) (err error) {
		if n, err = unix.IoctlGetUint32(fd, unix.TIOCGPTN); err != nil {
			return fmt.Errorf("pty: not a pty master (TIOCGPTN): %w", err)
		}
		if unlock {
			if err = unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
				return fmt.Errorf("pty: unlockpt: %w", err)
			}
		}
		if err = unix.IoctlSetPointerInt(fd, unix.TIOCPKT, 1); err != nil {
			return fmt.Errorf("pty: TIOCPKT: %w", err)
		}
		return nil
	}); err != nil {
		return err
	}
	p.name = "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
	return nil
}

// openPair opens the master (non-blocking, see master) and our own slave
// fd.
func (p *Port) openPair() error {
	// creack/pty's Open would do, but its ioctls call Fd() on the master,
	// which puts the fd back in blocking mode and breaks deadlines and
	// Close-unblocks-Read; so /dev/ptmx is opened here directly.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("pty: open /dev/ptmx: %w", err)
	}
	if err := p.takeMaster(fd, true); err != nil {
		return err
	}
	sfd, err := unix.Open(p.name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pty: open %s: %w", p.name, err)
	}
	p.slave = os.NewFile(uintptr(sfd), p.name) // blocking and never read
	if p.sraw, err = p.slave.SyscallConn(); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	return nil
}

// setup sets the initial termios and the device node's owner and mode.
func (p *Port) setup(uid, gid int) error {
	if err := p.slaveCtl(func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return err
		}
		initialTermios(t, p.cfg.Initial)
		return unix.IoctlSetTermios(fd, ioctlSetTermios, t)
	}); err != nil {
		return fmt.Errorf("pty: set initial termios on %s: %w", p.name, err)
	}
	// The application gets a 0x0 window, like a real UART; creack/pty
	// makes that explicit (and is the portable winsize API for callers).
	if err := cpty.Setsize(p.slave, &cpty.Winsize{}); err != nil {
		return fmt.Errorf("pty: set window size on %s: %w", p.name, err)
	}
	if err := p.own(uid, gid); err != nil {
		return err
	}
	s, err := p.Settings()
	if err != nil {
		return err
	}
	p.settings = s
	return nil
}

// own gives the device node its configured owner, group and mode.
func (p *Port) own(uid, gid int) error {
	if uid >= 0 || gid >= 0 {
		if err := os.Chown(p.name, uid, gid); err != nil {
			return fmt.Errorf("pty: %w", err)
		}
	}
	if p.cfg.Mode != 0 {
		if err := os.Chmod(p.name, p.cfg.Mode); err != nil {
			return fmt.Errorf("pty: %w", err)
		}
	}
	return nil
}

// lookupOwner resolves user and group names or numbers; -1 means "leave".
func lookupOwner(owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if owner != "" {
		if uid, err = strconv.Atoi(owner); err != nil {
			u, lerr := user.Lookup(owner)
			if lerr != nil {
				return 0, 0, fmt.Errorf("%w: owner %q: %w", ErrBadConfig, owner, lerr)
			}
			if uid, err = strconv.Atoi(u.Uid); err != nil {
				return 0, 0, fmt.Errorf("%w: owner %q has uid %q", ErrBadConfig, owner, u.Uid)
			}
		}
	}
	if group != "" {
		if gid, err = strconv.Atoi(group); err != nil {
			g, lerr := user.LookupGroup(group)
			if lerr != nil {
				return 0, 0, fmt.Errorf("%w: group %q: %w", ErrBadConfig, group, lerr)
			}
			if gid, err = strconv.Atoi(g.Gid); err != nil {
				return 0, 0, fmt.Errorf("%w: group %q has gid %q", ErrBadConfig, group, g.Gid)
			}
		}
	}
	if uid < -1 || gid < -1 {
		return 0, 0, fmt.Errorf("%w: negative uid or gid", ErrBadConfig)
	}
	return uid, gid, nil
}

// checkLinkAllowed refuses links under /dev for users other than root.
func checkLinkAllowed(link string, euid int) error {
	if euid != 0 && (link == "/dev" || strings.HasPrefix(link, "/dev/")) {
		return fmt.Errorf("%w: cannot create %s as uid %d; use a link in a directory you can write to",
			ErrNeedRoot, link, euid)
	}
	return nil
}

func describeMode(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&os.ModeCharDevice != 0:
		return "character device"
	case m&os.ModeDevice != 0:
		return "block device"
	case m.IsRegular():
		return "regular file"
	case m&os.ModeNamedPipe != 0:
		return "named pipe"
	case m&os.ModeSocket != 0:
		return "socket"
	}
	return "non-symlink file"
}

// masterCtl runs f on the master fd without taking it out of non-blocking
// mode.
func (p *Port) masterCtl(f func(fd int) error) error {
	if p.closed.Load() {
		return fmt.Errorf("pty: %s: %w", p.name, os.ErrClosed)
	}
	var ferr error
	if err := p.m.control(func(fd int) { ferr = f(fd) }); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	return ferr
}

// slaveCtl runs f on our slave fd, safely against a concurrent Close.
func (p *Port) slaveCtl(f func(fd int) error) error {
	if p.closed.Load() {
		return fmt.Errorf("pty: %s: %w", p.name, os.ErrClosed)
	}
	var ferr error
	if err := p.sraw.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	return ferr
}

// Name returns the slave device path, /dev/pts/N.
func (p *Port) Name() string { return p.name }

// Link returns the symlink path, or "" if none was configured.
func (p *Port) Link() string { return p.link }

// Read reads bytes the application wrote to the slave. Packet-mode status
// bytes never appear in b: they are turned into Events (so termios
// notifications are only processed while someone calls Read; the poll
// catches settings changes regardless), and the flush and settings
// handlers are called from Read (SetFlushHandler, SetSettingsHandler).
// Read never returns 0, nil for a non-empty b. After Close it returns an
// error wrapping os.ErrClosed; past a deadline, one wrapping
// os.ErrDeadlineExceeded.
func (p *Port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	p.rmu.Lock()
	defer p.rmu.Unlock()
	for {
		if p.woken.Load() {
			p.unwake()
		}
		want := len(b) // data bytes this read may return
		if p.beginRead() {
			if d := p.settle(); d >= 0 && d < want {
				want = d
			}
		}
		// One byte more than want for the packet header, within b when it
		// has room.
		buf := b
		switch {
		case want < len(b):
			buf = b[:want+1]
		case len(b) == 1:
			buf = p.small[:]
		}
		n, err := p.readMaster(buf)
		p.endRead(dataBytes(buf, n))
		if n > 0 {
			if buf[0] != unix.TIOCPKT_DATA {
				p.handlePacket(buf[0])
				// A status byte is always alone in its read.
			} else if n > 1 {
				return copy(b, buf[1:n]), nil
			}
		}
		if err != nil {
			if p.woken.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
				continue // our wake-up (wakeRead), or the caller's deadline too: the next read tells
			}
			return 0, err
		}
	}
}

// Write writes b to the application (it blocks, or waits for the write
// deadline, while the slave's input queue is full).
func (p *Port) Write(b []byte) (int, error) {
	n, errno, err := p.m.Write(b)
	return n, p.ioErr("write", err, errno)
}

// readMaster is one read(2) of the master, waiting in Go's poller (for
// the master's epoll set, see master) while there is nothing to read. It
// is a raw system call (internal/rawio), which saves the runtime's sysmon
// thread a wake-up per message (docs/performance.md, change 5).
func (p *Port) readMaster(b []byte) (int, error) {
	n, errno, err := p.m.Read(b)
	if err == nil && errno == 0 && n == 0 {
		return 0, io.EOF
	}
	return n, p.ioErr("read", err, errno)
}

// ioErr turns what a raw read or write of the master reported into Read's
// and Write's errors: deadline expiry wraps os.ErrDeadlineExceeded, use
// after Close wraps os.ErrClosed, a failed system call is an *os.PathError.
func (p *Port) ioErr(op string, err error, errno syscall.Errno) error {
	switch {
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("pty: %s %s: %w", op, masterName, os.ErrDeadlineExceeded)
	case err != nil && p.closed.Load():
		return fmt.Errorf("pty: %s %s: %w", op, masterName, os.ErrClosed)
	case err != nil:
		return fmt.Errorf("pty: %s %s: %w", op, masterName, err)
	case errno != 0:
		return fmt.Errorf("pty: %w", &os.PathError{Op: op, Path: masterName, Err: errno})
	}
	return nil
}

// SetReadDeadline sets the deadline for Read.
func (p *Port) SetReadDeadline(t time.Time) error {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	p.rdl = t
	if p.woken.Load() {
		return nil // Read restores rdl after its wake-up
	}
	if err := p.m.rep.SetReadDeadline(t); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	return nil
}

// SetWriteDeadline sets the deadline for Write.
func (p *Port) SetWriteDeadline(t time.Time) error {
	if err := p.m.wep.SetReadDeadline(t); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	return nil
}

// handlePacket turns a packet-mode status byte into events.
func (p *Port) handlePacket(c byte) {
	pk := decodePacket(c)
	if pk.reread {
		p.refresh(true)
	}
	if pk.flushRead && !p.selfFlush.Swap(false) {
		p.flushed(FlushRead)
	}
	if pk.flushWrite {
		p.outputFlushed()
		p.flushed(FlushWrite)
	}
	if pk.stop {
		p.emit(OutputStopped)
	}
	if pk.start {
		p.emit(OutputStarted)
	}
}

// Settings returns the application's current termios settings, read from
// the master with TCGETS2 (the kernel answers for the slave).
func (p *Port) Settings() (Settings, error) {
	var s Settings
	err := p.masterCtl(func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
		if err != nil {
			return fmt.Errorf("pty: read termios: %w", err)
		}
		s = settingsFromTermios(t)
		return nil
	})
	return s, err
}

// refresh re-reads the settings and emits SettingsChanged if they differ
// from the last reported ones (and then reports true), and queues them for
// the settings handler (inRead: the caller is Read). The read happens
// under smu so concurrent refreshes cannot report an older state after a
// newer one.
func (p *Port) refresh(inRead bool) bool {
	p.smu.Lock()
	p.rereads.Add(1)
	var t *unix.Termios
	err := p.masterCtl(func(fd int) (err error) {
		t, err = unix.IoctlGetTermios(fd, ioctlGetTermios)
		return err
	})
	var s Settings
	changed := false
	if err == nil {
		s = settingsFromTermios(t)
		if changed = s != p.settings; changed {
			p.settings = s
			p.changed(s, inRead)
			// Queued under smu: two refreshes (the Read goroutine's and
			// the termios watch's) report their changes in the order
			// they read them.
			p.emitEvent(Event{Kind: SettingsChanged, Settings: s})
		}
		p.follow(t)
	}
	p.smu.Unlock()
	switch {
	case err != nil:
		if !errors.Is(err, os.ErrClosed) {
			p.log.Warn("pty: cannot read settings", "slave", p.name, "err", err)
		}
	case changed:
		p.log.Debug("pty: settings changed", "slave", p.name, "settings", s.String())
	}
	return changed
}

// emit sends an event of kind k carrying the last known settings (queued
// under smu, like refresh's: never behind a later change's event).
func (p *Port) emit(k EventKind) {
	p.smu.Lock()
	defer p.smu.Unlock()
	p.emitEvent(Event{Kind: k, Settings: p.settings})
}

// emitEvent queues e without ever blocking: when the buffer is full the
// oldest event is dropped (and counted in EventsDropped).
func (p *Port) emitEvent(e Event) {
	p.emu.Lock()
	defer p.emu.Unlock()
	if p.evClosed {
		return
	}
	for {
		select {
		case p.events <- e:
			return
		default:
		}
		select {
		case <-p.events:
			p.dropped.Add(1)
		default:
		}
	}
}

// Events returns the channel of port events. It is buffered; when the
// consumer falls behind, the oldest events are dropped (see EventsDropped;
// Settings and AppOpen always give the current state). It is closed by
// Close.
func (p *Port) Events() <-chan Event { return p.events }

// EventsDropped returns how many events were dropped because the Events
// buffer was full.
func (p *Port) EventsDropped() uint64 { return p.dropped.Load() }

// AppOpen reports whether an application (any open of the slave other than
// the Port's own) has the slave open. When the inotify watch could not be
// set up (logged by Open; typically the per-user inotify instance limit,
// fs.inotify.max_user_instances, 128 by default) it is always true: not
// knowing must not make a caller discard the application's data.
func (p *Port) AppOpen() bool {
	return p.opw == nil || p.opens.Load() > 0
}

// DiscardInput drops the bytes written with Write that the application has
// not read yet (tcflush TCIFLUSH on the slave). The kernel may hold more
// than the line discipline's 4 KiB in its flip buffers; DiscardInput
// flushes until the queue stays empty (best effort: bytes a concurrent
// Write is still delivering may survive). It is not reported as FlushRead.
func (p *Port) DiscardInput() error {
	for i := 0; i < 50; i++ {
		var inq int
		p.selfFlush.Store(true)
		err := p.slaveCtl(func(fd int) error {
			return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
		})
		if err == nil {
			// Let the kernel's flush_to_ldisc work push what it held back.
			time.Sleep(time.Millisecond)
			err = p.slaveCtl(func(fd int) (err error) {
				inq, err = unix.IoctlGetInt(fd, unix.TIOCINQ)
				return err
			})
		}
		if err != nil {
			return fmt.Errorf("pty: discard input: %w", err)
		}
		if inq == 0 {
			return nil
		}
	}
	return nil
}

// runPoll re-reads the settings every PollInterval, for a Port without a
// termios watch (runTermWatch polls on its own).
func (p *Port) runPoll(ctx context.Context) error {
	iv := p.cfg.PollInterval
	next := func() time.Duration { return time.Until(nextPoll(iv)) }
	t := time.NewTimer(next())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.refresh(false)
			t.Reset(next())
		}
	}
}

// nextPoll is when the next poll of the settings is due, every iv.
//
// The polls fire on whole multiples of the interval on the wall clock, so
// the polls of all the ports of a process run together: the runtime wakes
// once per interval for all of them, not once per port at scattered
// moments (1000 idle ports: about 9 context switches a second instead of
// 1800, measured with cmd/vspbench).
//
// Truncate drops the monotonic clock reading; the time returned has it
// again (now plus the wait), so that a step of the wall clock does not move
// a poll that is due.
func nextPoll(iv time.Duration) time.Time {
	now := time.Now()
	return now.Add(now.Truncate(iv).Add(iv).Sub(now))
}

// openEvent counts one inotify event on the slave node (from the Port's
// own inotify or a shared OpenWatcher). It reports false once the watch is
// gone (IN_IGNORED).
func (p *Port) openEvent(mask uint32) bool {
	switch {
	case mask&unix.IN_IGNORED != 0:
		return false
	case mask&unix.IN_OPEN != 0:
		if p.opens.Add(1) == 1 {
			p.log.Debug("pty: application opened the port", "slave", p.name)
			p.emit(AppOpened)
		}
	case mask&unix.IN_CLOSE != 0:
		// Every open of the slave is counted: the watcher's events never
		// merge (see OpenWatcher), so the count is exact and reaching
		// zero means the last application closed. Below zero means a
		// close of an open that was not counted (one made before the
		// watch started); it clamps.
		c := p.opens.Add(-1)
		if c < 0 {
			p.opens.Store(0)
		}
		if c == 0 {
			p.log.Debug("pty: application closed the port", "slave", p.name)
			p.emit(AppClosed)
		}
	}
	return true
}

// otherOpens counts the file descriptors of other processes that refer to
// the device node name (from /proc/PID/fd; processes the daemon may not
// inspect are not counted, nor is keeper, which holds the Port's own
// fds: see Config.Keeper). A descriptor counts when it is the same file,
// not merely the same name: a container's own devpts has a /dev/pts/N too.
func otherOpens(name string, keeper int) int {
	want, err := os.Stat(name)
	if err != nil {
		return 0
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := strconv.Itoa(os.Getpid())
	n := 0
	for _, pr := range procs {
		pid := pr.Name()
		if pid == self || pid[0] < '0' || pid[0] > '9' || (keeper > 0 && pid == strconv.Itoa(keeper)) {
			continue
		}
		dir := "/proc/" + pid + "/fd"
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, fd := range fds {
			path := dir + "/" + fd.Name()
			if target, err := os.Readlink(path); err != nil || target != name {
				continue
			}
			if fi, err := os.Stat(path); err == nil && os.SameFile(fi, want) {
				n++
			}
		}
	}
	return n
}

// Close removes the symlink (if it still points at our slave) and its
// lock record, releases the link's lock, closes the
// master (pending Read and Write return errors wrapping os.ErrClosed),
// waits for the Port's goroutines, closes the slave and the Events
// channel. It is idempotent and returns the first error.
func (p *Port) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		var errs []error
		if err := p.claim.close(!p.keepLink.Load(), p.name); err != nil {
			errs = append(errs, err)
		}
		p.cancel()
		errs = append(errs, p.closeFiles()...)
		if err := p.group.Wait(); err != nil {
			errs = append(errs, err)
		}
		p.emu.Lock()
		p.evClosed = true
		close(p.events)
		p.emu.Unlock()
		if len(errs) > 0 {
			p.closeErr = errs[0]
		}
		p.log.Info("pty: port closed", "slave", p.name)
	})
	return p.closeErr
}

// closeFiles stops the open/close tracking and closes the master and slave
// files that are open. It runs once (Close, or a failed Open or Adopt).
func (p *Port) closeFiles() []error {
	var errs []error
	if err := p.unwatch(); err != nil {
		errs = append(errs, err)
	}
	if p.m != nil {
		if err := p.m.close(); err != nil {
			errs = append(errs, err)
		}
	}
	files := []*os.File{p.slave}
	if p.tw != nil {
		files = append(files, p.tw.ep, p.tw.sdup)
	}
	for _, f := range files {
		if f == nil {
			continue
		}
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("pty: %w", err))
		}
	}
	return errs
}
