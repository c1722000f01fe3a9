package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
)

// MaxNameLen is the longest file name (FDNAME) systemd accepts.
const MaxNameLen = 255

// ErrBadName: a name systemd would refuse for a stored file (empty,
// longer than MaxNameLen, or with a control character, a non-ASCII byte
// or ':').
var ErrBadName = errors.New("sdnotify: invalid file name")

// Notifier sends notifications to the service manager. The zero value and
// a Notifier made outside a service manager send nothing.
type Notifier struct {
	socket string // $NOTIFY_SOCKET at New; "" = not under a service manager
}

// New returns a Notifier for the service manager named by $NOTIFY_SOCKET.
func New() *Notifier { return &Notifier{socket: os.Getenv("NOTIFY_SOCKET")} }

// Enabled reports whether a service manager listens.
func (n *Notifier) Enabled() bool { return n != nil && n.socket != "" }

// Notify sends one notification (newline-separated VAR=value lines).
func (n *Notifier) Notify(state string) error {
	if !n.Enabled() {
		return nil
	}
	// go-systemd reads the socket from the environment on every call;
	// nothing in this process changes it.
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Ready says the service has started, with a status line.
func (n *Notifier) Ready(status string) error {
	return n.Notify(daemon.SdNotifyReady + "\nSTATUS=" + oneLine(status))
}

// Status sets the status line systemctl status shows.
func (n *Notifier) Status(status string) error { return n.Notify("STATUS=" + oneLine(status)) }

// Stopping says the service is shutting down, with a status line.
func (n *Notifier) Stopping(status string) error {
	return n.Notify(daemon.SdNotifyStopping + "\nSTATUS=" + oneLine(status))
}

// Reloading says the service is reloading (or re-executing itself), with a
// status line; Ready ends it.
func (n *Notifier) Reloading(status string) error {
	return n.Notify(daemon.SdNotifyReloading + "\nSTATUS=" + oneLine(status))
}

// Watchdog keeps the service manager's watchdog from firing. Send it from
// the loop whose liveness it vouches for, not from a goroutine of its own.
func (n *Notifier) Watchdog() error { return n.Notify(daemon.SdNotifyWatchdog) }

// WatchdogInterval returns WatchdogSec= of the unit, or 0 when no watchdog
// watches this process. Send Watchdog at about half of it.
func (n *Notifier) WatchdogInterval() time.Duration {
	if !n.Enabled() {
		return 0
	}
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0
	}
	return d
}

// StoreMax returns how many files the service manager's store keeps for
// this service ($FDSTORE, set by systemd 254 and later from
// FileDescriptorStoreMax=), and false when the manager does not say
// (older systemd, or no manager).
func StoreMax() (int, bool) {
	v, ok := os.LookupEnv("FDSTORE")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// Stored returns the files the service manager handed to this process at
// start (LISTEN_FDS, checked against LISTEN_PID), by name; several files
// may share a name. The variables are removed from the environment, so a
// child process does not take them for its own. Call it once, early.
func Stored() map[string][]*os.File { return activation.FilesWithNames() }

// ValidName reports whether systemd accepts name as FDNAME.
func ValidName(name string) bool {
	if name == "" || len(name) > MaxNameLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// Store puts files into the service manager's file-descriptor store under
// name (FDSTORE=1, FDNAME=name). They come back at the next start of the
// service (see Stored) for as long as the manager keeps them. systemd
// keeps a file already stored only once, and drops one that reports
// POLLHUP or POLLERR. The caller keeps its files and closes them as usual.
func (n *Notifier) Store(name string, files ...*os.File) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if len(files) == 0 || !n.Enabled() {
		return nil
	}
	return n.sendFiles("FDSTORE=1\nFDNAME="+name, files)
}

// Remove takes every file stored under name out of the store
// (FDSTOREREMOVE=1); the service manager closes its copies.
func (n *Notifier) Remove(name string) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return n.Notify("FDSTOREREMOVE=1\nFDNAME=" + name)
}

// Barrier waits until the service manager has processed every notification
// sent before it (BARRIER=1, systemd 246 and later), or timeout: state
// sent just before the process exits must not be overtaken by the exit.
func (n *Notifier) Barrier(timeout time.Duration) error {
	if !n.Enabled() {
		return nil
	}
	return n.barrier(timeout)
}

// oneLine keeps a status on one line: a newline would start another
// variable.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
