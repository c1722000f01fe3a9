//go:build linux

package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/rfc2217"
)

// TestSettings runs the settings scenario at reduced size on the built vsp:
// every baud change reaches the far end as exactly one SET-BAUDRATE, in
// both modes, and every ordered write is accounted for. Speed and order
// are the bench's figures, not asserted here.
func TestSettings(t *testing.T) {
	bin := testBinaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var progress bytes.Buffer
	const changes, orders = 20, 10
	res, err := runSettings(ctx, bin.vsp, "this build", changes, orders, t.TempDir(), &progress)
	t.Log(progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(settingsModes) {
		t.Fatalf("%d modes measured, want %d", len(res), len(settingsModes))
	}
	for i, r := range res {
		if r.mode != settingsModes[i].name || r.build != "this build" {
			t.Errorf("result %d is %q/%q", i, r.build, r.mode)
		}
		if len(r.lat) != changes || r.orders != orders || r.extra != 0 {
			t.Errorf("%s: %d changes timed (want %d), %d ordered writes (want %d), %d extra commands", r.mode, len(r.lat), changes, r.orders, orders, r.extra)
		}
		for _, d := range r.lat {
			if d <= 0 {
				t.Errorf("%s: latency %v", r.mode, d)
			}
		}
	}
	rep := &report{opts: options{settings: changes, settingsOrder: orders, settingsRuns: 1}, settings: res}
	for _, want := range []string{"| this build | raw | 20 |", "| this build | canonical | 20 |"} {
		if s := rep.settingsFigures(); !strings.Contains(s, want) {
			t.Errorf("settings figures lack %q:\n%s", want, s)
		}
	}
}

// TestSettingsFarEnd: the far end places each SET-BAUDRATE exactly among
// the data bytes (escaped IAC bytes count once), whether the command
// arrives in the same segment as the data around it or on its own.
func TestSettingsFarEnd(t *testing.T) {
	cmd := func(baud uint32) []byte {
		return rfc2217.Message{Command: rfc2217.CmdSetBaudRate, BaudRate: baud}.Encode()
	}
	cat := func(ps ...[]byte) []byte { return bytes.Join(ps, nil) }
	tests := []struct {
		name   string
		writes [][]byte
		after  [][2]int // data bytes and commands decoded once each write has arrived
		data   []byte
		offs   []int
	}{
		{"one segment", [][]byte{cat([]byte("abc"), cmd(19200), []byte("de"))}, [][2]int{{5, 1}}, []byte("abcde"), []int{3}},
		{"separate writes", [][]byte{[]byte("ab"), cmd(19200), []byte("cde"), cmd(38400)}, [][2]int{{2, 0}, {2, 1}, {5, 1}, {5, 2}}, []byte("abcde"), []int{2, 5}},
		{"escaped IAC", [][]byte{{'x', rfc2217.IAC, rfc2217.IAC}, cmd(19200), {'y'}}, [][2]int{{2, 0}, {2, 1}, {3, 1}}, []byte{'x', 0xff, 'y'}, []int{2}},
		{"split command", [][]byte{cat([]byte("a"), cmd(19200)[:4]), cat(cmd(19200)[4:], []byte("b"))}, [][2]int{{1, 0}, {2, 1}}, []byte("ab"), []int{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fe, err := startSettingsFarEnd()
			if err != nil {
				t.Fatal(err)
			}
			defer fe.close()
			c, err := net.Dial("tcp", fe.addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for i, w := range tc.writes {
				if _, err := c.Write(w); err != nil {
					t.Fatal(err)
				}
				// Each write arrives on its own (a command split over two
				// reads, data and command in separate reads).
				testenv.Eventually(t, 10*time.Second, "the write at the far end", func() bool {
					n, k := fe.state()
					return n >= tc.after[i][0] && k >= tc.after[i][1]
				})
			}
			deadline := time.Now().Add(10 * time.Second)
			last := uint32(19200)
			if len(tc.offs) == 2 {
				last = 38400
			}
			if _, err := fe.waitBaud(len(tc.offs)-1, last, len(tc.data), deadline); err != nil {
				t.Fatal(err)
			}
			if got := fe.dataAt(0, 1<<20); !bytes.Equal(got, tc.data) {
				t.Errorf("data %q, want %q", got, tc.data)
			}
			fe.mu.Lock()
			defer fe.mu.Unlock()
			if len(fe.cmds) != len(tc.offs) {
				t.Fatalf("%d commands recorded, want %d", len(fe.cmds), len(tc.offs))
			}
			for i, off := range tc.offs {
				if fe.cmds[i].off != off {
					t.Errorf("command %d after %d data bytes, want %d", i, fe.cmds[i].off, off)
				}
			}
			if fe.err != nil {
				t.Error(fe.err)
			}
		})
	}
}
