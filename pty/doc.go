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
// How the application's tcsetattr is heard depends on its input mode.
// While its input is raw (none of ISTRIP, IUCLC, IGNCR, ICRNL, INLCR,
// IXON, PARMRK, ICANON, ISIG, ECHO), the Port sets EXTPROC on the slave:
// n_tty takes its raw receive path then whatever EXTPROC says, so the
// flag changes nothing for the application, and pty_set_termios reports
// every tcsetattr as a TIOCPKT_IOCTL status byte in the master's stream.
// When a tcsetattr turns input processing on, the Port clears EXTPROC at
// once (it would make n_tty skip ICRNL, IXON, canonical mode, ISIG...) and
// hears later changes through the termios watch instead: each tcsetattr
// wakes the slave's write_wait queue (n_tty_set_termios, without a key),
// and the Port's slave fd sits in an epoll set of the watch's own, itself
// in Go's poller, edge triggered: a duplicate for EPOLLWRNORM, which the
// data's wake-ups of that queue (keyed EPOLLOUT) never reach, so a change
// is heard at once; and the fd itself for EPOLLOUT, which catches a change
// whose edge came while the slave was not writable, at the price of a
// re-read per message (bounded by termiosWatchGap). That watch is armed
// only while the input is processed; on a raw port a burst of application
// writes re-reads nothing. When the input becomes raw again, EXTPROC is
// set and the watch disarmed. EXTPROC is the Port's: an application that
// sets it on a processed tty has it cleared, one that drops it on a raw
// tty gets it back (tcgetattr shows EXTPROC while raw; Settings never
// reports it). The Port's own switches are not reported.
//
// Device bytes reaching the slave between the application's tcsetattr and
// the switch (p50 17–20 µs, p99 63–100 µs; BenchmarkInputModeSwitch) are still
// processed raw. Bytes that answer data the application wrote after its
// tcsetattr never are: Read reads the change's status byte before that
// data and switches before returning it.
//
// The master is in packet mode (TIOCPKT) and in the watch's epoll set for
// EPOLLPRI, which n_tty_poll reports while a status byte waits (the
// application's data wakes the master with EPOLLIN only, filtered out by
// the kernel): changes are heard and followed even while nobody calls
// Read. Read strips all packet headers and turns status bytes into Events
// (flushes, output stopped and started, IXON toggled). The settings
// handler (SetSettingsHandler) and the flush handler (SetFlushHandler)
// are called in the goroutine calling Read, in order with the data: a
// settings change after the bytes queued on the master when it was seen,
// a flush as soon as its status byte is read (their doc comments say
// exactly what is guaranteed, and what a pty cannot tell). A TCGETS2
// poll every Config.PollInterval is a safety net. Application open and
// close are counted with inotify on the slave node (and its directory, so
// that the kernel never merges two of its events; see OpenWatcher), at
// O(1) per event. The termios watch, the poll and the inotify watcher run
// on their own goroutines.
//
// # The master and Go's poller
//
// The master fd is not registered with Go's poller: Go registers every
// pollable fd for EPOLLOUT as well as EPOLLIN, and each time the
// application reads what the Port wrote, the kernel wakes the master's
// write queue (pty_unthrottle, keyed EPOLLOUT), which woke the runtime
// once per message for a write that was not waiting. Read waits instead
// for an epoll set of the Port's own that has the master for EPOLLIN
// (status bytes make it readable too), and Write for a second one that has
// the master for EPOLLOUT only while a write waits (the slave's input
// queue full); those two sets are what Go's poller holds. Reads and writes
// are raw read(2) and write(2) (internal/rawio) made inside the sets'
// RawConn callbacks, so deadlines, Close unblocking Read and Write, and
// the ordered handlers' wake-up (a read deadline) work as on an os.File.
// The termios watch's set cannot serve Read too: its goroutine waits on it
// while nobody reads, and Go lets one goroutine at a time wait for a file
// to become readable. Cost: two more fds per port.
//
// # Platform limits
//
// On Linux a pty cannot carry parity, character size, breaks or modem
// lines; LIMITS.md in this directory lists the details. Only
// Linux is implemented; on other systems Open returns an error wrapping
// errors.ErrUnsupported.
package pty
