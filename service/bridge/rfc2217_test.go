//go:build linux

package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/rfc2217"
	"github.com/vsp-dev/vsp/tlsconn"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// rfcHandler is the serial port behind the in-process RFC 2217 server: it
// records every request in order and takes every value.
type rfcHandler struct {
	mu    sync.Mutex
	calls []string
	cur   rfc2217.Settings
}

func (h *rfcHandler) rec(format string, a ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, fmt.Sprintf(format, a...))
}

func (h *rfcHandler) SetBaudRate(b uint32) (uint32, error) {
	h.rec("baud %d", b)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur.BaudRate = b
	return b, nil
}

func (h *rfcHandler) SetDataSize(n int) (int, error) {
	h.rec("data %d", n)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur.DataSize = n
	return n, nil
}

func (h *rfcHandler) SetParity(p rfc2217.Parity) (rfc2217.Parity, error) {
	h.rec("parity %v", p)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur.Parity = p
	return p, nil
}

func (h *rfcHandler) SetStopBits(s rfc2217.StopBits) (rfc2217.StopBits, error) {
	h.rec("stop %v", s)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur.StopBits = s
	return s, nil
}

func (h *rfcHandler) SetControl(c rfc2217.Control) (rfc2217.Control, error) {
	h.rec("control %v", c)
	h.mu.Lock()
	defer h.mu.Unlock()
	if f := rfc2217.Flow(c); f.Outbound() {
		h.cur.Flow = f
	}
	return c, nil
}

func (h *rfcHandler) Purge(w rfc2217.PurgeWhat) error {
	h.rec("purge %d", w)
	return nil
}

func (h *rfcHandler) Current() rfc2217.Settings {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

func (h *rfcHandler) log() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.calls)
}

// noControlAcks drops the server's SET-CONTROL replies (IAC SB 44 105 v
// IAC SE) on their way out, like servers whose serial side cannot do flow
// control and never answer.
type noControlAcks struct{ net.Conn }

func (c noControlAcks) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		if i+7 <= len(p) && bytes.Equal(p[i:i+4], []byte{rfc2217.IAC, rfc2217.SB, rfc2217.OptComPort, 105}) &&
			p[i+5] == rfc2217.IAC && p[i+6] == rfc2217.SE {
			i += 7
			continue
		}
		out = append(out, p[i])
		i++
	}
	if _, err := c.Conn.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// startRFCDevice runs an echoing RFC 2217 access server on loopback.
func startRFCDevice(t *testing.T, dropControlAcks bool) (string, *rfcHandler) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &rfcHandler{}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var conn net.Conn = c
			if dropControlAcks {
				conn = noControlAcks{c}
			}
			srv, err := rfc2217.NewServer(conn, h, nil)
			if err != nil {
				t.Error(err)
				c.Close()
				return
			}
			wg.Go(func() {
				defer srv.Close()
				_, _ = io.Copy(srv, srv)
			})
			t.Cleanup(func() { srv.Close() })
		}
	})
	return ln.Addr().String(), h
}

