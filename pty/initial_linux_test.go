//go:build linux

package pty

import "testing"

// Config.Initial sets the power-on speed, stop bits and flow control; the
// frame stays 8N and the port raw.
func TestInitialSettings(t *testing.T) {
	for _, tc := range []struct {
		name string
		init Settings
		want string
	}{
		{"default", Settings{}, "9600 8N1"},
		{"device line", Settings{Baud: 115200, StopBits: 2, RTSCTS: true}, "115200 8N2 rtscts"},
		{"custom speed, xon/xoff", Settings{Baud: 250000, StopBits: 1, XONXOFF: true}, "250000 8N1 xonxoff"},
		{"parity and size ignored", Settings{Baud: 19200, DataBits: 7, Parity: ParityEven}, "19200 8N1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Open(Config{Initial: tc.init, PollInterval: -1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			s, err := p.Settings()
			if err != nil {
				t.Fatal(err)
			}
			if got := s.String(); got != tc.want {
				t.Errorf("settings %q, want %q", got, tc.want)
			}
		})
	}
}
