// Package bridge is vsp's data plane: one running port, the byte path
// between an application's pty and the link to its device.
//
// A Port (StartPort) owns a pty.Port for its whole life and a Bridge that
// copies bytes both ways: application → device through a bounded outage
// ring that holds writes while the link is down (and blocks the
// application, as hardware flow control would, when it is full), device →
// application straight from the link. Around the copy it meters what the
// kernel acknowledged (possibly lost bytes at an outage), redials with
// backoff, fails over among several device addresses and back, accepts the
// device's own connection in listen (TCP-client/COD) mode, and forwards the
// application's serial settings over RFC 2217 when asked to.
//
// The package knows nothing of files or the daemon: package service turns
// port files into PortSpecs and supervises the Ports.
package bridge
