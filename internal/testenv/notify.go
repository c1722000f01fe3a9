//go:build linux

package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Notification is one datagram a service sent to a NotifySocket: its
// VAR=value lines and the files attached to it (SCM_RIGHTS).
type Notification struct {
	Text  string
	Files []*os.File
}

// Var returns the value of VAR in the notification, and whether it is set.
func (m Notification) Var(name string) (string, bool) {
	for _, l := range strings.Split(m.Text, "\n") {
		if v, ok := strings.CutPrefix(l, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// NotifySocket plays systemd's side of sd_notify: a unixgram socket that
// collects notifications, with their files, for the test to wait on.
type NotifySocket struct {
	t    testing.TB
	Path string // for NOTIFY_SOCKET
	conn *net.UnixConn

	mu   sync.Mutex
	msgs []Notification
	grow chan struct{}
	done chan struct{}
}

// NewNotifySocket listens on a socket in a temporary directory, or in the
// abstract namespace when abstract is set (Path then starts with '@', as
// systemd names it). The test's cleanup closes it and every file received.
func NewNotifySocket(t testing.TB, abstract bool) *NotifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	if abstract {
		path = "@vsp-test-notify-" + filepath.Base(filepath.Dir(path))
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &NotifySocket{t: t, Path: path, conn: conn, grow: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	t.Cleanup(func() {
		conn.Close()
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.msgs {
			for _, f := range m.Files {
				f.Close()
			}
		}
	})
	return s
}

func (s *NotifySocket) run() {
	defer close(s.done)
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(253*4))
	for {
		n, oobn, _, _, err := s.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		m := Notification{Text: string(buf[:n])}
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err == nil {
			for _, c := range cmsgs {
				fds, err := unix.ParseUnixRights(&c)
				if err != nil {
					continue
				}
				for _, fd := range fds {
					unix.CloseOnExec(fd)
					m.Files = append(m.Files, os.NewFile(uintptr(fd), "notify-fd"))
				}
			}
		}
		if _, ok := m.Var("BARRIER"); ok {
			// As systemd does: closing the fd answers the barrier.
			for _, f := range m.Files {
				f.Close()
			}
			m.Files = nil
		}
		s.mu.Lock()
		s.msgs = append(s.msgs, m)
		close(s.grow)
		s.grow = make(chan struct{})
		s.mu.Unlock()
	}
}

// Count returns how many notifications arrived so far.
func (s *NotifySocket) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.msgs)
}

// Since returns the notifications from index from on.
func (s *NotifySocket) Since(from int) []Notification {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Notification(nil), s.msgs[min(from, len(s.msgs)):]...)
}

// Wait returns the first notification at index from or later that match
// accepts, and its index; it fails the test after timeout.
func (s *NotifySocket) Wait(from int, timeout time.Duration, what string, match func(Notification) bool) (Notification, int) {
	s.t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		for i := from; i < len(s.msgs); i++ {
			if match(s.msgs[i]) {
				m := s.msgs[i]
				s.mu.Unlock()
				return m, i
			}
		}
		from = len(s.msgs)
		grow := s.grow
		s.mu.Unlock()
		select {
		case <-grow:
		case <-deadline:
			s.t.Fatalf("no notification %s within %v; got:\n%s", what, timeout, s.dump())
		}
	}
}

// WaitVar waits for a notification setting name to value.
func (s *NotifySocket) WaitVar(from int, timeout time.Duration, name, value string) (Notification, int) {
	s.t.Helper()
	return s.Wait(from, timeout, name+"="+value, func(m Notification) bool {
		v, ok := m.Var(name)
		return ok && v == value
	})
}

func (s *NotifySocket) dump() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	for i, m := range s.msgs {
		b.WriteString(strings.ReplaceAll(m.Text, "\n", `\n`))
		if len(m.Files) > 0 {
			b.WriteString(" +fds")
		}
		if i < len(s.msgs)-1 {
			b.WriteByte('\n')
		}
	}
	return b.String()
}
