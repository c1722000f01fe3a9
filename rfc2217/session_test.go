package rfc2217

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("RFC2217_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
}

// tcpPair returns both ends of a real loopback TCP connection.
func tcpPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.c.Close() })
	return client, r.c
}

// portHandler is a Handler modelling a UART that refuses some values.
type portHandler struct {
	mu     sync.Mutex
	cur    Settings
	calls  []string
	purges []PurgeWhat
	// purgeLog: purges are also logged in calls ("purge N")
	purgeLog bool
}

func newPortHandler() *portHandler {
	return &portHandler{cur: Settings{BaudRate: 9600, DataSize: 8, Parity: ParityNone, StopBits: StopBits1,
		Flow: FlowNone, InFlow: FlowInNone, Break: SwitchOff, DTR: SwitchOff, RTS: SwitchOff}}
}

func (h *portHandler) log(format string, args ...any) {
	h.calls = append(h.calls, fmt.Sprintf(format, args...))
}

func (h *portHandler) SetBaudRate(b uint32) (uint32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log("baud %d", b)
	if b > 4000000 {
		return 0, errors.New("too fast")
	}
	h.cur.BaudRate = b
	return b, nil
}

func (h *portHandler) SetDataSize(n int) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log("datasize %d", n)
	if n == 5 { // refused: keeps the current one
		return h.cur.DataSize, nil
	}
	h.cur.DataSize = n
	return n, nil
}

func (h *portHandler) SetParity(p Parity) (Parity, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log("parity %v", p)
	h.cur.Parity = p
	return p, nil
}

func (h *portHandler) SetStopBits(s StopBits) (StopBits, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log("stop %v", s)
	h.cur.StopBits = s
	return s, nil
}

func (h *portHandler) SetControl(c Control) (Control, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log("control %v", c)
	switch f := Flow(c); {
	case f.Outbound():
		h.cur.Flow = f
	case f.Inbound():
		h.cur.InFlow = f
	}
	switch c {
	case ControlBreakOn, ControlBreakOff:
		h.cur.Break = SwitchOf(c == ControlBreakOn)
	case ControlDTROn, ControlDTROff:
		h.cur.DTR = SwitchOf(c == ControlDTROn)
	case ControlRTSOn, ControlRTSOff:
		h.cur.RTS = SwitchOf(c == ControlRTSOn)
	}
	return c, nil
}

func (h *portHandler) Purge(w PurgeWhat) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.purges = append(h.purges, w)
	if h.purgeLog {
		h.log("purge %d", w)
	}
	return nil
}

func (h *portHandler) Current() Settings {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur
}

func (h *portHandler) Signature() string { return "test-port" }

func (h *portHandler) snapshot() (Settings, []string, []PurgeWhat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.cur, append([]string(nil), h.calls...), append([]PurgeWhat(nil), h.purges...)
}

// echo copies everything the server reads back to the client until EOF.
func echo(t testing.TB, s *Server) <-chan error {
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 8192)
		for {
			n, err := s.Read(buf)
			if n > 0 {
				if _, werr := s.Write(buf[:n]); werr != nil {
					done <- werr
					return
				}
			}
			if err != nil {
				if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) {
					err = nil
				}
				done <- err
				return
			}
		}
	}()
	return done
}

// pair starts a Client and a Server over loopback TCP.
func pair(t *testing.T) (*Client, *Server, *portHandler) {
	t.Helper()
	cc, sc := tcpPair(t)
	h := newPortHandler()
	srv, err := NewServer(sc, h, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cl, err := NewClient(cc, ClientConfig{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl, srv, h
}

// drain reads from the client in the background so acknowledgements are
// processed; data goes to the returned channel-backed buffer.
type drain struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	err  error
	done chan struct{}
}

func startDrain(c *Client) *drain {
	d := &drain{done: make(chan struct{})}
	go func() {
		defer close(d.done)
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			d.mu.Lock()
			d.buf.Write(b[:n])
			if err != nil {
				d.err = err
			}
			d.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return d
}

func (d *drain) bytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]byte(nil), d.buf.Bytes()...)
}

