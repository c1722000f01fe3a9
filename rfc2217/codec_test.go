package rfc2217

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// decodeAll runs the decoder over in, split into pieces of size step
// (0 = whole), decoding in place like the sessions do.
func decodeAll(t testing.TB, d *Decoder, in []byte, step int) (data []byte, evs []Event, err error) {
	if step <= 0 {
		step = len(in) + 1
	}
	for len(in) > 0 {
		n := min(step, len(in))
		chunk := append([]byte(nil), in[:n]...)
		in = in[n:]
		out, pos := 0, 0
		for pos < len(chunk) {
			nd, ns, ev, e := d.Decode(chunk[out:], chunk[pos:])
			if nd > ns {
				t.Fatalf("Decode wrote %d bytes from %d", nd, ns)
			}
			out += nd
			pos += ns
			if e != nil {
				return append(data, chunk[:out]...), evs, e
			}
			if ev.Verb != 0 {
				ev.Data = append([]byte(nil), ev.Data...)
				evs = append(evs, ev)
			} else if ns == 0 {
				t.Fatalf("Decode made no progress at %d of % x", pos, chunk)
			}
		}
		data = append(data, chunk[:out]...)
	}
	return data, evs, nil
}

type decodeCase struct {
	name string
	in   []byte
	data []byte
	evs  []Event
	bad  bool // a *ProtocolError is expected
}

var decodeCases = []decodeCase{
	{name: "plain", in: []byte("hello"), data: []byte("hello")},
	{name: "empty", in: nil},
	{name: "escaped IAC", in: []byte{1, IAC, IAC, 2}, data: []byte{1, IAC, 2}},
	{name: "IAC run", in: []byte{IAC, IAC, IAC, IAC, IAC, IAC}, data: []byte{IAC, IAC, IAC}},
	{name: "will", in: []byte{'a', IAC, WILL, OptComPort, 'b'}, data: []byte("ab"), evs: []Event{{Verb: WILL, Option: OptComPort}}},
	{name: "wont dont do", in: []byte{IAC, WONT, 1, IAC, DONT, 3, IAC, DO, 0},
		evs: []Event{{Verb: WONT, Option: 1}, {Verb: DONT, Option: 3}, {Verb: DO, Option: 0}}},
	{name: "option 255", in: []byte{IAC, DO, IAC}, evs: []Event{{Verb: DO, Option: IAC}}},
	{name: "nop ga ignored", in: []byte{'x', IAC, NOP, IAC, GA, 'y'}, data: []byte("xy"),
		evs: []Event{{Verb: NOP}, {Verb: GA}}},
	{name: "subneg", in: []byte{'a', IAC, SB, 44, 1, 0, 0, 0x25, 0x80, IAC, SE, 'b'}, data: []byte("ab"),
		evs: []Event{{Verb: SB, Option: 44, Data: []byte{1, 0, 0, 0x25, 0x80}}}},
	{name: "subneg escaped", in: []byte{IAC, SB, 44, 101, 0, IAC, IAC, IAC, IAC, 0, IAC, SE},
		evs: []Event{{Verb: SB, Option: 44, Data: []byte{101, 0, IAC, IAC, 0}}}},
	{name: "subneg option only", in: []byte{IAC, SB, 44, IAC, SE}, evs: []Event{{Verb: SB, Option: 44, Data: []byte{}}}},
	{name: "subneg max", in: append(append([]byte{IAC, SB, 44}, make([]byte, DefaultMaxSubneg-1)...), IAC, SE),
		evs: []Event{{Verb: SB, Option: 44, Data: make([]byte, DefaultMaxSubneg-1)}}},
	{name: "subneg too long", in: append(append([]byte{IAC, SB, 44}, make([]byte, DefaultMaxSubneg)...), IAC, SE), bad: true},
	{name: "subneg too long escaped", in: append(append([]byte{IAC, SB, 44}, bytes.Repeat([]byte{IAC, IAC}, DefaultMaxSubneg)...), IAC, SE), bad: true},
	{name: "empty subneg", in: []byte{IAC, SB, IAC, SE}, bad: true},
	{name: "SE outside", in: []byte{'a', IAC, SE}, data: []byte("a"), bad: true},
	{name: "command in subneg", in: []byte{IAC, SB, 44, 1, IAC, NOP, IAC, SE}, bad: true},
	{name: "non-command after IAC", in: []byte{'z', IAC, 'A'}, data: []byte("z"), bad: true},
}

func TestDecoderTable(t *testing.T) {
	for _, tc := range decodeCases {
		for _, step := range []int{0, 1, 2, 3, 7} {
			var d Decoder
			data, evs, err := decodeAll(t, &d, tc.in, step)
			if tc.bad {
				var pe *ProtocolError
				if !errors.As(err, &pe) || !errors.Is(err, ErrProtocol) {
					t.Errorf("%s/step %d: err = %v, want *ProtocolError", tc.name, step, err)
				}
				// the error is sticky
				if _, _, _, err2 := d.Decode(make([]byte, 4), []byte("more")); err2 != err {
					t.Errorf("%s: error not sticky: %v", tc.name, err2)
				}
			} else if err != nil {
				t.Errorf("%s/step %d: %v", tc.name, step, err)
			}
			if !bytes.Equal(data, tc.data) {
				t.Errorf("%s/step %d: data = % x, want % x", tc.name, step, data, tc.data)
			}
			if !tc.bad && !reflect.DeepEqual(normEvents(evs), normEvents(tc.evs)) {
				t.Errorf("%s/step %d: events = %v, want %v", tc.name, step, evs, tc.evs)
			}
		}
	}
}

