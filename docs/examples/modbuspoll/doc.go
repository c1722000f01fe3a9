// Command modbuspoll is an example of a Modbus-RTU poll loop through a vsp
// port: a master that polls holding registers (function 3) and writes one
// (function 6), and a slave that plays the equipment on the other end of the
// serial line, e.g. on the pty of an ezsim started with --serial pty:PATH.
// See README.md in this directory for the commands.
package main
