package main

import (
	"bytes"
	"errors"
	"testing"
)

func TestFrame(t *testing.T) {
	tests := []struct {
		name string
		pdu  []byte
		want []byte
	}{
		// The usual reference frame: read 10 holding registers from slave 1.
		{"read 10 registers", []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A}, []byte{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD}},
		{"write register 1", []byte{0x11, 0x06, 0x00, 0x01, 0x00, 0x03}, []byte{0x11, 0x06, 0x00, 0x01, 0x00, 0x03, 0x9A, 0x9B}},
	}
	for _, tt := range tests {
		if got := frame(tt.pdu...); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: frame = % x, want % x", tt.name, got, tt.want)
		}
		if err := checkCRC(tt.want); err != nil {
			t.Errorf("%s: checkCRC: %v", tt.name, err)
		}
		bad := append([]byte(nil), tt.want...)
		bad[2] ^= 1
		if err := checkCRC(bad); !errors.Is(err, errCRC) {
			t.Errorf("%s: corrupted frame: err = %v, want errCRC", tt.name, err)
		}
	}
}

func TestAnswer(t *testing.T) {
	regs := []uint16{0, 101, 102, 103}
	tests := []struct {
		name string
		req  []byte
		want []byte // nil: no answer
	}{
		{"read 2 from 1", request(1, fnReadHolding, 1, 2), frame(1, 3, 4, 0, 101, 0, 102)},
		{"other slave", request(2, fnReadHolding, 1, 2), nil},
		{"past the end", request(1, fnReadHolding, 3, 2), frame(1, 0x83, exIllegalAddr)},
		{"write", request(1, fnWriteSingle, 2, 0x1234), request(1, fnWriteSingle, 2, 0x1234)},
		{"read back", request(1, fnReadHolding, 2, 1), frame(1, 3, 2, 0x12, 0x34)},
		{"broadcast write", request(0, fnWriteSingle, 3, 7), nil},
		{"read broadcast value", request(1, fnReadHolding, 3, 1), frame(1, 3, 2, 0, 7)},
		{"unknown function", request(1, 0x2B, 0, 0), frame(1, 0xAB, exIllegalFunc)},
	}
	for _, tt := range tests {
		if got := answer(tt.req, 1, regs); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: answer = % x, want % x", tt.name, got, tt.want)
		}
		if tt.want != nil && responseLen(tt.want) != len(tt.want) {
			t.Errorf("%s: responseLen = %d, want %d", tt.name, responseLen(tt.want), len(tt.want))
		}
	}
	if regs[0] != 7 { // the counter counts the requests for slave 1 and broadcasts
		t.Errorf("request counter = %d, want 7", regs[0])
	}
}

// FuzzAnswer feeds the slave arbitrary requests (with a correct CRC, as the
// serve loop only answers those): it must not panic, and every answer must
// be a well-formed frame whose length responseLen predicts.
func FuzzAnswer(f *testing.F) {
	f.Add([]byte{1, 3, 0, 0, 0, 4})
	f.Add([]byte{1, 6, 0, 2, 0x12, 0x34})
	f.Add([]byte{0, 6, 0, 0, 0, 0})
	f.Add([]byte{1, 3, 0xFF, 0xFF, 0, 0x7D})
	f.Fuzz(func(t *testing.T, pdu []byte) {
		if len(pdu) != 6 {
			return
		}
		regs := make([]uint16, 16)
		req := frame(pdu...)
		resp := answer(req, 1, regs)
		if resp == nil {
			return
		}
		if err := checkCRC(resp); err != nil {
			t.Fatalf("answer to % x: %v", req, err)
		}
		if n := responseLen(resp); n != len(resp) {
			t.Fatalf("answer % x: responseLen %d", resp, n)
		}
	})
}
