package pty

import (
	"errors"
	"os"
	"strconv"
	"time"
)

// Errors returned by this package. Other errors are wrapped with the "pty: "
// prefix and the underlying cause (test them with errors.Is/errors.As).
var (
	// ErrNotSymlink is returned by Open when Config.Link names an existing
	// file that is not a symbolic link (a device node, a regular file, a
	// directory...). The package never replaces such a file.
	ErrNotSymlink = errors.New("pty: refusing to replace a file that is not a symlink")

	// ErrNeedRoot is returned by Open when the process is not root and
	// Config.Link is under /dev.
	ErrNeedRoot = errors.New("pty: creating a link under /dev needs root")

	// ErrNotOurs is returned by Open when Config.Link names a symlink
	// vsp did not make (or cannot prove it made: see Config.LockDir);
	// it is left untouched.
	ErrNotOurs = errors.New("pty: refusing to replace a symlink vsp did not make")

	// ErrLinkBusy is returned by Open when another Port (in this or
	// another process) holds Config.Link; the message names its pid and
	// port.
	ErrLinkBusy = errors.New("pty: link in use")

	// ErrBadConfig is returned by Open for an invalid Config.
	ErrBadConfig = errors.New("pty: invalid configuration")
)

// DefaultPollInterval is the termios poll period used when
// Config.PollInterval is zero.
const DefaultPollInterval = 2 * time.Second

// Config describes a virtual port. Its zero value is valid: a port with no
// symlink, the kernel's default ownership and permissions, and termios
// polling every DefaultPollInterval. Open copies it.
type Config struct {
	// Link is the symlink to create pointing at the slave, e.g.
	// /dev/ttyVSP0; "" creates none. The link is made only where nothing
	// is; a symlink vsp made itself (proved by its record in LockDir:
	// a crashed process's stale link, or an adopted pty's) is replaced
	// atomically or kept; anything else at that path is refused and left
	// untouched (ErrNotSymlink, ErrNotOurs). The link's directory and
	// every directory above it must be owned by root or the process's
	// user and not writable by others unless sticky, and symlinks on the
	// way must be root's or the user's (internal/safepath); a missing
	// directory is created with mode 0755. Close removes the link only if
	// it still points at the Port's tty.
	Link string

	// LockDir is the runtime state directory (the daemon's, next to its
	// control socket: /run/vsp for root) where the Port keeps a lock file
	// for Link, locked for the Port's life and recording the pid, Name,
	// the link and the tty: a second Port claiming the same link is
	// refused at once naming the holder (ErrLinkBusy), and the record is
	// how a later process proves a leftover link its own. It is created
	// 0700 if missing and must be owned by the user (mode 0700 for users
	// other than root). "" takes no lock: then an existing symlink is
	// never replaced.
	LockDir string

	// Name is the port's name, recorded with the link's lock for
	// messages.
	Name string

	// Owner is the user name or numeric uid given to the slave device
	// node; "" leaves it as is (the daemon's uid).
	Owner string

	// Group is the group name or numeric gid given to the slave device
	// node; "" leaves it as is (normally the tty group).
	Group string

	// Mode holds the permission bits of the slave device node; 0 leaves
	// the kernel's default (0620). Only permission bits are allowed.
	Mode os.FileMode

	// PollInterval is the period of the termios poll that backs up the
	// packet-mode notifications (an application may clear EXTPROC, or
	// NoExtproc may be set). 0 means DefaultPollInterval; negative turns
	// polling off.
	PollInterval time.Duration

	// NoExtproc leaves EXTPROC off on the slave. With EXTPROC on (the
	// default) every tcsetattr by the application is reported at once,
	// but the kernel then skips all input processing for the application
	// (no canonical line editing, no echo, no ISIG signals, no ICRNL, no
	// IXON on input); see LIMITS.md. Set NoExtproc for applications that
	// rely on canonical (cooked) mode; settings changes are then seen by
	// the poll only (within PollInterval), and IXON changes at once.
	NoExtproc bool

	// Keeper is the pid of a process that holds copies of the Port's own
	// fds for safekeeping (the service manager, for systemd's
	// file-descriptor store); its open of the slave is not the
	// application's. 0 means none.
	Keeper int

	// Initial holds the slave's power-on speed, stop bits and flow control
	// (for example the device line's configured settings, so that an
	// application that never sets termios sees them). A zero Baud means
	// 9600. DataBits and Parity are ignored (the pty driver forces 8N) and
	// Raw is always on.
	Initial Settings

	// Watcher, when set, tracks the application's opens and closes for
	// this port; share one among many ports (see OpenWatcher). nil gives
	// the Port an inotify instance of its own.
	Watcher *OpenWatcher
}

