package device

import (
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/rfc2217"
)

// A T2S session with RFC 2217 on applies what the device can do to the
// running line, answers the rest with the value in effect, and echoes
// 0xFF-laden data unchanged.
func TestT2SRFC2217Settings(t *testing.T) {
	d := startDevice(t, Config{Console: "off", RFC2217: true})
	p := d.Port("COM1")
	cl := dialRFC2217(t, p)
	// acknowledgements are processed by Read: keep reading
	chunks := make(chan []byte, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 4096)
			n, err := cl.Read(buf)
			if n > 0 {
				chunks <- buf[:n]
			}
			if err != nil {
				return
			}
		}
	}()

	ctl := func(c rfc2217.Control) rfc2217.Message {
		return rfc2217.Message{Command: rfc2217.CmdSetControl, Control: c}
	}
	steps := []struct {
		name string
		send []rfc2217.Message // with SetInOrder, as the bridge sends settings
		want rfc2217.Settings  // acknowledged afterwards (only the non-zero fields are compared)
		line string            // running line afterwards
	}{
		{"custom speed", []rfc2217.Message{{Command: rfc2217.CmdSetBaudRate, BaudRate: 250000}},
			rfc2217.Settings{BaudRate: 250000}, "250000 8N1 flow=none"},
		{"speed out of range is answered with the current", []rfc2217.Message{{Command: rfc2217.CmdSetBaudRate, BaudRate: 5000000}},
			rfc2217.Settings{BaudRate: 250000}, "250000 8N1 flow=none"},
		{"7E2", []rfc2217.Message{
			{Command: rfc2217.CmdSetDataSize, DataSize: 7},
			{Command: rfc2217.CmdSetParity, Parity: rfc2217.ParityEven},
			{Command: rfc2217.CmdSetStopSize, StopBits: rfc2217.StopBits2},
		}, rfc2217.Settings{DataSize: 7, Parity: rfc2217.ParityEven, StopBits: rfc2217.StopBits2}, "250000 7E2 flow=none"},
		{"mark parity refused", []rfc2217.Message{{Command: rfc2217.CmdSetParity, Parity: rfc2217.ParityMark}},
			rfc2217.Settings{Parity: rfc2217.ParityEven}, "250000 7E2 flow=none"},
		{"rts/cts", []rfc2217.Message{ctl(rfc2217.ControlFlowHardware)}, rfc2217.Settings{Flow: rfc2217.FlowRTSCTS}, "250000 7E2 flow=rtscts"},
		{"break", []rfc2217.Message{ctl(rfc2217.ControlBreakOn)}, rfc2217.Settings{Break: rfc2217.SwitchOn}, "250000 7E2 flow=rtscts"},
	}
	for i, st := range steps {
		// DTR toggled after the request: its acknowledgement proves the
		// request before it was processed (the server answers in order)
		marker := i%2 == 0
		dtr := rfc2217.ControlDTROff
		if marker {
			dtr = rfc2217.ControlDTROn
		}
		for _, m := range append(st.send, ctl(dtr)) {
			if err := cl.SetInOrder(m); err != nil {
				t.Fatalf("%s: SetInOrder(%v): %v", st.name, m, err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			a := cl.Acked()
			ok := a.DTR == rfc2217.SwitchOf(marker) &&
				(st.want.BaudRate == 0 || a.BaudRate == st.want.BaudRate) &&
				(st.want.DataSize == 0 || a.DataSize == st.want.DataSize) &&
				(st.want.Parity == 0 || a.Parity == st.want.Parity) &&
				(st.want.StopBits == 0 || a.StopBits == st.want.StopBits) &&
				(st.want.Flow == 0 || a.Flow == st.want.Flow) &&
				(st.want.Break == 0 || a.Break == st.want.Break)
			if ok && p.Serial().String() == st.line {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: acked %+v, line %q; want %+v, %q", st.name, a, p.Serial().String(), st.want, st.line)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	data := append(bytes.Repeat([]byte{0xff}, 300), []byte("\x00\xff\xfe\xff\xff\xf0")...)
	if _, err := cl.Write(data); err != nil {
		t.Fatal(err)
	}
	var got []byte
	timeout := time.After(10 * time.Second)
	for len(got) < len(data) {
		select {
		case c, ok := <-chunks:
			if !ok {
				t.Fatalf("session ended after %d of %d echoed bytes", len(got), len(data))
			}
			got = append(got, c...)
		case <-timeout:
			t.Fatalf("%d of %d bytes echoed", len(got), len(data))
		}
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo differs: % x", got)
	}
}

// dialRFC2217 connects an RFC 2217 client to p's network side; it is
// closed when the test ends.
func dialRFC2217(t *testing.T, p *Port) *rfc2217.Client {
	t.Helper()
	conn, err := net.Dial("tcp", p.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cl, err := rfc2217.NewClient(conn, rfc2217.ClientConfig{Timeout: 10 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}
