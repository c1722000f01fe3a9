// Package serialport opens a serial port (a vsp port such as /dev/ttyVSP0,
// the equipment side of an ezsim pty, or a real UART) the way the examples
// need it: raw 8N1, no flow control, the given baud rate, and read
// deadlines that work. Linux only; elsewhere Open says the platform is not
// supported.
package serialport