func normEvents(evs []Event) []Event {
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		if len(e.Data) == 0 {
			e.Data = nil
		}
		out = append(out, e)
	}
	return out
}

func TestDecodeSmallDst(t *testing.T) {
	in := []byte{1, 2, IAC, IAC, 3, IAC, NOP, 4}
	var d Decoder
	var got []byte
	dst := make([]byte, 1)
	for len(in) > 0 {
		nd, ns, _, err := d.Decode(dst, in)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, dst[:nd]...)
		in = in[ns:]
	}
	if want := []byte{1, 2, IAC, 3, 4}; !bytes.Equal(got, want) {
		t.Fatalf("got % x want % x", got, want)
	}
}

func TestDecodeNoAllocs(t *testing.T) {
	buf := bytes.Repeat([]byte("0123456789abcdef"), 256)
	var d Decoder
	allocs := testing.AllocsPerRun(100, func() {
		n, m, _, err := d.Decode(buf, buf)
		if err != nil || n != len(buf) || m != len(buf) {
			t.Fatal(n, m, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("data path allocates %v times", allocs)
	}
	esc := make([]byte, 0, 2*len(buf))
	buf[10] = IAC
	allocs = testing.AllocsPerRun(100, func() { esc = AppendEscaped(esc[:0], buf) })
	if allocs != 0 {
		t.Fatalf("AppendEscaped allocates %v times", allocs)
	}
}

func TestAppendEscaped(t *testing.T) {
	got := AppendEscaped([]byte{9}, []byte{IAC, 1, IAC, IAC})
	if want := []byte{9, IAC, IAC, 1, IAC, IAC, IAC, IAC}; !bytes.Equal(got, want) {
		t.Fatalf("got % x", got)
	}
}

type msgCase struct {
	m     Message
	frame []byte
}

func frame(payload ...byte) []byte {
	return append(append([]byte{IAC, SB, OptComPort}, payload...), IAC, SE)
}

// messageCases covers every COM-PORT-OPTION message, both directions.
func messageCases() []msgCase {
	cases := []msgCase{
		{Message{Command: CmdSignature, Signature: "ezsim 1.0"}, frame(append([]byte{0}, "ezsim 1.0"...)...)},
		{Message{Command: CmdSignature}, frame(0)},
		{Message{Command: CmdSignature, Server: true, Signature: "x\xffy"}, frame(100, 'x', IAC, IAC, 'y')},
		{Message{Command: CmdSetBaudRate, BaudRate: 115200}, frame(1, 0, 1, 0xc2, 0)},
		{Message{Command: CmdSetBaudRate, BaudRate: 0}, frame(1, 0, 0, 0, 0)},
		{Message{Command: CmdSetBaudRate, Server: true, BaudRate: 0xff00ffff}, frame(101, IAC, IAC, 0, IAC, IAC, IAC, IAC)},
		{Message{Command: CmdSetDataSize, DataSize: 7}, frame(2, 7)},
		{Message{Command: CmdSetDataSize, DataSize: 0}, frame(2, 0)},
		{Message{Command: CmdSetDataSize, Server: true, DataSize: 8}, frame(102, 8)},
		{Message{Command: CmdSetParity, Parity: ParityEven}, frame(3, 3)},
		{Message{Command: CmdSetParity, Server: true, Parity: ParitySpace}, frame(103, 5)},
		{Message{Command: CmdSetStopSize, StopBits: StopBits15}, frame(4, 3)},
		{Message{Command: CmdSetStopSize, Server: true, StopBits: StopBits2}, frame(104, 2)},
		{Message{Command: CmdNotifyLineState}, frame(6)},
		{Message{Command: CmdNotifyLineState, Server: true, LineState: LineBreakDetect | LineDataReady}, frame(106, 0x11)},
		{Message{Command: CmdNotifyModemState}, frame(7)},
		{Message{Command: CmdNotifyModemState, Server: true, ModemState: ModemCD | ModemDeltaCD}, frame(107, 0x88)},
		{Message{Command: CmdNotifyModemState, Server: true, ModemState: 0xff}, frame(107, IAC, IAC)},
		{Message{Command: CmdFlowSuspend}, frame(8)},
		{Message{Command: CmdFlowResume}, frame(9)},
		{Message{Command: CmdFlowSuspend, Server: true}, frame(108)},
		{Message{Command: CmdFlowResume, Server: true}, frame(109)},
		{Message{Command: CmdSetLineStateMask, LineState: 0x1e}, frame(10, 0x1e)},
		{Message{Command: CmdSetLineStateMask, Server: true, LineState: 0x1e}, frame(110, 0x1e)},
		{Message{Command: CmdSetModemStateMask, ModemState: 0xff}, frame(11, IAC, IAC)},
		{Message{Command: CmdSetModemStateMask, Server: true, ModemState: 0xf0}, frame(111, 0xf0)},
		{Message{Command: CmdPurgeData, Purge: PurgeReceive}, frame(12, 1)},
		{Message{Command: CmdPurgeData, Purge: PurgeTransmit}, frame(12, 2)},
		{Message{Command: CmdPurgeData, Server: true, Purge: PurgeBoth}, frame(112, 3)},
	}
	// every SET-CONTROL value, both directions
	for v := Control(0); v <= controlMax; v++ {
		cases = append(cases,
			msgCase{Message{Command: CmdSetControl, Control: v}, frame(5, byte(v))},
			msgCase{Message{Command: CmdSetControl, Server: true, Control: v}, frame(105, byte(v))})
	}
	return cases
}

func TestMessageTable(t *testing.T) {
	for _, tc := range messageCases() {
		if got := tc.m.Encode(); !bytes.Equal(got, tc.frame) {
			t.Errorf("%v: Encode = % x, want % x", tc.m, got, tc.frame)
			continue
		}
		var d Decoder
		data, evs, err := decodeAll(t, &d, tc.frame, 1)
		if err != nil || len(data) != 0 || len(evs) != 1 || evs[0].Verb != SB || evs[0].Option != OptComPort {
			t.Errorf("%v: decode frame: %v %v %v", tc.m, data, evs, err)
			continue
		}
		m, err := DecodeMessage(evs[0].Data)
		if err != nil {
			t.Errorf("%v: DecodeMessage: %v", tc.m, err)
			continue
		}
		if m != tc.m {
			t.Errorf("DecodeMessage = %v, want %v", m, tc.m)
		}
		_ = m.String()
	}
}

var badPayloads = [][]byte{
	{},
	{13}, {99}, {113}, {255},
	{1, 0, 0, 0}, {1, 0, 0, 0, 0, 0}, {101, 0, 0, 0, 0, 0},
	{2}, {2, 4}, {2, 9}, {2, 8, 8},
	{3, 6}, {103, 6}, {4, 4}, {5, 20}, {105, 255}, {5},
	{6, 1}, {106}, {7, 0}, {107, 1, 2},
	{8, 0}, {109, 1},
	{10}, {11, 1, 1},
	{12, 0}, {12, 4}, {112},
}

func TestDecodeMessageErrors(t *testing.T) {
	for _, p := range badPayloads {
		_, err := DecodeMessage(p)
		var pe *ProtocolError
		if !errors.As(err, &pe) {
			t.Errorf("DecodeMessage(% x) = %v, want *ProtocolError", p, err)
		}
	}
	// sredird quirk: 8-byte baud rate reply
	m, err := DecodeMessage([]byte{101, 0, 0, 0x25, 0x80, 0, 0, 0, 0})
	if err != nil || m.BaudRate != 9600 || !m.Server {
		t.Errorf("sredird baud reply: %v %v", m, err)
	}
}

func FuzzDecode(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.in, uint8(3))
	}
	for _, tc := range messageCases() {
		f.Add(tc.frame, uint8(1))
	}
	for _, p := range badPayloads {
		f.Add(frame(p...), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, step uint8) {
		d := Decoder{MaxSubneg: 64}
		data, evs, err := decodeAll(t, &d, in, int(step))
		if len(data) > len(in) {
			t.Fatalf("more data out than in")
		}
		if err == nil && bytes.IndexByte(in, IAC) < 0 && !bytes.Equal(data, in) {
			t.Fatalf("data without IAC changed")
		}
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("unexpected error type %T", err)
		}
		for _, ev := range evs {
			if len(ev.Data) > 64 {
				t.Fatalf("subnegotiation of %d bytes passed the limit", len(ev.Data))
			}
			if ev.Verb != SB || ev.Option != OptComPort {
				continue
			}
			m, err := DecodeMessage(ev.Data)
			if err != nil {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("unexpected error type %T", err)
				}
				continue
			}
			// a decoded message re-encodes to one that decodes the same
			var d2 Decoder
			_, evs2, err := decodeAll(t, &d2, m.Encode(), 0)
			if err != nil || len(evs2) != 1 {
				t.Fatalf("re-encode of %v: %v %v", m, evs2, err)
			}
			m2, err := DecodeMessage(evs2[0].Data)
			if err != nil || m2 != m {
				t.Fatalf("round trip %v -> %v (%v)", m, m2, err)
			}
		}
	})
}

func FuzzEscapeRoundTrip(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.in, uint8(2))
	}
	for _, tc := range messageCases() {
		f.Add(tc.frame, uint8(1))
	}
	f.Add(bytes.Repeat([]byte{IAC}, 100), uint8(3))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		esc := AppendEscaped(nil, data)
		var d Decoder
		got, evs, err := decodeAll(t, &d, esc, int(step))
		if err != nil || len(evs) != 0 || !bytes.Equal(got, data) {
			t.Fatalf("round trip of % x: got % x, events %v, err %v", data, got, evs, err)
		}
	})
}
