//go:build linux

package pty

import (
	"testing"

	"golang.org/x/sys/unix"
)

var settingsCases = []struct {
	s   Settings
	str string
}{
	{Settings{Baud: 9600, DataBits: 8, StopBits: 1, Raw: true}, "9600 8N1"},
	{Settings{Baud: 57600, DataBits: 8, StopBits: 2, RTSCTS: true, Raw: true}, "57600 8N2 rtscts"},
	{Settings{Baud: 250000, DataBits: 7, Parity: ParityEven, StopBits: 1, XONXOFF: true, Raw: true}, "250000 7E1 xonxoff"},
	{Settings{Baud: 115200, DataBits: 5, Parity: ParityOdd, StopBits: 2}, "115200 5O2 cooked"},
	{Settings{Baud: 300, DataBits: 6, Parity: ParityMark, StopBits: 1, Raw: true}, "300 6M1"},
	{Settings{Baud: 31250, DataBits: 8, Parity: ParitySpace, StopBits: 1, RTSCTS: true, XONXOFF: true, Raw: true}, "31250 8S1 rtscts xonxoff"},
	{Settings{Baud: 0, DataBits: 8, StopBits: 1, Raw: true}, "0 8N1"},
	{Settings{Baud: 4000000, DataBits: 8, StopBits: 1, Raw: true}, "4000000 8N1"},
}

func TestSettingsRoundTrip(t *testing.T) {
	for _, tc := range settingsCases {
		var tio unix.Termios
		applySettings(&tio, tc.s)
		if got := settingsFromTermios(&tio); got != tc.s {
			t.Errorf("round trip %v: got %v", tc.s, got)
		}
		if got := tc.s.String(); got != tc.str {
			t.Errorf("String() = %q, want %q", got, tc.str)
		}
	}
}

func TestOutputSpeedCodes(t *testing.T) {
	for _, b := range baudRates {
		// Ospeed deliberately wrong: a standard code wins.
		tio := unix.Termios{Cflag: b.code, Ospeed: 12345}
		if got := outputSpeed(&tio); got != b.rate {
			t.Errorf("code %#x: got %d, want %d", b.code, got, b.rate)
		}
	}
	tio := unix.Termios{Cflag: unix.BOTHER, Ospeed: 250000}
	if got := outputSpeed(&tio); got != 250000 {
		t.Errorf("BOTHER: got %d", got)
	}
}

func TestDecodePacket(t *testing.T) {
	tests := []struct {
		c    byte
		want packet
	}{
		{unix.TIOCPKT_FLUSHREAD, packet{flushRead: true}},
		{unix.TIOCPKT_FLUSHWRITE, packet{flushWrite: true}},
		{unix.TIOCPKT_STOP, packet{stop: true}},
		{unix.TIOCPKT_START, packet{start: true}},
		{unix.TIOCPKT_NOSTOP, packet{reread: true}},
		{unix.TIOCPKT_DOSTOP, packet{reread: true}},
		{unix.TIOCPKT_IOCTL, packet{reread: true}},
		{unix.TIOCPKT_IOCTL | unix.TIOCPKT_FLUSHREAD | unix.TIOCPKT_FLUSHWRITE, packet{flushRead: true, flushWrite: true, reread: true}},
		{0x80, packet{}},
	}
	for _, tt := range tests {
		if got := decodePacket(tt.c); got != tt.want {
			t.Errorf("decodePacket(%#x) = %+v, want %+v", tt.c, got, tt.want)
		}
	}
}

func FuzzPacket(f *testing.F) {
	for _, c := range []byte{0, 1, 2, 4, 8, 16, 32, 64, 0x43, 0xff} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c byte) {
		p := decodePacket(c)
		any := p.flushRead || p.flushWrite || p.stop || p.start || p.reread
		if known := c&0x7f != 0; any != known {
			t.Fatalf("decodePacket(%#x) = %+v", c, p)
		}
	})
}

func FuzzSettings(f *testing.F) {
	for _, tc := range settingsCases {
		var tio unix.Termios
		applySettings(&tio, tc.s)
		f.Add(tio.Iflag, tio.Cflag, tio.Lflag, tio.Ospeed)
	}
	f.Fuzz(func(t *testing.T, iflag, cflag, lflag, ospeed uint32) {
		tio := unix.Termios{Iflag: iflag, Cflag: cflag, Lflag: lflag, Ispeed: ospeed, Ospeed: ospeed}
		s := settingsFromTermios(&tio)
		if s.DataBits < 5 || s.DataBits > 8 || (s.StopBits != 1 && s.StopBits != 2) || s.Parity > ParitySpace {
			t.Fatalf("impossible settings %+v from %+v", s, tio)
		}
		if s.String() == "" {
			t.Fatal("empty String")
		}
		// Encoding the decoded settings and decoding again is stable.
		var back unix.Termios
		applySettings(&back, s)
		if got := settingsFromTermios(&back); got != s {
			t.Fatalf("not stable: %+v -> %+v", s, got)
		}
	})
}
