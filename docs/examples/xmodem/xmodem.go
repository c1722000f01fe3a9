package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// XMODEM control bytes.
const (
	soh = 0x01
	eot = 0x04
	ack = 0x06
	nak = 0x15
	can = 0x18
	sub = 0x1A // padding of the last block
	crc = 'C'  // receiver's request for CRC-16 mode

	blockSize = 128
	maxErrors = 10

	startInterval = time.Second // receiver: between start requests
	maxStarts     = 60          // receiver: start requests before giving up
)

var errCanceled = errors.New("xmodem: canceled by the other side")

// port is what a transfer needs: an *os.File from serialport.Open.
type port interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// crc16 is XMODEM's CRC-16/CCITT (polynomial 0x1021, initial 0), sent high
// byte first.
func crc16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c ^= uint16(x) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
	}
	return c
}

func checksum(b []byte) byte {
	var s byte
	for _, x := range b {
		s += x
	}
	return s
}

// block builds block number n (1-based, sent modulo 256) from data, which
// is padded with SUB to 128 bytes.
func block(n int, data []byte, useCRC bool) []byte {
	b := make([]byte, 0, 3+blockSize+2)
	b = append(b, soh, byte(n), ^byte(n))
	b = append(b, data...)
	for len(b) < 3+blockSize {
		b = append(b, sub)
	}
	if useCRC {
		c := crc16(b[3:])
		return append(b, byte(c>>8), byte(c))
	}
	return append(b, checksum(b[3:]))
}

// readByte reads one byte within timeout.
func readByte(p port, timeout time.Duration) (byte, error) {
	var b [1]byte
	if err := p.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, err
	}
	_, err := io.ReadFull(p, b[:])
	return b[0], err
}

func readFull(p port, b []byte, timeout time.Duration) error {
	if err := p.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	_, err := io.ReadFull(p, b)
	return err
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// send transmits data. The receiver chooses the mode: 'C' for CRC-16, NAK
// for the 8-bit checksum.
func send(p port, data []byte, timeout time.Duration, logf func(string, ...any)) error {
	var useCRC bool
	t0 := time.Now()
	for {
		c, err := readByte(p, startInterval)
		if err == nil && (c == crc || c == nak) {
			useCRC = c == crc
			break
		}
		if err == nil && c == can {
			return errCanceled
		}
		if err != nil && !isTimeout(err) {
			return err
		}
		if time.Since(t0) > maxStarts*startInterval {
			return fmt.Errorf("xmodem: the receiver did not start within %v", maxStarts*startInterval)
		}
	}
	mode := "checksum"
	if useCRC {
		mode = "CRC-16"
	}
	logf("sending %d bytes in %d blocks (%s)", len(data), (len(data)+blockSize-1)/blockSize, mode)
	for n, off := 1, 0; off < len(data); n, off = n+1, off+blockSize {
		b := block(n, data[off:min(off+blockSize, len(data))], useCRC)
		if err := sendUntilAck(p, b, timeout, fmt.Sprintf("block %d", n), logf); err != nil {
			return err
		}
	}
	return sendUntilAck(p, []byte{eot}, timeout, "EOT", logf)
}

func sendUntilAck(p port, b []byte, timeout time.Duration, what string, logf func(string, ...any)) error {
	for errs := 0; errs < maxErrors; errs++ {
		if _, err := p.Write(b); err != nil {
			return err
		}
		deadline := time.Now().Add(timeout)
	wait:
		for {
			c, err := readByte(p, time.Until(deadline))
			switch {
			case err == nil && c == ack:
				return nil
			case err == nil && c == can:
				return errCanceled
			case err == nil && c == nak:
				logf("%s: NAK, sending again", what)
				break wait
			case err == nil:
				// A repeated start request or noise: an ACK or NAK for this
				// block is still to come.
				continue
			case isTimeout(err):
				logf("%s: no answer within %v, sending again", what, timeout)
				break wait
			default:
				return err
			}
		}
	}
	return fmt.Errorf("xmodem: %s: %d errors, giving up", what, maxErrors)
}

// receive returns the received data, without the SUB padding at its end:
// XMODEM does not carry the file's length, so a file that itself ends with
// 0x1A bytes loses them (the usual XMODEM limit).
func receive(p port, useCRC bool, timeout time.Duration, logf func(string, ...any)) ([]byte, error) {
	start := byte(nak)
	trailer := 1
	if useCRC {
		start, trailer = crc, 2
	}
	var data []byte
	expect := 1 // next block number
	buf := make([]byte, 2+blockSize+trailer)
	started := false
	starts := 0
	for errs := 0; errs < maxErrors; {
		wait := timeout
		if !started {
			// Ask the sender to begin, again every startInterval: a sender
			// that opens its port later has not seen the earlier requests.
			if starts == maxStarts {
				return nil, fmt.Errorf("xmodem: no sender within %v", maxStarts*startInterval)
			}
			starts++
			if _, err := p.Write([]byte{start}); err != nil {
				return nil, err
			}
			wait = startInterval
		}
		c, err := readByte(p, wait)
		if isTimeout(err) {
			if started {
				errs++
				logf("block %d: nothing within %v, NAK", expect, timeout)
				if _, err := p.Write([]byte{nak}); err != nil {
					return nil, err
				}
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		switch c {
		case eot:
			if _, err := p.Write([]byte{ack}); err != nil {
				return nil, err
			}
			return bytes.TrimRight(data, string([]byte{sub})), nil
		case can:
			return nil, errCanceled
		case soh:
		default:
			continue // line noise between blocks
		}
		started = true
		if err := readFull(p, buf, timeout); err != nil {
			if !isTimeout(err) {
				return nil, err
			}
			errs++
			logf("block %d: short block, NAK", expect)
			p.Write([]byte{nak})
			continue
		}
		num, inv, payload := buf[0], buf[1], buf[2:2+blockSize]
		good := num == ^inv
		if useCRC {
			good = good && crc16(payload) == uint16(buf[2+blockSize])<<8|uint16(buf[3+blockSize])
		} else {
			good = good && checksum(payload) == buf[2+blockSize]
		}
		switch {
		case !good:
			errs++
			logf("block %d: bad header or check value, NAK", expect)
			p.Write([]byte{nak})
		case num == byte(expect-1):
			p.Write([]byte{ack}) // our ACK was lost: the sender repeats a block
		case num == byte(expect):
			data = append(data, payload...)
			expect++
			errs = 0
			p.Write([]byte{ack})
		default:
			p.Write([]byte{can, can})
			return nil, fmt.Errorf("xmodem: got block %d, want %d: out of sequence", num, byte(expect))
		}
	}
	p.Write([]byte{can, can})
	return nil, fmt.Errorf("xmodem: %d errors in a row, giving up", maxErrors)
}
