package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// maxDatagram is the largest datagram U2S sends: one Ethernet frame's UDP
// payload (simulator-defined; longer serial bursts become several datagrams).
const maxDatagram = 1472

// u2s is the U2S (UDP) communication mode: serial bytes become one datagram
// when Event Byte bytes are collected or the line has been silent for the
// Data Frame time; datagrams received go to the serial line. With peer
// 0.0.0.0:0 (or none) datagrams go to the source of the last one received.
type u2s struct {
	p    *Port
	set  settings
	pc   *net.UDPConn
	peer *net.UDPAddr // nil: reply to the last sender
	log  *slog.Logger

	mu    sync.Mutex
	last  *net.UDPAddr
	buf   []byte
	timer *time.Timer
	done  bool
}

func newU2S(p *Port, set settings) *u2s {
	return &u2s{p: p, set: set, log: p.d.log.With("port", p.name, "mode", "U2S")}
}

func (u *u2s) prepare(ctx context.Context) error {
	if u.set.Peer != "" && !peerUnset(u.set.Peer) {
		a, err := net.ResolveUDPAddr("udp", u.set.Peer)
		if err != nil {
			return fmt.Errorf("device: U2S peer: %w", err)
		}
		u.peer = a
	}
	u.p.mu.Lock()
	addr := u.p.addr
	u.p.mu.Unlock()
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", addr)
	if err != nil {
		return fmt.Errorf("device: U2S listen: %w", err)
	}
	u.pc = pc.(*net.UDPConn)
	u.p.mu.Lock()
	u.p.addr = pc.LocalAddr().String()
	u.p.bound = pc.LocalAddr()
	u.p.mu.Unlock()
	return nil
}

func (u *u2s) run(ctx context.Context) {
	stop := context.AfterFunc(ctx, func() { u.pc.Close() })
	defer func() {
		stop()
		u.pc.Close()
		u.mu.Lock()
		u.done = true
		if u.timer != nil {
			u.timer.Stop()
		}
		u.mu.Unlock()
	}()
	buf := make([]byte, 65536)
	for {
		n, from, err := u.pc.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				u.log.Error("read", "err", err)
			}
			return
		}
		u.p.netRx.Add(uint64(n))
		u.mu.Lock()
		u.last = from
		u.mu.Unlock()
		if err := u.p.writeSerial(ctx, buf[:n]); err != nil {
			return
		}
	}
}

// fromSerial collects serial bytes into datagrams.
func (u *u2s) fromSerial(_ context.Context, b []byte) {
	u.mu.Lock()
	u.buf = append(u.buf, b...)
	var out [][]byte
	size := maxDatagram
	if u.set.EventByte > 0 {
		size = min(u.set.EventByte, maxDatagram)
	}
	for len(u.buf) >= size {
		out = append(out, u.buf[:size:size])
		u.buf = u.buf[size:]
	}
	if len(u.buf) == 0 {
		u.buf = nil
	} else if !u.done {
		frame := time.Duration(max(u.set.DataFrame, 1)) * 10 * time.Millisecond
		if u.timer == nil {
			u.timer = time.AfterFunc(frame, u.flush)
		} else {
			u.timer.Reset(frame)
		}
	}
	u.mu.Unlock()
	for _, d := range out {
		u.send(d)
	}
}

// flush sends what the Data Frame timer found collected.
func (u *u2s) flush() {
	u.mu.Lock()
	b := u.buf
	u.buf = nil
	u.mu.Unlock()
	if len(b) > 0 {
		u.send(b)
	}
}

func (u *u2s) send(b []byte) {
	dst := u.peer
	if dst == nil {
		u.mu.Lock()
		dst = u.last
		u.mu.Unlock()
	}
	if dst == nil {
		u.p.dropped.Add(uint64(len(b))) // nobody to send to yet
		return
	}
	n, err := u.pc.WriteToUDP(b, dst)
	u.p.netTx.Add(uint64(n))
	if err != nil {
		u.p.dropped.Add(uint64(len(b) - n))
	}
}

func (u *u2s) closeSession() bool { return false }

func (u *u2s) status() modeStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	st := modeStatus{TCPState: "UDP", Buffered: len(u.buf)}
	switch {
	case u.peer != nil:
		st.Peer = u.peer.String()
	case u.last != nil:
		st.Peer = u.last.String()
	}
	return st
}
