package service

import (
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/internal/sdnotify"
	"github.com/vsp-dev/vsp/service/bridge"
)

func TestFDName(t *testing.T) {
	tests := []struct {
		port, role, name string
	}{
		{"plc1", fdMaster, "p.plc1.m"},
		{"a.b", fdSlave, "p.a.b.s"},
		{"x:y", fdRing, "p.x%3Ay.r"},
		{"50%", fdMaster, "p.50%25.m"},
		{"tab\there", fdMaster, "p.tab%09here.m"},
		{"café", fdSlave, "p.caf%C3%A9.s"},
	}
	for _, tc := range tests {
		got := fdName(tc.port, tc.role)
		if got != tc.name {
			t.Errorf("fdName(%q, %q) = %q, want %q", tc.port, tc.role, got, tc.name)
		}
		if !sdnotify.ValidName(got) {
			t.Errorf("fdName(%q) = %q, which systemd refuses", tc.port, got)
		}
		port, role, ok := parseFDName(got)
		if !ok || port != tc.port || role != tc.role {
			t.Errorf("parseFDName(%q) = %q, %q, %v", got, port, role, ok)
		}
	}
	for _, bad := range []string{"", "vsp.handover", "p.x", "p..m", "p.x.q", "p.%zz.m", "p.%4.m", "q.x.m"} {
		if port, role, ok := parseFDName(bad); ok {
			t.Errorf("parseFDName(%q) = %q, %q: want refused", bad, port, role)
		}
	}
}

func FuzzFDName(f *testing.F) {
	for _, s := range []string{"plc1", "a.b", "x:y", "50%", "café", "p.%41.m", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Any stored name parses without panic; a port's name round-trips.
		_, _, _ = parseFDName(s)
		if s == "" {
			return
		}
		name := fdName(s, fdMaster)
		if len(name) <= sdnotify.MaxNameLen && !sdnotify.ValidName(name) {
			t.Fatalf("fdName(%q) = %q, which systemd refuses", s, name)
		}
		port, role, ok := parseFDName(name)
		if !ok || port != s || role != fdMaster {
			t.Fatalf("round trip of %q: %q, %q, %v", s, port, role, ok)
		}
	})
}

func TestStatusLine(t *testing.T) {
	st := func(state string, running bool) PortState {
		return PortState{Running: running, Status: bridge.Status{Stats: bridge.Stats{State: state}}}
	}
	tests := []struct {
		states []PortState
		want   string
	}{
		{nil, "0 ports"},
		{[]PortState{st("up", true)}, "1 port: 1 up"},
		{[]PortState{st("up", true), st("connecting", true), st("up", true)}, "3 ports: 2 up, 1 connecting"},
		{[]PortState{st("up", true), st("", false)}, "2 ports: 1 error, 1 up"},
	}
	for _, tc := range tests {
		if got := statusLine(tc.states); got != tc.want {
			t.Errorf("statusLine = %q, want %q", got, tc.want)
		}
		if strings.Contains(statusLine(tc.states), "\n") {
			t.Error("status line has a newline")
		}
	}
}

func TestParseInherited(t *testing.T) {
	fds := []inheritedFD{{"p.plc.m", 7}, {"p.a=b.s", 12}, {"p.x%3Ay.r", 3}}
	v := formatInherited(42, fds)
	got, err := parseInherited(v, 42)
	if err != nil || len(got) != len(fds) {
		t.Fatalf("parseInherited(%q) = %v, %v", v, got, err)
	}
	for i := range fds {
		if got[i] != fds[i] {
			t.Errorf("fd %d: %+v, want %+v", i, got[i], fds[i])
		}
	}
	for _, bad := range []struct{ v, why string }{
		{"43:p.plc.m=7", "another pid"},
		{"x:p.plc.m=7", "bad pid"},
		{"42:p.plc.m", "no fd"},
		{"42:=7", "no name"},
		{"42:p.plc.m=1", "stdio fd"},
		{"42:p.plc.m=z", "bad fd"},
	} {
		if _, err := parseInherited(bad.v, 42); err == nil {
			t.Errorf("parseInherited(%q) accepted (%s)", bad.v, bad.why)
		}
	}
	if got, err := parseInherited("42", 42); err != nil || len(got) != 0 {
		t.Errorf("no files: %v, %v", got, err)
	}
}

func FuzzParseInherited(f *testing.F) {
	f.Add("42:p.plc.m=7:p.plc.s=8")
	f.Add("42:p.a=b.s=12")
	f.Add("43:x")
	f.Fuzz(func(t *testing.T, v string) {
		fds, err := parseInherited(v, 42)
		if err != nil {
			return
		}
		again, err := parseInherited(formatInherited(42, fds), 42)
		if err != nil || len(again) != len(fds) {
			t.Fatalf("round trip of %q: %v, %v", v, again, err)
		}
	})
}
