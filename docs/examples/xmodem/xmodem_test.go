package main

import (
	"bytes"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection: buffered and
// with read deadlines, like a serial line through vsp.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err = l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// corrupter flips one bit in the n-th write that is a data block.
type corrupter struct {
	net.Conn
	mu     sync.Mutex
	blocks int
	n      int
	hit    bool
}

func (c *corrupter) Write(b []byte) (int, error) {
	c.mu.Lock()
	if len(b) > 100 {
		c.blocks++
		if c.blocks == c.n {
			b = append([]byte(nil), b...)
			b[50] ^= 0x10
			c.hit = true
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

func TestTransfer(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		crc     bool
		corrupt int // data block write to corrupt (0: none)
	}{
		{"one byte crc", 1, true, 0},
		{"one block checksum", 128, false, 0},
		{"odd size crc", 1000, true, 0},
		{"block numbers wrap", 300 * 128, true, 0},
		{"corrupted block crc", 1000, true, 3},
		{"corrupted block checksum", 1000, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := make([]byte, tt.size)
			r := rand.New(rand.NewPCG(uint64(tt.size), 1))
			for i := range data {
				data[i] = byte(r.IntN(256))
			}
			data[len(data)-1] = 'x' // XMODEM strips trailing SUB padding
			a, b := tcpPair(t)
			sender := &corrupter{Conn: a, n: tt.corrupt}
			logf := func(f string, args ...any) { t.Logf(f, args...) }
			errc := make(chan error, 1)
			go func() { errc <- send(sender, data, 5*time.Second, logf) }()
			got, err := receive(b, tt.crc, 5*time.Second, logf)
			if err != nil {
				t.Fatalf("receive: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("send: %v", err)
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("received %d bytes, differing from the %d sent", len(got), len(data))
			}
			if tt.corrupt > 0 && !sender.hit {
				t.Fatal("the corruption was never injected")
			}
		})
	}
}

func TestCRC16(t *testing.T) {
	// CRC-16/XMODEM check value.
	if got := crc16([]byte("123456789")); got != 0x31C3 {
		t.Errorf("crc16(123456789) = %#04x, want 0x31c3", got)
	}
}
