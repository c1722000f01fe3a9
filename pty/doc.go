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
// # Notifications
//
// The master is in packet mode (TIOCPKT) and the slave has EXTPROC set
// (unless Config.NoExtproc), so each tcsetattr by the application reaches
// Read as a status packet; Read strips all packet headers and turns status
// packets into Events. A TCGETS2 poll every Config.PollInterval backs this
// up for applications that clear EXTPROC. Application open and close are
// counted with inotify on the slave node (and its directory, so that the
// kernel never merges two of its events; see OpenWatcher), at O(1) per
// event. Read only processes status packets
// while it is being called; the poll and the inotify watcher run on their
// own goroutines.
//
// # Platform limits
//
// On Linux a pty cannot carry parity, character size, breaks or modem
// lines, and EXTPROC changes input processing for applications in
// canonical mode; LIMITS.md in this directory lists the details. Only
// Linux is implemented; on other systems Open returns an error wrapping
// errors.ErrUnsupported.
package pty