// set sends settings with SetInOrder, as the bridge does.
func set(t testing.TB, cl *Client, ms ...Message) {
	t.Helper()
	for _, m := range ms {
		if err := cl.SetInOrder(m); err != nil {
			t.Fatalf("SetInOrder(%v): %v", m, err)
		}
	}
}

// control is a SET-CONTROL setting.
func control(c Control) Message { return Message{Command: CmdSetControl, Control: c} }

// query asks the server for its baud rate, data size, parity, stop size,
// flow control, DTR and RTS (value 0 or a *Request control, which
// SetInOrder refuses) through the client's queue; the answers show up in
// Acked.
func query(t testing.TB, cl *Client) {
	t.Helper()
	for _, m := range []Message{
		{Command: CmdSetBaudRate},
		{Command: CmdSetDataSize},
		{Command: CmdSetParity},
		{Command: CmdSetStopSize},
		control(ControlFlowRequest),
		control(ControlInFlowRequest),
		control(ControlBreakRequest),
		control(ControlDTRRequest),
		control(ControlRTSRequest),
	} {
		if err := cl.send(m); err != nil {
			t.Fatalf("send(%v): %v", m, err)
		}
	}
}

func TestClientServerSettings(t *testing.T) {
	cl, srv, h := pair(t)
	echo(t, srv)
	startDrain(cl)

	set(t, cl,
		Message{Command: CmdSetBaudRate, BaudRate: 115200},
		Message{Command: CmdSetDataSize, DataSize: 7},
		Message{Command: CmdSetParity, Parity: ParityEven},
		Message{Command: CmdSetStopSize, StopBits: StopBits2},
		control(ControlFlowHardware),
		control(ControlInFlowXonXoff),
		control(ControlDTROn),
		control(ControlRTSOff),
		control(ControlBreakOn),
	)
	if err := cl.Purge(PurgeBoth); err != nil {
		t.Fatal(err)
	}
	want := Settings{BaudRate: 115200, DataSize: 7, Parity: ParityEven, StopBits: StopBits2,
		Flow: FlowRTSCTS, InFlow: FlowInXonXoff, Break: SwitchOn, DTR: SwitchOn, RTS: SwitchOff}
	testenv.Eventually(t, 5*time.Second, "acks", func() bool { return cl.Acked() == want })
	cur, _, purges := h.snapshot()
	if cur != want {
		t.Errorf("handler state %+v, want %+v", cur, want)
	}
	testenv.Eventually(t, 5*time.Second, "purge", func() bool { _, _, purges = h.snapshot(); return len(purges) == 1 })
	if purges[0] != PurgeBoth {
		t.Errorf("purges %v", purges)
	}

	// refused values are answered with the value in effect
	set(t, cl,
		Message{Command: CmdSetDataSize, DataSize: 5},
		Message{Command: CmdSetBaudRate, BaudRate: 9000000},
		control(ControlBreakOff),
	)
	testenv.Eventually(t, 5*time.Second, "break off ack", func() bool { return cl.Acked().Break == SwitchOff })
	if a := cl.Acked(); a.DataSize != 7 || a.BaudRate != 115200 {
		t.Errorf("after refused values Acked = %+v", a)
	}
	_, calls, _ := h.snapshot()
	t.Logf("handler calls: %v", calls)

	// invalid values never reach the wire
	for _, err := range []error{cl.Purge(0), cl.Purge(4)} {
		if !errors.Is(err, ErrInvalidValue) {
			t.Errorf("err = %v, want ErrInvalidValue", err)
		}
	}

	// queries (answered from Current without calling the Handler) and
	// the signature; the server answers in order, so once the signature
	// is back every answer is in
	n := len(calls)
	query(t, cl)
	if err := cl.RequestSignature(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, "signature", func() bool { return cl.ServerSignature() == "test-port" })
	if a := cl.Acked(); a != (Settings{BaudRate: 115200, DataSize: 7, Parity: ParityEven, StopBits: StopBits2,
		Flow: FlowRTSCTS, InFlow: FlowInXonXoff, Break: SwitchOff, DTR: SwitchOn, RTS: SwitchOff}) {
		t.Errorf("after query Acked = %+v", a)
	}
	if _, calls, _ = h.snapshot(); len(calls) != n {
		t.Errorf("queries called the Handler: %q", calls[n:])
	}
}

