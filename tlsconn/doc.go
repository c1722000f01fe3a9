// Package tlsconn is the link to a serial device server: it dials a device in
// TCP-server mode (or accepts one in TCP-client mode), applies a TLS profile
// (off, legacy for ezTCP-class devices, modern), verifies the device's
// certificate (SHA-256 pin, trust on first use, CA), tunes TCP keep-alive and
// computes redial backoff.
package tlsconn
