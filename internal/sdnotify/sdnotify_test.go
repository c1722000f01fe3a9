//go:build linux

package sdnotify

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

func TestNotifications(t *testing.T) {
	for _, abstract := range []bool{false, true} {
		name := "path"
		if abstract {
			name = "abstract"
		}
		t.Run(name, func(t *testing.T) {
			s := testenv.NewNotifySocket(t, abstract)
			t.Setenv("NOTIFY_SOCKET", s.Path)
			n := New()
			if !n.Enabled() {
				t.Fatal("not enabled with NOTIFY_SOCKET set")
			}
			tests := []struct {
				send func() error
				want string
			}{
				{func() error { return n.Ready("2 ports:\n2 up") }, "READY=1\nSTATUS=2 ports: 2 up"},
				{func() error { return n.Status("1 port") }, "STATUS=1 port"},
				{n.Watchdog, "WATCHDOG=1"},
				{func() error { return n.Reloading("again") }, "RELOADING=1\nSTATUS=again"},
				{func() error { return n.Remove("p.a.m") }, "FDSTOREREMOVE=1\nFDNAME=p.a.m"},
				{func() error { return n.Stopping("bye") }, "STOPPING=1\nSTATUS=bye"},
			}
			for i, tc := range tests {
				if err := tc.send(); err != nil {
					t.Fatal(err)
				}
				m, _ := s.Wait(i, 5*time.Second, tc.want, func(testenv.Notification) bool { return true })
				if m.Text != tc.want {
					t.Errorf("sent %q, want %q", m.Text, tc.want)
				}
			}
		})
	}
}

// TestStore sends both ends of a pipe into the store and proves the files
// that arrive are the same pipe.
func TestStore(t *testing.T) {
	s := testenv.NewNotifySocket(t, false)
	t.Setenv("NOTIFY_SOCKET", s.Path)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := New().Store("p.x.m", r, w); err != nil {
		t.Fatal(err)
	}
	m, _ := s.WaitVar(0, 5*time.Second, "FDSTORE", "1")
	if v, _ := m.Var("FDNAME"); v != "p.x.m" || len(m.Files) != 2 {
		t.Fatalf("got %q with %d files", m.Text, len(m.Files))
	}
	if _, err := m.Files[1].Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("read %q, %v through the stored write end", buf, err)
	}
	// The sender's files stay open and usable.
	if _, err := w.Write([]byte("!")); err != nil {
		t.Fatal(err)
	}
}

func TestBarrier(t *testing.T) {
	s := testenv.NewNotifySocket(t, false)
	t.Setenv("NOTIFY_SOCKET", s.Path)
	if err := New().Barrier(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	s.WaitVar(0, time.Second, "BARRIER", "1")
}

// TestBarrierTimeout: a manager that never answers makes Barrier give up.
func TestBarrierTimeout(t *testing.T) {
	// A socket nobody reads: the datagram waits in its queue, and the
	// pipe's write end with it.
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	start := time.Now()
	err = New().Barrier(200 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

func TestDisabled(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := New()
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, err := range []error{n.Ready("x"), n.Status("x"), n.Watchdog(), n.Store("a", r), n.Remove("a"), n.Barrier(time.Second)} {
		if err != nil {
			t.Errorf("no-op returned %v", err)
		}
	}
	if d := n.WatchdogInterval(); d != 0 {
		t.Errorf("watchdog %v without a manager", d)
	}
	var nilN *Notifier
	if nilN.Enabled() || nilN.Notify("X=1") != nil {
		t.Error("a nil Notifier is not a no-op")
	}
}

func TestWatchdogInterval(t *testing.T) {
	s := testenv.NewNotifySocket(t, false)
	t.Setenv("NOTIFY_SOCKET", s.Path)
	t.Setenv("WATCHDOG_USEC", "3000000")
	t.Setenv("WATCHDOG_PID", "")
	if d := New().WatchdogInterval(); d != 3*time.Second {
		t.Fatalf("interval %v, want 3s", d)
	}
	t.Setenv("WATCHDOG_PID", "1") // another process's watchdog
	if d := New().WatchdogInterval(); d != 0 {
		t.Fatalf("interval %v for another pid's watchdog", d)
	}
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"p.ttyVSP0.m", true},
		{"with space", true},
		{"", false},
		{"a:b", false},
		{"a\nb", false},
		{"caf\xc3\xa9", false},
		{strings.Repeat("x", MaxNameLen), true},
		{strings.Repeat("x", MaxNameLen+1), false},
	}
	for _, tc := range tests {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
	if err := New().Store("a:b"); err == nil {
		t.Error("Store accepted a bad name")
	}
}

func TestStoreMax(t *testing.T) {
	tests := []struct {
		env string
		set bool
		n   int
		ok  bool
	}{
		{"", false, 0, false},
		{"128", true, 128, true},
		{"0", true, 0, true},
		{"x", true, 0, false},
	}
	for _, tc := range tests {
		if tc.set {
			t.Setenv("FDSTORE", tc.env)
		} else {
			t.Setenv("FDSTORE", "")
			os.Unsetenv("FDSTORE")
		}
		if n, ok := StoreMax(); n != tc.n || ok != tc.ok {
			t.Errorf("FDSTORE=%q: %d, %v; want %d, %v", tc.env, n, ok, tc.n, tc.ok)
		}
	}
}
