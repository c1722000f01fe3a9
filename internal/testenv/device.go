package testenv

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// Device is a loopback TCP "device" the test can take away and bring back
// on the same address; it records what it receives.
type Device struct {
	t    *testing.T
	addr string // guarded by mu

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
	got   bytes.Buffer
	grow  chan struct{}
}

// NewDevice starts a Device on a free loopback port; the test's cleanup
// takes it down.
func NewDevice(t *testing.T) *Device {
	d := &Device{t: t, grow: make(chan struct{})}
	d.Up("127.0.0.1:0")
	t.Cleanup(d.Down)
	return d
}

// Up listens on addr (again, after Down).
func (d *Device) Up(addr string) {
	d.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		d.t.Fatal(err)
	}
	d.mu.Lock()
	d.ln, d.addr = ln, ln.Addr().String()
	d.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d.mu.Lock()
			d.conns = append(d.conns, c)
			d.mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				for {
					n, err := c.Read(buf)
					d.mu.Lock()
					d.got.Write(buf[:n])
					close(d.grow)
					d.grow = make(chan struct{})
					d.mu.Unlock()
					if err != nil {
						return
					}
				}
			}()
		}
	}()
}

// Down closes the listener and every session, like a device that reboots.
func (d *Device) Down() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ln != nil {
		d.ln.Close()
		d.ln = nil
	}
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}

// Sessions counts the sessions accepted and not yet taken down.
func (d *Device) Sessions() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// Send writes p on the newest session.
func (d *Device) Send(p []byte) {
	d.t.Helper()
	d.mu.Lock()
	c := d.conns[len(d.conns)-1]
	d.mu.Unlock()
	if _, err := c.Write(p); err != nil {
		d.t.Fatal(err)
	}
}

// WaitGot waits until the device has received want, in order.
func (d *Device) WaitGot(want []byte, timeout time.Duration) {
	d.t.Helper()
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		got, grow := d.got.Bytes(), d.grow
		if bytes.Equal(got, want) {
			d.mu.Unlock()
			return
		}
		if len(got) > len(want) || !bytes.Equal(got, want[:len(got)]) {
			d.mu.Unlock()
			d.t.Fatalf("device got %d bytes that differ from the %d expected", len(got), len(want))
		}
		n := len(got)
		d.mu.Unlock()
		select {
		case <-grow:
		case <-deadline:
			d.t.Fatalf("device got %d of %d bytes after %v", n, len(want), timeout)
		}
	}
}

// Addr returns the address the device listens on (kept across Down and Up).
func (d *Device) Addr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.addr
}
