// Package rfc2217 implements the Telnet COM-PORT-OPTION (RFC 2217) codec used
// by both ends: option negotiation, the serial-setting subnegotiations, line
// and modem state notifications, and IAC escaping of data bytes.
package rfc2217
