// Package pty provides the virtual serial port: a pseudo-terminal pair whose
// slave is exposed to applications at a stable symlink (such as
// /dev/ttyVSP0), owned and permissioned for them, and which outlives every
// network link. The master side is read and written by the bridge; changes
// the application makes to the port's termios settings are reported.
//
// # Lifecycle
//
// Open creates the pair and keeps both the master and a slave fd of its own
// (O_NOCTTY) until Close, so the master never reads EOF or EIO when the
// application closes the port, and the application may close and reopen it
// any number of times. The slave starts raw, 9600 8N1, no flow control
// (Config.Initial sets another speed, stop bits or flow control).
//
// A pty can outlive the process too: Files hands out copies of the master
// and of the Port's slave fd for keeping elsewhere (systemd's
// file-descriptor store), Release closes the Port but leaves its link, and
// Adopt builds a Port in a later process on the kept fds, with the same
// /dev/pts/N and the application's settings untouched.
//
// # Notifications
//
// Each tcsetattr by the application wakes the slave's write_wait queue
// (n_tty_set_termios); the Port's own slave fd sits in an edge-triggered
// EPOLLOUT epoll set of its own, itself in Go's poller, so every change is
// heard within microseconds, with no thread and nothing while idle, and
// the settings are re-read (TCGETS2) and reported as SettingsChanged.
// EXTPROC, which would make the kernel report each tcsetattr as a status
// packet, is not used: it makes the line discipline skip all input
// processing (ICRNL, IXON, canonical mode, ISIG...), so an application
// would not get the tty it asked for (LIMITS.md has the reasoning and the
// measurements). The master is in packet mode (TIOCPKT): Read strips all
// packet headers and turns status packets (flushes, output stopped and
// started, IXON toggled) into Events, and flushes also into calls of the
// flush handler (SetFlushHandler), in order with the data. A TCGETS2
// poll every Config.PollInterval is a safety net. Application open and
// close are counted with inotify on the slave node (and its directory, so
// that the kernel never merges two of its events; see OpenWatcher), at
// O(1) per event. Read only processes
// status packets while it is being called; the termios watch, the poll
// and the inotify watcher run on their own goroutines.
//
// # Platform limits
//
// On Linux a pty cannot carry parity, character size, breaks or modem
// lines; LIMITS.md in this directory lists the details. Only
// Linux is implemented; on other systems Open returns an error wrapping
// errors.ErrUnsupported.
package pty
