// Package pty provides the virtual serial port: a pseudo-terminal pair whose
// slave is exposed to applications at a stable symlink (such as
// /dev/ttyVSP0), owned and permissioned for them, and which outlives every
// network link. The master side is read and written by the bridge; changes
// the application makes to the port's termios settings are reported.
package pty
