package rfc2217

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is); protocol violations are *ProtocolError values that wrap
// ErrProtocol.
var (
	// ErrProtocol is wrapped by every *ProtocolError: the peer sent bytes
	// that violate Telnet (RFC 854/855) or COM-PORT-OPTION (RFC 2217)
	// framing. The session cannot continue.
	ErrProtocol = errors.New("rfc2217: protocol violation")

	// ErrNotSupported means the peer refused (or turned off) the
	// COM-PORT-OPTION, so serial settings cannot be sent.
	ErrNotSupported = errors.New("rfc2217: peer does not support COM-PORT-OPTION")

	// ErrNegotiationTimeout means the peer did not answer the
	// COM-PORT-OPTION negotiation within ClientConfig.Timeout.
	ErrNegotiationTimeout = errors.New("rfc2217: option negotiation timed out")

	// ErrInvalidValue means a setter was given a value that RFC 2217
	// cannot carry (e.g. a data size of 9, a parity code of 7).
	ErrInvalidValue = errors.New("rfc2217: invalid value")

	// ErrControlOverflow means too many Telnet commands are queued for
	// sending, because the peer does not read. The session should be
	// closed.
	ErrControlOverflow = errors.New("rfc2217: control queue full")

	// ErrBannerTooLong means the peer sent more than MaxBanner bytes of
	// data before agreeing to COM-PORT-OPTION: NewClient gives up rather
	// than hold an unbounded amount of data for the first Reads.
	ErrBannerTooLong = errors.New("rfc2217: too much data before COM-PORT-OPTION was agreed")

	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("rfc2217: session closed")
)

// ProtocolError describes a protocol violation by the peer.
type ProtocolError struct {
	// Reason says what was wrong, e.g. "subnegotiation longer than 256 bytes".
	Reason string
	// Data holds up to 16 bytes of the offending input, when known.
	Data []byte
}

func (e *ProtocolError) Error() string {
	if len(e.Data) == 0 {
		return "rfc2217: protocol violation: " + e.Reason
	}
	return fmt.Sprintf("rfc2217: protocol violation: %s (% x)", e.Reason, e.Data)
}

// Unwrap returns ErrProtocol.
func (e *ProtocolError) Unwrap() error { return ErrProtocol }

func protoErr(data []byte, format string, args ...any) error {
	if len(data) > 16 {
		data = data[:16]
	}
	return &ProtocolError{Reason: fmt.Sprintf(format, args...), Data: append([]byte(nil), data...)}
}
