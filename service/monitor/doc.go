// Package monitor is what vsp shows of a port's traffic: the Record (one
// chunk of bytes in one direction, or one event of the port), its one
// encoder for every output (hexdump, printable text, JSON), the Hub that
// hands a port's records to its observers without ever making the byte
// path wait, and Trace, an observer that writes them to a rotating file.
//
// `vsp monitor` streams a port's records from the daemon as JSON lines
// (GET /v1/monitor on the control socket) and prints them with the same
// encoder a [trace] file is written with.
package monitor
