// Command xmodem is an example of an XMODEM file transfer through a vsp
// port: 128-byte blocks with CRC-16 (or the original 8-bit checksum),
// ACK/NAK and retransmission. Run the receiver on one end of the serial
// line (e.g. the pty of an ezsim started with --serial pty:PATH) and the
// sender on the other (the vsp port), or the other way round.
// See README.md in this directory for the commands.
package main