func rfcTestPort(t *testing.T, addr string) (*Port, *os.File) {
	t.Helper()
	link := filepath.Join(t.TempDir(), "ttyRFC")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := StartPort(PortSpec{
		Name:    "rfc",
		PTY:     pty.Config{Link: link},
		Devices: []string{addr},
		Link:    tlsconn.Config{Profile: tlsconn.ProfileOff},
		Bridge:  BridgeConfig{StaleData: StaleKeep},
		Serial:  SerialSettings{Baud: 19200, DataBits: 8, Parity: "none", StopBits: 1},
		RFC2217: true,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	f, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return p, f
}

func appSpeed(baud uint32) func(*unix.Termios) {
	return func(tio *unix.Termios) {
		tio.Cflag = tio.Cflag&^(unix.CBAUD|unix.CIBAUD) | unix.BOTHER
		tio.Ispeed, tio.Ospeed = baud, baud
	}
}

// waitCalls waits until the server has seen want after the first from calls.
func waitCalls(t *testing.T, h *rfcHandler, from int, want ...string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := h.log()
		if len(got) >= from+len(want) {
			if !slices.Equal(got[from:from+len(want)], want) {
				t.Fatalf("server calls %q, want %q next", got[from:], want)
			}
			return from + len(want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("server calls %q, still waiting for %q", got[from:], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func echoThrough(t *testing.T, f *os.File, data []byte) {
	t.Helper()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(data))
	_ = f.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer f.SetReadDeadline(time.Time{})
	if _, err := io.ReadFull(f, got); err != nil {
		t.Fatalf("echo of %d bytes: %v", len(data), err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("echo differs")
	}
}

// The port sends the configured settings at connect, then each change the
// application makes, and nothing for a change that does not alter what the
// device gets; a flush becomes PURGE-DATA; status shows the acknowledgements.
func TestRFC2217ForwardsAppChanges(t *testing.T) {
	addr, h := startRFCDevice(t, false)
	p, app := rfcTestPort(t, addr)
	// connect: configured speed (the PTY starts at it), data size, parity,
	// stop bits, flow control
	n := waitCalls(t, h, 0, "baud 19200", "data 8", "parity none", "stop 1", "control flow-none")

	testenv.Termios(t, app, appSpeed(57600))
	n = waitCalls(t, h, n, "baud 57600")
	// raw mode and the same speed again: nothing the device cares about
	testenv.Termios(t, app, func(tio *unix.Termios) { tio.Lflag &^= unix.ICANON | unix.ECHO | unix.ISIG })
	testenv.Termios(t, app, appSpeed(57600))
	testenv.Termios(t, app, func(tio *unix.Termios) { tio.Cflag |= unix.CSTOPB })
	n = waitCalls(t, h, n, "stop 2")
	testenv.Termios(t, app, func(tio *unix.Termios) { tio.Cflag |= unix.CRTSCTS })
	n = waitCalls(t, h, n, "control flow-rtscts")
	testenv.Termios(t, app, appSpeed(250000))
	n = waitCalls(t, h, n, "baud 250000")
	sc, err := app.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var ferr error
	if err := sc.Control(func(fd uintptr) { ferr = unix.IoctlSetInt(int(fd), unix.TCFLSH, unix.TCIFLUSH) }); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	n = waitCalls(t, h, n, "purge 1")

	data := bytes.Repeat([]byte{0xff, 0, 0xff, 0xff, 'x'}, 2000)
	echoThrough(t, app, data)

	st := testenv.Await(t, 10*time.Second, "settings acknowledged, none pending", p.Status, func(st Status) bool {
		rs := st.RFC2217
		return rs != nil && rs.Acked == "250000 8N2 flow=rtscts" && len(rs.Pending) == 0 && rs.Requested == rs.Acked && rs.State == RFC2217Up && st.Mismatch == ""
	})
	if rs := st.RFC2217; rs.Sent != 9 || rs.Purges != 1 {
		t.Errorf("sent %d settings and %d purges, want 9 and 1", rs.Sent, rs.Purges)
	}
	if got := h.log(); len(got) != n {
		t.Errorf("extra server calls: %q", got[n:])
	}
}

// A server that never acknowledges SET-CONTROL stalls neither the settings
// that follow nor the data; status lists flow control as pending.
func TestRFC2217ServerWithoutControlAcks(t *testing.T) {
	addr, h := startRFCDevice(t, true)
	p, app := rfcTestPort(t, addr)
	n := waitCalls(t, h, 0, "baud 19200", "data 8", "parity none", "stop 1", "control flow-none")
	for i := range 3 {
		testenv.Termios(t, app, func(tio *unix.Termios) { tio.Cflag |= unix.CRTSCTS })
		n = waitCalls(t, h, n, "control flow-rtscts")
		echoThrough(t, app, bytes.Repeat([]byte{0xff, byte(i)}, 4096))
		testenv.Termios(t, app, func(tio *unix.Termios) { tio.Cflag &^= unix.CRTSCTS })
		n = waitCalls(t, h, n, "control flow-none")
	}
	testenv.Termios(t, app, appSpeed(38400))
	waitCalls(t, h, n, "baud 38400")
	echoThrough(t, app, []byte("still flowing\xff\n"))
	testenv.Await(t, 10*time.Second, "flow control pending", func() RFC2217Status { return *p.Status().RFC2217 }, func(rs RFC2217Status) bool {
		return rs.Acked == "38400 8N1 flow=?" && slices.Equal(rs.Pending, []string{"flow"})
	})
}

func TestSettingsDiff(t *testing.T) {
	base := rfc2217.Settings{BaudRate: 9600, DataSize: 8, Parity: rfc2217.ParityNone, StopBits: rfc2217.StopBits1, Flow: rfc2217.FlowNone}
	for _, tc := range []struct {
		name string
		sent rfc2217.Settings
		want rfc2217.Settings
		msgs int
	}{
		{"connect sends all", rfc2217.Settings{}, base, 5},
		{"nothing changed", base, base, 0},
		{"speed only", base, func() rfc2217.Settings { s := base; s.BaudRate = 250000; return s }(), 1},
		{"unknown fields are not sent", base, rfc2217.Settings{BaudRate: 9600}, 0},
		{"flow and stop", base, func() rfc2217.Settings {
			s := base
			s.Flow = rfc2217.FlowRTSCTS
			s.StopBits = rfc2217.StopBits2
			return s
		}(), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := settingsDiff(tc.sent, tc.want); len(got) != tc.msgs {
				t.Fatalf("%d messages %v, want %d", len(got), got, tc.msgs)
			}
		})
	}
}

func TestWantedSettings(t *testing.T) {
	for _, tc := range []struct {
		app   pty.Settings
		known bool
		cfg   SerialSettings
		want  string
	}{
		{pty.Settings{Baud: 9600, StopBits: 1}, true, SerialSettings{}, "9600 ??1 flow=none"},
		{pty.Settings{Baud: 250000, StopBits: 2, RTSCTS: true}, true, SerialSettings{DataBits: 7, Parity: "even"}, "250000 7E2 flow=rtscts"},
		{pty.Settings{Baud: 0, StopBits: 1, XONXOFF: true}, true, SerialSettings{DataBits: 8, Parity: "none"}, "? 8N1 flow=xonxoff"},
		// the tty's default, nobody's choice: nothing but [serial]'s
		{pty.Settings{Baud: 9600, StopBits: 1}, false, SerialSettings{}, "? ??? flow=?"},
		{pty.Settings{Baud: 9600, StopBits: 1}, false, SerialSettings{DataBits: 7, Parity: "odd"}, "? 7O? flow=?"},
	} {
		if got := formatSettings(wantedSettings(tc.app, tc.known, tc.cfg)); got != tc.want {
			t.Errorf("wantedSettings(%v, %v, %+v) = %q, want %q", tc.app, tc.known, tc.cfg, got, tc.want)
		}
	}
}

// FuzzSettingsDiff: the messages settingsDiff returns, applied to what was
// sent, give what is wanted (for every field wanted), and nothing is sent
// twice.
func FuzzSettingsDiff(f *testing.F) {
	f.Add(uint32(9600), uint8(8), uint8(1), uint8(1), uint8(1), uint32(250000), uint8(7), uint8(3), uint8(2), uint8(3))
	f.Add(uint32(0), uint8(0), uint8(0), uint8(0), uint8(0), uint32(57600), uint8(8), uint8(1), uint8(1), uint8(2))
	f.Add(uint32(115200), uint8(8), uint8(1), uint8(1), uint8(1), uint32(115200), uint8(8), uint8(1), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, b1 uint32, d1, p1, s1, f1 uint8, b2 uint32, d2, p2, s2, f2 uint8) {
		sizes := []int{0, 5, 6, 7, 8}
		sent := rfc2217.Settings{BaudRate: b1, DataSize: sizes[d1%5], Parity: rfc2217.Parity(p1 % 6), StopBits: rfc2217.StopBits(s1 % 4), Flow: rfc2217.Flow(f1 % 4)}
		want := rfc2217.Settings{BaudRate: b2, DataSize: sizes[d2%5], Parity: rfc2217.Parity(p2 % 6), StopBits: rfc2217.StopBits(s2 % 4), Flow: rfc2217.Flow(f2 % 4)}
		got := sent
		seen := map[rfc2217.Command]bool{}
		for _, m := range settingsDiff(sent, want) {
			if seen[m.Command] {
				t.Fatalf("%v sent twice", m.Command)
			}
			seen[m.Command] = true
			// each message must encode and decode
			if _, err := rfc2217.DecodeMessage(m.AppendPayload(nil)); err != nil {
				t.Fatalf("message %v does not decode: %v", m, err)
			}
			switch m.Command {
			case rfc2217.CmdSetBaudRate:
				got.BaudRate = m.BaudRate
			case rfc2217.CmdSetDataSize:
				got.DataSize = int(m.DataSize)
			case rfc2217.CmdSetParity:
				got.Parity = m.Parity
			case rfc2217.CmdSetStopSize:
				got.StopBits = m.StopBits
			case rfc2217.CmdSetControl:
				got.Flow = rfc2217.Flow(m.Control)
			}
		}
		keep := func(w, s, g any, zero bool) {
			if zero && g != s || !zero && g != w {
				t.Fatalf("sent %+v want %+v: got %+v", sent, want, got)
			}
		}
		keep(want.BaudRate, sent.BaudRate, got.BaudRate, want.BaudRate == 0)
		keep(want.DataSize, sent.DataSize, got.DataSize, want.DataSize == 0)
		keep(want.Parity, sent.Parity, got.Parity, want.Parity == 0)
		keep(want.StopBits, sent.StopBits, got.StopBits, want.StopBits == 0)
		keep(want.Flow, sent.Flow, got.Flow, want.Flow == 0)
	})
}

// A device that does not speak Telnet never answers the COM-PORT-OPTION
// offer: the connect fails after the negotiation timeout (no fallback to
// raw TCP, whose 0xFF bytes a Telnet peer would misread), and status says
// why.
func TestRFC2217DeviceSilent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	got := make(chan []byte, 16)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				got <- b
			})
		}
	})
	p, _ := rfcTestPort(t, ln.Addr().String())
	select {
	case b := <-got:
		// the offer: IAC WILL COM-PORT-OPTION first
		if !bytes.HasPrefix(b, []byte{rfc2217.IAC, rfc2217.WILL, rfc2217.OptComPort}) {
			t.Errorf("device received % x, want IAC WILL 44 first", b)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the port never gave up on the silent device")
	}
	st := testenv.Await(t, 10*time.Second, "RFC 2217 refused, no connect", p.Status, func(st Status) bool {
		return st.RFC2217.State == RFC2217Refused && st.Connects == 0 && st.LastError != ""
	})
	t.Logf("last error: %s", st.LastError)
}