// peer is the client end of a session made of the codec only, for what
// Client does not send: the test writes encoded messages on the connection
// and reads the server's COM-PORT-OPTION messages in order.
type peer struct {
	conn net.Conn
	msgs chan Message
}

func newPeer(t testing.TB, conn net.Conn) *peer {
	p := &peer{conn: conn, msgs: make(chan Message, 64)}
	go func() {
		defer close(p.msgs)
		var d Decoder
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			for in := 0; in < n; {
				_, ns, ev, derr := d.Decode(buf, buf[in:n]) // data is dropped
				in += ns
				if derr != nil {
					t.Errorf("peer: %v", derr)
					return
				}
				if ev.Verb == SB && ev.Option == OptComPort {
					m, err := DecodeMessage(ev.Data)
					if err != nil {
						t.Errorf("peer: %v", err)
						return
					}
					p.msgs <- m
				}
			}
			if err != nil {
				return
			}
		}
	}()
	return p
}

func (p *peer) write(t testing.TB, b []byte) {
	t.Helper()
	if _, err := p.conn.Write(b); err != nil {
		t.Fatal(err)
	}
}

// expect fails unless the next message from the server is m.
func (p *peer) expect(t testing.TB, m Message) {
	t.Helper()
	select {
	case got, ok := <-p.msgs:
		if !ok {
			t.Fatalf("session ended, want %v", m)
		}
		if got != m {
			t.Fatalf("server sent %v, want %v", got, m)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("server did not send %v", m)
	}
}

// The server's answers to what Client does not send (masks, polls, the
// signature asked for the telnetcpcd way) and what it ignores (the
// client's own signature, flow control suspend and resume, server codes),
// driven by a client made of the codec: every message the server sends is
// checked in order, so a reply to an ignored message or a notification
// would show up as the next one.
func TestServerMasksPollsAndSignature(t *testing.T) {
	cc, sc := tcpPair(t)
	srv, err := NewServer(sc, newPortHandler(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	got := echo(t, srv)
	p := newPeer(t, cc)
	signature := Message{Server: true, Command: CmdSignature, Signature: "test-port"}
	p.write(t, AppendCommand(nil, WILL, OptComPort))

	for _, tt := range []struct {
		name string
		send []byte
		want []Message // nil: ignored
	}{
		{"line state mask", Message{Command: CmdSetLineStateMask, LineState: LineBreakDetect | LineFramingError}.Encode(),
			[]Message{{Server: true, Command: CmdSetLineStateMask, LineState: LineBreakDetect | LineFramingError}}},
		{"modem state mask", Message{Command: CmdSetModemStateMask, ModemState: ModemCD | ModemCTS}.Encode(),
			[]Message{{Server: true, Command: CmdSetModemStateMask, ModemState: ModemCD | ModemCTS}}},
		{"line state poll", Message{Command: CmdNotifyLineState}.Encode(),
			[]Message{{Server: true, Command: CmdNotifyLineState}}},
		{"modem state poll", Message{Command: CmdNotifyModemState}.Encode(),
			[]Message{{Server: true, Command: CmdNotifyModemState}}},
		{"signature request", Message{Command: CmdSignature}.Encode(), []Message{signature}},
		{"telnetcpcd signature request", frame(), []Message{signature}},
		{"client signature", Message{Command: CmdSignature, Signature: "peer"}.Encode(), nil},
		{"flow suspend", Message{Command: CmdFlowSuspend}.Encode(), nil},
		{"flow resume", Message{Command: CmdFlowResume}.Encode(), nil},
		{"server code", Message{Command: CmdSetBaudRate, Server: true, BaudRate: 300}.Encode(), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p.write(t, tt.send)
			// a request handled after it marks the end of its answers
			p.write(t, Message{Command: CmdSignature}.Encode())
			for _, m := range append(tt.want, signature) {
				p.expect(t, m)
			}
		})
	}
	// none of it was a protocol error: the server reads on to the end
	p.write(t, []byte("after"))
	_ = cc.(*net.TCPConn).CloseWrite()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("server: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("server did not see the end of the session")
	}
}

// The client ignores what it does not use from the server (line and modem
// state notifications, flow control suspend and resume with the server
// codes or pyserial's client codes) and goes on with the session.
func TestClientIgnoresNotifications(t *testing.T) {
	cc, sc := tcpPair(t)
	go func() {
		b := AppendCommand(nil, DO, OptComPort)
		for _, m := range []Message{
			{Server: true, Command: CmdNotifyModemState, ModemState: ModemCTS | ModemDSR},
			{Server: true, Command: CmdNotifyLineState, LineState: LineBreakDetect},
			{Server: true, Command: CmdFlowSuspend},
			{Server: true, Command: CmdFlowResume},
			{Command: CmdFlowSuspend},
			{Command: CmdFlowResume},
			{Server: true, Command: CmdSetBaudRate, BaudRate: 9600},
		} {
			b = m.Append(b)
		}
		_, _ = sc.Write(append(b, "data"...))
		_, _ = io.Copy(io.Discard, sc)
	}()
	cl, err := NewClient(cc, ClientConfig{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_ = cl.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 4)
	if _, err := io.ReadFull(cl, b); err != nil || string(b) != "data" {
		t.Fatalf("got %q %v", b, err)
	}
	if a := cl.Acked(); a != (Settings{BaudRate: 9600}) {
		t.Errorf("Acked = %+v, want the baud rate only", a)
	}
}

// pattern returns n bytes where every byte value and long runs of 0xFF
// occur.
func pattern(n int) []byte {
	b := make([]byte, 0, n+4096)
	for i := 0; i < 256; i++ {
		b = append(b, byte(i))
	}
	b = append(b, bytes.Repeat([]byte{IAC}, 1000)...)
	for i := 0; len(b) < n; i++ {
		switch {
		case i%97 == 0:
			b = append(b, IAC, IAC, IAC)
		default:
			b = append(b, byte(i*31+i/256))
		}
	}
	return b[:n]
}

func TestDataAllBytesBothWays(t *testing.T) {
	cl, srv, _ := pair(t)
	echoed := echo(t, srv)
	data := pattern(1 << 20)

	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(cl, int64(len(data))))
		got <- b
	}()
	// settings interleaved with data must not disturb it
	settersDone := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 50 && err == nil; i++ {
			err = errors.Join(cl.SetInOrder(Message{Command: CmdSetBaudRate, BaudRate: uint32(1200 + i)}),
				cl.SetInOrder(control(pick(i%2 == 0, ControlDTROn, ControlDTROff))))
		}
		settersDone <- err
	}()
	for off := 0; off < len(data); off += 50000 {
		if _, err := cl.Write(data[off:min(off+50000, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			i := 0
			for i < len(b) && b[i] == data[i] {
				i++
			}
			t.Fatalf("echo differs at %d (got %d bytes of %d)", i, len(b), len(data))
		}
	case <-time.After(20 * time.Second):
		t.Fatal("timeout")
	}
	if err := <-settersDone; err != nil {
		t.Fatal(err)
	}
	startDrain(cl) // keep reading, acknowledgements are processed by Read
	testenv.Eventually(t, 5*time.Second, "last baud ack", func() bool { return cl.Acked().BaudRate == 1249 })
	cl.Close()
	if err := <-echoed; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func TestDataServerToClientDirect(t *testing.T) {
	cl, srv, _ := pair(t)
	data := pattern(300 << 10)
	go func() {
		_, _ = srv.Write(data)
	}()
	b := make([]byte, len(data))
	if _, err := io.ReadFull(cl, b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, data) {
		t.Fatal("data differs")
	}
}

// fakeServer runs a minimal RFC 2217 server on conn built from the codec
// only: it agrees to COM-PORT-OPTION, echoes data and acknowledges every
// request except SET-CONTROL, like sredird-style servers that never ack.
func fakeServer(t testing.TB, conn net.Conn, refuse bool) <-chan error {
	done := make(chan error, 1)
	go func() {
		var d Decoder
		var wmu sync.Mutex
		send := func(b []byte) error {
			wmu.Lock()
			defer wmu.Unlock()
			_, err := conn.Write(b)
			return err
		}
		buf := make([]byte, 8192)
		for {
			n, err := conn.Read(buf)
			out, in := 0, 0
			for in < n {
				nd, ns, ev, derr := d.Decode(buf[out:], buf[in:n])
				out += nd
				in += ns
				if derr != nil {
					done <- derr
					return
				}
				switch {
				case ev.Verb == WILL && ev.Option == OptComPort:
					if refuse {
						_ = send(AppendCommand(nil, DONT, OptComPort))
					} else {
						_ = send(AppendCommand(nil, DO, OptComPort))
					}
				case ev.Verb == WILL || ev.Verb == DO:
					// refuse everything else, like ser2net's minimal side
					v := DONT
					if ev.Verb == DO {
						v = WONT
					}
					_ = send(AppendCommand(nil, v, ev.Option))
				case ev.Verb == SB && ev.Option == OptComPort:
					m, err := DecodeMessage(ev.Data)
					if err != nil || m.Command == CmdSetControl {
						continue // never acknowledged
					}
					m.Server = true
					_ = send(m.Encode())
				}
			}
			if out > 0 {
				if err := send(AppendEscaped(nil, buf[:out])); err != nil {
					done <- err
					return
				}
			}
			if err != nil {
				done <- nil
				return
			}
		}
	}()
	return done
}

func TestServerNeverAcksSetControl(t *testing.T) {
	cc, sc := tcpPair(t)
	fakeServer(t, sc, false)
	cl, err := NewClient(cc, ClientConfig{Timeout: 2 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	data := pattern(256 << 10)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(cl, int64(len(data))))
		got <- b
	}()
	set(t, cl, Message{Command: CmdSetBaudRate, BaudRate: 57600})
	stop := make(chan struct{})
	setDone := make(chan time.Duration, 1)
	go func() {
		var worst time.Duration
		for i := 0; ; i++ {
			select {
			case <-stop:
				setDone <- worst
				return
			default:
			}
			start := time.Now()
			_ = cl.SetInOrder(control(pick(i%2 == 0, ControlDTROn, ControlDTROff)))
			_ = cl.SetInOrder(control(pick(i%2 == 1, ControlRTSOn, ControlRTSOff)))
			_ = cl.SetInOrder(control(ControlFlowHardware))
			worst = max(worst, time.Since(start))
			time.Sleep(time.Millisecond)
		}
	}()
	for off := 0; off < len(data); off += 4096 {
		if _, err := cl.Write(data[off:min(off+4096, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Fatal("data differs")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("data stalled")
	}
	close(stop)
	if worst := <-setDone; worst > 5*time.Second { // "never behind the data", generous for a loaded machine
		t.Errorf("SetInOrder blocked for %v", worst)
	}
	startDrain(cl)
	testenv.Eventually(t, 5*time.Second, "baud ack", func() bool { return cl.Acked().BaudRate == 57600 })
	if a := cl.Acked(); a.DTR != SwitchUnknown || a.Flow != FlowUnknown {
		t.Errorf("unacked control shows as acked: %+v", a)
	}
}

func TestClientNotSupported(t *testing.T) {
	cc, sc := tcpPair(t)
	fakeServer(t, sc, true)
	_, err := NewClient(cc, ClientConfig{}, testLogger(t))
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported", err)
	}
	// the caller keeps a usable connection
	if _, err := cc.Write([]byte("raw")); err != nil {
		t.Fatal(err)
	}
	// late answers to our other option requests may come first
	_ = cc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	b := make([]byte, 64)
	for !bytes.HasSuffix(got, []byte("raw")) {
		n, err := cc.Read(b)
		got = append(got, b[:n]...)
		if err != nil {
			t.Fatalf("raw fallback: %q %v", got, err)
		}
	}
}

func TestClientNegotiationTimeout(t *testing.T) {
	cc, sc := tcpPair(t)
	go io.Copy(io.Discard, sc) // a silent peer
	start := time.Now()
	_, err := NewClient(cc, ClientConfig{Timeout: 200 * time.Millisecond}, testLogger(t))
	if !errors.Is(err, ErrNegotiationTimeout) {
		t.Fatalf("err = %v, want ErrNegotiationTimeout", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v", d)
	}
}

// A device that floods data and never answers the negotiation cannot make
// the client hold more than MaxBanner: NewClient fails as soon as the
// banner passes the bound, long before the negotiation times out.
func TestClientBannerBounded(t *testing.T) {
	cc, sc := tcpPair(t)
	go func() {
		flood := bytes.Repeat([]byte("0123456789abcdef"), 4096)
		for {
			if _, err := sc.Write(flood); err != nil {
				return
			}
		}
	}()
	_, err := NewClient(cc, ClientConfig{Timeout: time.Minute}, testLogger(t))
	if !errors.Is(err, ErrBannerTooLong) {
		t.Fatalf("err = %v, want ErrBannerTooLong", err)
	}
}

func TestClientBannerKept(t *testing.T) {
	cc, sc := tcpPair(t)
	go func() {
		// banner, then the agreement and more data in the same segment
		_, _ = sc.Write([]byte("banner\r\n"))
		b := append(AppendCommand(nil, DO, OptComPort), 'x', IAC, IAC)
		_, _ = sc.Write(b)
		_, _ = io.Copy(io.Discard, sc)
	}()
	cl, err := NewClient(cc, ClientConfig{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b := make([]byte, 10)
	if _, err := io.ReadFull(cl, b); err != nil || string(b) != "banner\r\nx\xff" {
		t.Fatalf("got %q %v", b, err)
	}
}

func TestClientProtocolError(t *testing.T) {
	cc, sc := tcpPair(t)
	go func() {
		b := AppendCommand(nil, DO, OptComPort)
		b = append(b, "ok"...)
		b = append(b, IAC, SB, OptComPort)
		b = append(b, make([]byte, 1000)...) // over-long subnegotiation
		_, _ = sc.Write(b)
		_, _ = io.Copy(io.Discard, sc)
	}()
	cl, err := NewClient(cc, ClientConfig{}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	b := make([]byte, 100)
	var got []byte
	for {
		n, err := cl.Read(b)
		got = append(got, b[:n]...)
		if err != nil {
			var pe *ProtocolError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *ProtocolError", err)
			}
			break
		}
	}
	if string(got) != "ok" {
		t.Fatalf("data %q", got)
	}
	// sticky
	if _, err := cl.Read(b); !errors.Is(err, ErrProtocol) {
		t.Fatalf("second Read: %v", err)
	}
}

func TestServerProtocolError(t *testing.T) {
	cc, sc := tcpPair(t)
	srv, err := NewServer(sc, newPortHandler(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go io.Copy(io.Discard, cc)
	_, _ = cc.Write(frame(CmdSetDataSize.code(), 42)) // data size 42
	_, err = srv.Read(make([]byte, 10))
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
}

func (c Command) code() byte { return byte(c) }

func TestCloseFlushesAndIsIdempotent(t *testing.T) {
	cl, srv, h := pair(t)
	echoed := echo(t, srv)
	// queued requests (as RequestSignature's) go out before the close
	for _, c := range []Control{ControlDTROn, ControlRTSOn} {
		if err := cl.send(control(c)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cl.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := <-echoed; err != nil {
		t.Fatal(err)
	}
	if cur, _, _ := h.snapshot(); cur.DTR != SwitchOn || cur.RTS != SwitchOn {
		t.Fatalf("requests queued before Close were lost: %+v", cur)
	}
	for name, err := range map[string]error{
		"SetInOrder":       cl.SetInOrder(control(ControlDTROff)),
		"Purge":            cl.Purge(PurgeReceive),
		"RequestSignature": cl.RequestSignature(),
	} {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v", name, err)
		}
	}
	if _, err := cl.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close: %v", err)
	}
}

func TestClientDataPathNoAllocs(t *testing.T) {
	cl, srv, _ := pair(t)
	echo(t, srv)
	msg := bytes.Repeat([]byte("abcdefgh"), 512)
	buf := make([]byte, len(msg))
	// warm up
	if _, err := cl.Write(msg); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cl, buf); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(50, func() {
		if _, err := cl.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(cl, buf); err != nil {
			t.Fatal(err)
		}
	})
	// the echo goroutine and the netpoller run meanwhile; allow a little
	if allocs > 2 {
		t.Fatalf("%v allocations per round trip", allocs)
	}
}
