//go:build linux

package service

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/sdnotify"
	"github.com/vsp-dev/vsp/internal/testenv"
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

// TestDaemonUnderSystemd runs the daemon in this process with a
// notification socket the test owns: READY=1, STATUS=, WATCHDOG=1 beats,
// each port's fds stored, replaced when a restart gives the port a new
// tty, removed when its file goes, and a handover (STOPPING=1, the mark,
// the link kept) when the daemon ends.
func TestDaemonUnderSystemd(t *testing.T) {
	ns := testenv.NewNotifySocket(t, false)
	t.Setenv("NOTIFY_SOCKET", ns.Path)
	t.Setenv("FDSTORE", "16")
	t.Setenv("WATCHDOG_USEC", "200000")
	dev := testenv.NewDevice(t)
	dir, linkDir := t.TempDir(), t.TempDir()
	d, stop := runDaemon(t, dir, linkDir)
	ns.WaitVar(0, 10*time.Second, "READY", "1")
	body := func(link string) string {
		return fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, dev.Addr())
	}
	status := func(from int, want string) int {
		t.Helper()
		_, i := ns.Wait(from, 10*time.Second, "STATUS="+want, func(m testenv.Notification) bool {
			v, _ := m.Var("STATUS")
			return v == want
		})
		return i
	}
	writePortFile(t, dir, "a", body("ttyA"))
	m, _ := ns.WaitVar(0, 10*time.Second, "FDNAME", "p.a.m")
	if v, _ := m.Var("FDSTORE"); v != "1" || len(m.Files) != 1 {
		t.Fatalf("master stored as %q with %d files", m.Text, len(m.Files))
	}
	ns.WaitVar(0, 10*time.Second, "FDNAME", "p.a.s")
	i := status(0, "1 port: 1 up")
	_, i = ns.WaitVar(i, 5*time.Second, "WATCHDOG", "1")
	ns.WaitVar(i+1, 5*time.Second, "WATCHDOG", "1")

	// A new link means a new tty: the old fds leave the store, the new come.
	from := ns.Count()
	writePortFile(t, dir, "a", body("ttyA2"))
	_, i = ns.Wait(from, 10*time.Second, "FDSTOREREMOVE of p.a.m", func(m testenv.Notification) bool {
		v, _ := m.Var("FDSTOREREMOVE")
		n, _ := m.Var("FDNAME")
		return v == "1" && n == "p.a.m"
	})
	m, _ = ns.Wait(i, 10*time.Second, "FDSTORE of the new p.a.m", func(m testenv.Notification) bool {
		v, _ := m.Var("FDSTORE")
		n, _ := m.Var("FDNAME")
		return v == "1" && n == "p.a.m"
	})
	if len(m.Files) != 1 {
		t.Fatalf("new master stored with %d files", len(m.Files))
	}

	// Deleting the file takes its fds out of the store.
	from = ns.Count()
	if err := os.Remove(filepath.Join(dir, "a.toml")); err != nil {
		t.Fatal(err)
	}
	ns.WaitVar(from, 10*time.Second, "FDSTOREREMOVE", "1")
	status(from, "0 ports")

	// Ending the daemon hands the ports over: the link stays.
	writePortFile(t, dir, "b", body("ttyB"))
	waitDaemon(t, d, "b running", func(m map[string]PortState) bool { return m["b"].Running })
	from = ns.Count()
	stop()
	ns.WaitVar(from, time.Second, "STOPPING", "1")
	ns.WaitVar(from, time.Second, "FDNAME", fdHandover)
	if _, err := os.Readlink(filepath.Join(linkDir, "ttyB")); err != nil {
		t.Fatalf("the link went at the handover: %v", err)
	}
}