// stallWrites holds every write that contains match until the conn is
// closed, like a link whose buffers are full when that message goes out
// (the device stopped reading). Other writes go through.
type stallWrites struct {
	net.Conn
	match  []byte
	closed chan struct{}
	once   sync.Once
}

func newStallWrites(c net.Conn, m rfc2217.Message) *stallWrites {
	return &stallWrites{Conn: c, match: m.Append(nil), closed: make(chan struct{})}
}

func (c *stallWrites) Write(p []byte) (int, error) {
	if bytes.Contains(p, c.match) {
		<-c.closed
		return 0, net.ErrClosed
	}
	return c.Conn.Write(p)
}

func (c *stallWrites) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func testForwarder(t *testing.T) *rfcForwarder {
	t.Helper()
	serial := SerialSettings{Baud: 19200, DataBits: 8, Parity: "none", StopBits: 1}
	return newRFCForwarder(serial, pty.Settings{}, false, 10*time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func dialTCP(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// A purge blocked on the network (the device does not read) does not block
// status, and it is counted once it fails.
func TestRFC2217StatusDoesNotWaitForPurge(t *testing.T) {
	addr, _ := startRFCDevice(t, false)
	f := testForwarder(t)
	conn := newStallWrites(dialTCP(t, addr), rfc2217.Message{Command: rfc2217.CmdPurgeData, Purge: rfc2217.PurgeReceive})
	link, err := f.wrap(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	t.Cleanup(func() { link.Close() })
	t.Cleanup(func() { conn.Close() }) // first: ends the stalled purge
	wg.Go(func() { f.purge(rfc2217.PurgeReceive) })
	testenv.Blocked(t, 10*time.Second, "chan receive", "bridge.(*rfcForwarder).purge")

	got := make(chan RFC2217Status, 1)
	go func() { st, _ := f.status(); got <- st }()
	select {
	case st := <-got:
		if st.State != RFC2217Up || st.Purges != 0 {
			t.Errorf("status during the purge: %+v, want up and no purge yet", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("status waited for a purge blocked on the network")
	}

	conn.Close()
	wg.Wait()
	st, _ := f.status()
	if st.Purges != 0 || !strings.Contains(st.LastError, "purge") {
		t.Errorf("after the failed purge: %+v, want no purge counted and its error", st)
	}
}

// Cancelling the connect while the connect settings are blocked on the
// network ends wrap (the settings are sent with sendMu held: nothing else
// could then send), and the forwarder is down.
func TestRFC2217WrapCancelledDuringSettings(t *testing.T) {
	addr, _ := startRFCDevice(t, false)
	f := testForwarder(t)
	conn := newStallWrites(dialTCP(t, addr), rfc2217.Message{Command: rfc2217.CmdSetDataSize, DataSize: 8})
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() { c, err := f.wrap(ctx, conn); done <- result{c, err} }()
	testenv.Blocked(t, 10*time.Second, "chan receive", "bridge.(*rfcForwarder).wrap")
	cancel()
	select {
	case r := <-done:
		if r.err == nil {
			r.c.Close()
			t.Fatal("wrap succeeded after its context was cancelled")
		}
		if !errors.Is(r.err, context.Canceled) {
			t.Errorf("wrap: %v, want context.Canceled", r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("wrap did not end when its context was cancelled")
	}
	if st, _ := f.status(); st.State != RFC2217Down {
		t.Errorf("state %q after the cancelled connect, want %q", st.State, RFC2217Down)
	}
}
