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
	t.Cleanup(readPort(t, p, size, l.data))
}

// TestSettingsHandlerWakesIdleRead: a change while Read waits with nothing
// to read reaches the handler at once (Read is woken), and the caller's
// read deadline still applies afterwards.
func TestSettingsHandlerWakesIdleRead(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	var l orderLog
	p.SetSettingsHandler(l.handler)
	a := openApp(t, p.Name())
	for i, rate := range []uint32{19200, 57600, 115200} {
		a.modify(t, func(tio *unix.Termios) { setSpeed(tio, rate) })
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
	a.modify(t, func(tio *unix.Termios) { setSpeed(tio, 9600) })
	_, err := p.Read(make([]byte, 16))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read after the deadline: %v", err)
	}
	if l.calls() != 4 {
		t.Fatalf("%d handler calls, want 4", l.calls())
	}
}

// TestSettingsHandlerSetLate: changes the application made before the
// handler was set (it opened the port and set its speed at once, as the
// bridge's port start can lag) reach the handler when it is set: one
// call with the latest settings, then the later changes in order with
// the data.
func TestSettingsHandlerSetLate(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	var l orderLog
	readInto(t, p, &l, 256)
	a := openApp(t, p.Name())
	for _, rate := range []uint32{19200, 57600} {
		a.modify(t, func(tio *unix.Termios) { setSpeed(tio, rate) })
		waitEvent(t, p, SettingsChanged, func(e Event) bool { return e.Settings.Baud == rate })
	}
	p.SetSettingsHandler(l.handler)
	testenv.Eventually(t, waitTimeout, "the missed changes passed on", func() bool { return l.calls() == 1 })
	if _, err := a.f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, "the byte read", func() bool { return strings.HasSuffix(l.String(), "x") })
	a.modify(t, func(tio *unix.Termios) { setSpeed(tio, 115200) })
	testenv.Eventually(t, waitTimeout, "the next change", func() bool { return l.calls() == 2 })
	if got, want := l.String(), "<57600 8N1>x<115200 8N1>"; got != want {
		t.Fatalf("sequence %q, want %q", got, want)
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
			testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return inq(t, p) == queued })
			a.modify(t, func(tio *unix.Termios) { setSpeed(tio, rate) })
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

// inq is the master's TIOCINQ, status byte pending or not (masterQueued
// refuses to count while one is).
func inq(t testing.TB, p *Port) int64 {
	var n int
	must(t, p.masterCtl(func(fd int) (err error) {
		n, err = unix.IoctlGetInt(fd, unix.TIOCINQ)
		return err
	}))
	return int64(n)
}

// A change seen while Read is inside a read(2), behind a change already
// measured, is measured by Read's next call, not only once the change in
// front of it has had its handler call: bytes written after that are
// returned after both calls. The watchers' side is driven directly (queue,
// with rdSeq as Read sets it), so the interleaving is exact.
func TestSettingsMeasuredBehindAnother(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	var l orderLog
	p.SetSettingsHandler(l.handler)
	a := openApp(t, p.Name())
	read := func() {
		b := make([]byte, 1)
		n, err := p.Read(b)
		must(t, err)
		l.data(b[:n])
	}
	if _, err := a.f.Write([]byte("aaaaa")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return inq(t, p) == 5 })
	p.queue(pendingChange{kind: SettingsChanged, s: Settings{Baud: 1200}, target: -1}, true) // measured: after aaaaa
	p.rdSeq.Add(1)                                                                           // Read inside a read(2)
	p.queue(pendingChange{kind: SettingsChanged, s: Settings{Baud: 2400}, target: -1}, true) // left to Read
	p.rdSeq.Add(1)
	read() // measures the second change too: after aaaaa
	if _, err := a.f.Write([]byte("bbbbb")); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitTimeout, "bytes queued", func() bool { return inq(t, p) == 9 })
	for range 9 {
		read()
	}
	want := "aaaaa<" + Settings{Baud: 1200}.String() + "><" + Settings{Baud: 2400}.String() + ">bbbbb"
	if got := l.String(); got != want {
		t.Fatalf("sequence %q, want %q", got, want)
	}
}

// A full queue merges settings changes (the newest survives) and never
// drops a flush.
func TestPendingQueueKeepsFlushes(t *testing.T) {
	p := openPort(t, Config{PollInterval: -1})
	p.queue(pendingChange{kind: FlushRead, target: 0}, false)
	for i := range 3 * maxPending {
		p.queue(pendingChange{kind: SettingsChanged, s: Settings{Baud: uint32(i + 1)}, target: 0}, false)
	}
	p.queue(pendingChange{kind: FlushWrite, target: 0}, false)
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if len(p.pend) > maxPending+1 {
		t.Errorf("%d pending, bound %d", len(p.pend), maxPending)
	}
	if p.pend[0].kind != FlushRead || p.pend[len(p.pend)-1].kind != FlushWrite {
		t.Errorf("a flush was dropped: first %v, last %v", p.pend[0].kind, p.pend[len(p.pend)-1].kind)
	}
	if s := p.pend[len(p.pend)-2].s.Baud; s != 3*maxPending {
		t.Errorf("the newest settings change was dropped: last kept %d", s)
	}
}
