//go:build linux

package pty

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// orderLog records, in the goroutine calling Read, the data Read returns
// and the settings handler's calls, as one sequence: data as is, a call
// as "<baud>".
type orderLog struct {
	mu  sync.Mutex
	seq strings.Builder
	n   int // handler calls
}

func (l *orderLog) handler(s Settings) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	l.seq.WriteString("<" + s.String() + ">")
}

func (l *orderLog) data(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq.Write(b)
}

func (l *orderLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.seq.String()
}

func (l *orderLog) calls() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// readInto reads p until it closes, logging data into l.
func readInto(t testing.TB, p *Port, l *orderLog, size int) {
	t.Helper()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := make([]byte, size)
		for {
			n, err := p.Read(b)
			if err != nil {
				if !errors.Is(err, os.ErrClosed) {
					t.Errorf("read: %v", err)
				}
				return
			}
			l.data(b[:n])
		}
	}()
	t.Cleanup(func() { p.Close(); wg.Wait() })
}

func setBaud(tio *unix.Termios, rate uint32) { setSpeed(tio, rate) }

// TestSettingsHandlerWakesIdleRead: a change while Read waits with nothing
// to read reaches the handler at once (Read is woken), and the caller's
// read deadline still applies afterwards.
func TestSettingsHandlerWakesIdleRead(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	var l orderLog
	p.SetSettingsHandler(l.handler)
	a := openApp(t, p.Name())
	for i, rate := range []uint32{19200, 57600, 115200} {
		a.modify(t, func(tio *unix.Termios) { setBaud(tio, rate) })
		// Read with a long deadline: it must come back with the
		// application's byte written after the handler ran, not time out.
		done := make(chan error, 1)
		go func() {
			b := make([]byte, 16)
			p.SetReadDeadline(time.Now().Add(waitTimeout))
			n, err := p.Read(b)
			if err == nil {
				l.data(b[:n])
			}
			done <- err
		}()
		testenv.Eventually(t, waitTimeout, "handler call", func() bool { return l.calls() == i+1 })
		if _, err := a.f.Write([]byte{'a' + byte(i)}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got, want := l.String(), "<19200 8N1>a<57600 8N1>b<115200 8N1>c"; got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
	// A wake-up never passes for the caller's deadline, and the caller's
	// deadline still expires.
	p.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	a.modify(t, func(tio *unix.Termios) { setBaud(tio, 9600) })
	_, err := p.Read(make([]byte, 16))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v", err)
	}
	if l.calls() != 4 {
		t.Fatalf("%d handler calls, want 4", l.calls())
	}
}

// TestSettingsHandlerOrder: bytes queued on the master when a change is
// seen are returned before the handler call, bytes written after it
// after, whatever the read size; three changes with data between them.
func TestSettingsHandlerOrder(t *testing.T) {
	for _, size := range []int{1, 3, 256} {
		p := openPort(t, Config{PollInterval: -1})
		var l orderLog
		p.SetSettingsHandler(l.handler)
		a := openApp(t, p.Name())
		var want strings.Builder
		var queued int64
		for i, rate := range []uint32{19200, 57600, 38400} {
			chunk := strings.Repeat(string(rune('a'+i)), 5+i)
			if _, err := a.f.Write([]byte(chunk)); err != nil {
				t.Fatal(err)
			}
			// Wait until the kernel has the bytes on the master's queue
			// (its flip buffer work is asynchronous), then change.
			queued += int64(len(chunk))
			testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return p.masterQueued() == queued })
			a.modify(t, func(tio *unix.Termios) { setBaud(tio, rate) })
			waitEvent(t, p, SettingsChanged, nil)
			want.WriteString(chunk + "<" + Settings{Baud: rate, DataBits: 8, StopBits: 1, Raw: true}.String() + ">")
		}
		if _, err := a.f.Write([]byte("z")); err != nil {
			t.Fatal(err)
		}
		want.WriteString("z")
		readInto(t, p, &l, size)
		testenv.Eventually(t, waitTimeout, "all data", func() bool { return strings.HasSuffix(l.String(), "z") })
		if got := l.String(); got != want.String() {
			t.Fatalf("read size %d: sequence %q, want %q", size, got, want.String())
		}
	}
}
