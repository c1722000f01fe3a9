// Package rfc2217 implements the Telnet COM-PORT-OPTION (RFC 2217) codec used
// by both ends: option negotiation, the serial-setting subnegotiations, the
// line and modem state messages, and IAC escaping of data bytes.
//
// Layers:
//
//   - Decoder, AppendEscaped, AppendCommand: a streaming Telnet
//     (RFC 854/855) codec. The Decoder separates data from commands in place,
//     without allocating on the data path, and rejects malformed input
//     (IAC SE outside a subnegotiation, over-long or unterminated-by-IAC-SE
//     subnegotiations, IAC followed by a non-command byte) with a
//     *ProtocolError instead of guessing.
//   - Message, DecodeMessage: the COM-PORT-OPTION messages as typed values;
//     server replies carry the command code plus 100.
//   - Client: the host end on an existing net.Conn. Settings
//     (Client.SetInOrder) and purges (Client.Purge) are written into the
//     stream in order with the data and never wait for the answer;
//     answers are recorded by Read (see Client.Acked), so a server that
//     never acknowledges SET-CONTROL (sredird and others, see pyserial's
//     notes) cannot stall the session.
//   - Server: the access-server end used by the simulator; serial settings
//     are applied through a Handler and answered with the value in effect.
//     It has no line or modem state to report: it sends no notifications,
//     acknowledges the state masks, answers state polls with 0 and ignores
//     FLOWCONTROL-SUSPEND/RESUME.
//
// Both ends agree to BINARY in both directions and to SGA and refuse every
// other option except COM-PORT-OPTION, without acknowledging a state already
// in effect (RFC 1143), so two implementations cannot loop.
//
// Interoperability notes (tested against pyserial 3.5):
//
//   - pyserial's client waits up to 3 s for every acknowledgement, including
//     SET-CONTROL and PURGE-DATA, and fails unless the reply repeats the
//     requested value; it sends PURGE-DATA receive and transmit on open.
//   - pyserial's PortManager announces WILL COM-PORT-OPTION itself (the
//     client answers DO) and sends NOTIFY-MODEMSTATE once per direction of
//     the agreement. It reads the modem lines, so over a PTY (no TIOCM*
//     ioctls) it needs them stubbed.
//   - pyserial's client accepts FLOWCONTROL-SUSPEND/RESUME from the server
//     with the client codes 8/9; Client accepts (and ignores) both 8/9 and
//     108/109, as it ignores line and modem state notifications.
//   - sredird answers SET-BAUDRATE with 8 bytes (4 trailing zeros):
//     DecodeMessage accepts that. telnetcpcd asks for the signature with an
//     empty COM-PORT-OPTION subnegotiation: Server answers it.
package rfc2217
