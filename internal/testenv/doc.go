// Package testenv holds helpers shared by the tests of every package:
// locating the third-party programs used as real peers (and pyserial's
// RFC 2217 PortManager), building the project's binaries, termios set-up,
// and a loopback TCP device that records what it receives.
package testenv
