package rfc2217

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// The server handles a request after Read has returned the data the client
// sent before it, and before the data after it, even when data and
// requests arrive in one segment: a device that writes what Read returns
// to its serial line applies a speed change or a purge at the right place
// in the stream.
func TestServerRequestsInOrderWithData(t *testing.T) {
	baud := Message{Command: CmdSetBaudRate, BaudRate: 19200}.Append(nil)
	purge := Message{Command: CmdPurgeData, Purge: PurgeReceive}.Append(nil)
	for _, tt := range []struct {
		name    string
		segment [][]byte
		want    []string
	}{
		{"data, request, data", [][]byte{[]byte("AAAA"), baud, []byte("BBBB")}, []string{"data AAAA", "baud 19200", "data BBBB"}},
		{"request first", [][]byte{baud, []byte("BB")}, []string{"baud 19200", "data BB"}},
		{"two requests between data", [][]byte{[]byte("A"), baud, purge, []byte("B\xff\xffC"), purge},
			[]string{"data A", "baud 19200", "purge 1", "data B\xffC", "purge 1"}},
		{"escaped IAC before a request", [][]byte{[]byte("\xff\xff"), purge, []byte("Z")}, []string{"data \xff", "purge 1", "data Z"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cc, sc := tcpPair(t)
			h := newPortHandler()
			srv, err := NewServer(sc, h, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close(); cc.Close() })
			h.purgeLog = true
			if _, err := cc.Write(bytes.Join(tt.segment, nil)); err != nil { // one segment
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				logData(srv, h)
			}()
			testenv.Await(t, 5*time.Second, fmt.Sprintf("handled %q", tt.want), h.handled, func(got []string) bool { return slices.Equal(got, tt.want) })
			cc.Close()
			<-done
		})
	}
}

// SetInOrder puts a setting between the data written before and after it,
// and the server applies it there; it refuses what is not a setting.
func TestClientSetInOrder(t *testing.T) {
	cl, srv, h := pair(t)
	go logData(srv, h)
	startDrain(cl)
	for _, step := range []func() error{
		func() error { _, err := cl.Write([]byte("AAAA")); return err },
		func() error { return cl.SetInOrder(Message{Command: CmdSetBaudRate, BaudRate: 19200}) },
		func() error { _, err := cl.Write([]byte("BBBB")); return err },
		func() error { return cl.SetInOrder(Message{Command: CmdSetControl, Control: ControlFlowXonXoff}) },
		func() error { _, err := cl.Write([]byte("CC")); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"data AAAA", "baud 19200", "data BBBB", "control " + ControlFlowXonXoff.String(), "data CC"}
	testenv.Await(t, 5*time.Second, fmt.Sprintf("server saw %q", want), h.handled, func(got []string) bool { return slices.Equal(got, want) })
	for _, m := range []Message{
		{Command: CmdSetBaudRate},
		{Command: CmdSetDataSize, DataSize: 9},
		{Command: CmdSetDataSize, DataSize: 4},
		{Command: CmdSetParity},
		{Command: CmdSetParity, Parity: 6},
		{Command: CmdSetStopSize, StopBits: 4},
		{Command: CmdSetControl, Control: ControlDTRRequest},
		{Command: CmdSetControl, Control: ControlFlowRequest},
		{Command: CmdSetControl, Control: controlMax + 1},
		{Command: CmdSetLineStateMask, LineState: LineBreakDetect},
		{Command: CmdFlowSuspend},
		{Command: CmdSignature},
		{Command: CmdPurgeData, Purge: PurgeReceive},
		{Command: CmdSetBaudRate, BaudRate: 9600, Server: true},
	} {
		if err := cl.SetInOrder(m); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("SetInOrder(%v) = %v, want ErrInvalidValue", m, err)
		}
	}
}

// handled is what the handler logged, adjacent data joined (data may come
// in several reads).
func (h *portHandler) handled() []string {
	_, calls, _ := h.snapshot()
	var got []string
	for _, c := range calls {
		if n := len(got); n > 0 && strings.HasPrefix(c, "data ") && strings.HasPrefix(got[n-1], "data ") {
			got[n-1] += c[5:]
			continue
		}
		got = append(got, c)
	}
	return got
}

// The server answers a receive purge in order with its data without
// waiting, in its reading goroutine, for a write blocked on a client that
// does not read: the client's data after the purge still reaches the
// line, and the answer goes out after the blocked write's data (which the
// client drops) and before the data written after it.
func TestServerPurgeAnswerBehindBlockedWrite(t *testing.T) {
	cl, srv, h := pair(t)
	h.purgeLog = true
	go logData(srv, h)
	const stale = 8 << 20 // more than both sockets buffer: the write blocks
	wrote := make(chan error, 1)
	go func() {
		if _, err := srv.Write(bytes.Repeat([]byte("s"), stale)); err != nil {
			wrote <- err
			return
		}
		_, err := srv.Write([]byte("fresh\n"))
		wrote <- err
	}()
	testenv.Blocked(t, 10*time.Second, "IO wait", "rfc2217.(*Server).Write")
	if err := cl.Purge(PurgeReceive); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, 10*time.Second, "the purge and the data after it handled", h.handled, func(got []string) bool {
		return slices.Equal(got, []string{"purge 1", "data after"})
	})
	d := startDrain(cl)
	testenv.Await(t, 10*time.Second, "the client to read what the server wrote after the answer", func() string { return string(d.bytes()) }, func(s string) bool { return s == "fresh\n" })
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if got := cl.PurgeDropped(); got != stale {
		t.Errorf("client dropped %d bytes before the answer, want %d", got, stale)
	}
}

// logData reads srv until it fails, logging each read in h as "data ...".
func logData(srv *Server, h *portHandler) {
	buf := make([]byte, 4096)
	for {
		n, err := srv.Read(buf)
		if n > 0 {
			h.mu.Lock()
			h.log("data %s", buf[:n])
			h.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}
