package main

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Modbus function codes and exception codes used here.
const (
	fnReadHolding  = 0x03
	fnWriteSingle  = 0x06
	exIllegalFunc  = 0x01
	exIllegalAddr  = 0x02
	maxReadCount   = 125
	exceptionFlag  = 0x80
	requestLen     = 8 // address, function, 2x uint16, CRC: functions 3 and 6
	exceptionLen   = 5 // address, function|0x80, code, CRC
	minResponseLen = 5
)

var errCRC = errors.New("modbus: CRC mismatch")

// crc16 is the Modbus CRC (reflected polynomial 0xA001, initial 0xFFFF),
// sent low byte first.
func crc16(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// frame appends the CRC to pdu (address and function included).
func frame(pdu ...byte) []byte {
	return binary.LittleEndian.AppendUint16(pdu, crc16(pdu))
}

// checkCRC verifies the CRC at the end of a whole frame.
func checkCRC(f []byte) error {
	if len(f) < 4 {
		return fmt.Errorf("modbus: frame of %d bytes is too short", len(f))
	}
	n := len(f) - 2
	if got, want := binary.LittleEndian.Uint16(f[n:]), crc16(f[:n]); got != want {
		return fmt.Errorf("%w: got %#04x, want %#04x", errCRC, got, want)
	}
	return nil
}

// request builds a request for function 3 or 6: two 16-bit arguments.
func request(slave, fn byte, a, b uint16) []byte {
	return frame(slave, fn, byte(a>>8), byte(a), byte(b>>8), byte(b))
}

// responseLen returns the length of a response whose first bytes are hdr,
// or 0 when more bytes are needed to tell.
func responseLen(hdr []byte) int {
	if len(hdr) < 2 {
		return 0
	}
	switch fn := hdr[1]; {
	case fn&exceptionFlag != 0:
		return exceptionLen
	case fn == fnReadHolding:
		if len(hdr) < 3 {
			return 0
		}
		return 5 + int(hdr[2])
	default: // function 6 echoes its request
		return requestLen
	}
}