// Parity is a serial parity setting.
type Parity uint8

// Parity values.
const (
	ParityNone Parity = iota
	ParityOdd
	ParityEven
	ParityMark
	ParitySpace
)

// String returns the conventional one-letter code: N, O, E, M or S.
func (p Parity) String() string {
	switch p {
	case ParityNone:
		return "N"
	case ParityOdd:
		return "O"
	case ParityEven:
		return "E"
	case ParityMark:
		return "M"
	case ParitySpace:
		return "S"
	}
	return "?"
}

// Settings are the serial line settings an application gave the port with
// termios. On a Linux pty the kernel forces CS8 and clears PARENB, so
// DataBits is always 8 and Parity always ParityNone there; they are
// reported as read.
type Settings struct {
	Baud     uint32 // output speed in bit/s (custom BOTHER speeds exact); 0 = B0 (hang up)
	DataBits int    // 5..8
	Parity   Parity
	StopBits int  // 1 or 2
	RTSCTS   bool // CRTSCTS
	XONXOFF  bool // IXON or IXOFF
	Raw      bool // ICANON and ECHO both off
}

// String formats s like "9600 8N1", followed by " rtscts", " xonxoff" and
// " cooked" (when not Raw) as they apply.
func (s Settings) String() string {
	var a [64]byte
	b := strconv.AppendUint(a[:0], uint64(s.Baud), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(s.DataBits), 10)
	b = append(b, s.Parity.String()...)
	b = strconv.AppendInt(b, int64(s.StopBits), 10)
	if s.RTSCTS {
		b = append(b, " rtscts"...)
	}
	if s.XONXOFF {
		b = append(b, " xonxoff"...)
	}
	if !s.Raw {
		b = append(b, " cooked"...)
	}
	return string(b)
}

// EventKind says what an Event reports.
type EventKind uint8

// Event kinds. There is no Break kind: tcsendbreak and TIOCSBRK on a Linux
// pty slave succeed without doing anything the master can observe (the pty
// driver has no break_ctl), and modem-line ioctls fail with ENOTTY.
const (
	// SettingsChanged: the application changed the termios settings in a
	// way visible in Settings (Event.Settings holds the new ones).
	SettingsChanged EventKind = iota + 1
	// FlushRead: the application discarded the data queued for it
	// (tcflush TCIFLUSH or TCIOFLUSH).
	// Flushes made by DiscardInput are not reported.
	FlushRead
	// FlushWrite: the application discarded its written data that Read
	// had not yet returned (tcflush TCOFLUSH/TCIOFLUSH).
	FlushWrite
	// OutputStopped: the application's output is suspended (it received
	// the STOP character with IXON set, or called tcflow TCOOFF).
	OutputStopped
	// OutputStarted: the application's output resumed.
	OutputStarted
	// AppOpened: an application opened the slave (first open).
	AppOpened
	// AppClosed: the last application closed the slave.
	AppClosed
)

// String returns the kind's name.
func (k EventKind) String() string {
	switch k {
	case SettingsChanged:
		return "settings-changed"
	case FlushRead:
		return "flush-read"
	case FlushWrite:
		return "flush-write"
	case OutputStopped:
		return "output-stopped"
	case OutputStarted:
		return "output-started"
	case AppOpened:
		return "app-opened"
	case AppClosed:
		return "app-closed"
	}
	return "unknown(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change reported by Port.Events.
type Event struct {
	Kind EventKind
	// Settings are the port's settings when the event was produced (the
	// new settings for SettingsChanged; the last known ones otherwise).
	Settings Settings
}

// eventBuffer is the capacity of the Events channel.
const eventBuffer = 64
