package logging

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

func TestDedup(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	d := NewDedup(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}), time.Minute)
	d.now = func() time.Time { return now }
	log := slog.New(d).With("port", "p1")
	steps := []struct {
		advance time.Duration
		log     func()
		want    string // the line written, "" for none
	}{
		{0, func() { log.Warn("link down", "err", "refused") }, `level=WARN msg="link down" port=p1 err=refused`},
		{time.Second, func() { log.Warn("link down", "err", "refused") }, ""},
		{time.Second, func() { log.Warn("link down", "err", "refused") }, ""},
		{time.Second, func() { log.Warn("link down", "err", "timeout") }, `level=WARN msg="link down" port=p1 err=timeout`},
		{time.Second, func() { log.Info("link up") }, `level=INFO msg="link up" port=p1`},
		{time.Second, func() { log.Info("link up") }, `level=INFO msg="link up" port=p1`},
		{time.Minute, func() { log.Warn("link down", "err", "refused") }, `level=WARN msg="link down" port=p1 err=refused repeated=2 in=1m5s`},
		{time.Second, func() { log.Warn("link down", "err", "refused") }, ""},
		{0, func() { log.With("port", "p2").Warn("link down", "err", "refused") }, `level=WARN msg="link down" port=p1 port=p2 err=refused`},
		// A reset at each dial differs only in the ephemeral local port;
		// another local address is another warning.
		{0, func() {
			log.Warn("link down", "err", "read tcp 127.0.0.1:58572->127.0.0.1:45503: read: connection reset by peer")
		},
			`level=WARN msg="link down" port=p1 err="read tcp 127.0.0.1:58572->127.0.0.1:45503: read: connection reset by peer"`},
		{time.Second, func() {
			log.Warn("link down", "err", "read tcp 127.0.0.1:58586->127.0.0.1:45503: read: connection reset by peer")
		}, ""},
		{0, func() {
			log.Warn("link down", "err", "read tcp 127.0.0.2:58586->127.0.0.1:45504: read: connection reset by peer")
		},
			`level=WARN msg="link down" port=p1 err="read tcp 127.0.0.2:58586->127.0.0.1:45504: read: connection reset by peer"`},
	}
	for i, s := range steps {
		buf.Reset()
		now = now.Add(s.advance)
		s.log()
		if got := strings.TrimSpace(buf.String()); got != s.want {
			t.Errorf("step %d: wrote %q, want %q", i, got, s.want)
		}
	}
}

func TestDedupText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"err=\"read tcp 127.0.0.1:58572->127.0.0.1:45503: read: connection reset by peer\"",
			"err=\"read tcp 127.0.0.1:*->127.0.0.1:*: read: connection reset by peer\""},
		{"write tcp4 10.0.0.2:40000->10.0.0.9:8443: broken pipe", "write tcp4 10.0.0.2:*->10.0.0.9:*: broken pipe"},
		{"read tcp [::1]:41234->[::1]:23: i/o timeout", "read tcp [::1]:*->[::1]:*: i/o timeout"},
		{"read tcp [fe80::1%eth0]:7000->[fe80::2%eth0]:51234: reset", "read tcp [fe80::1%eth0]:*->[fe80::2%eth0]:*: reset"},
		{"read udp 0.0.0.0:5000->192.0.2.1:5001: refused", "read udp 0.0.0.0:*->192.0.2.1:*: refused"},
		// Listen mode: the device dialled; its port is the ephemeral one.
		{"read tcp 10.0.0.1:7000->10.0.0.5:51234: connection reset by peer", "read tcp 10.0.0.1:*->10.0.0.5:*: connection reset by peer"},
		// No connection yet: the device's address, port included, counts.
		{"dial tcp 127.0.0.1:45503: connect: connection refused", "dial tcp 127.0.0.1:45503: connect: connection refused"},
		{"baud 115200 -> 9600", "baud 115200 -> 9600"},
	} {
		if got := dedupText(c.in); got != c.want {
			t.Errorf("dedupText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDedupDebugPassesAll(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(NewDedup(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), time.Minute))
	for range 3 {
		log.Warn("same")
	}
	if n := strings.Count(buf.String(), "msg=same"); n != 3 {
		t.Errorf("at debug level %d of 3 lines written", n)
	}
}

func TestJournalPrefix(t *testing.T) {
	var buf bytes.Buffer
	h := Journal(&buf, func(w io.Writer) slog.Handler {
		return slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})
	})
	log := slog.New(h).With("port", "p1")
	log.Debug("d")
	log.Info("i")
	log.Warn("w")
	log.Error("e")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i, want := range []string{"<7>", "<6>", "<4>", "<3>"} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], want+"time=") || !strings.Contains(lines[i], "port=p1") {
			t.Errorf("line %d: want prefix %s: %q", i, want, lines)
		}
	}
}

func TestDedupForgets(t *testing.T) {
	d := NewDedup(slog.NewTextHandler(&bytes.Buffer{}, nil), time.Minute)
	for i := range 3 * maxKeys {
		_ = d.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelWarn, string(rune('a'+i)), 0))
	}
	if n := len(d.st.seen); n > maxKeys {
		t.Errorf("remembers %d records, bound %d", n, maxKeys)
	}
}

// syncBuffer is a bytes.Buffer safe to write from the summary timer while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A burst of identical warnings that stops is still counted: the window's
// timer writes the count with the last record's attributes, once; Flush
// writes what is pending at once.
func TestDedupSummaryWithoutNextRecord(t *testing.T) {
	var buf syncBuffer
	log := slog.New(NewDedup(slog.NewTextHandler(&buf, nil), 50*time.Millisecond)).With("port", "p1")
	for i := range 4 {
		log.Warn("link down", "err", "refused", "n", i/4) // identical records
	}
	log.Warn("other")
	testenv.Await(t, 5*time.Second, "the count of the dropped records", buf.String,
		func(s string) bool { return strings.Contains(s, "repeated=3") })
	out := buf.String()
	if n := strings.Count(out, `msg="link down"`); n != 2 {
		t.Errorf("%d lines of the repeated warning, want the first and the count:\n%s", n, out)
	}
	if !strings.Contains(out, `msg="link down" port=p1 err=refused n=0 repeated=3`) {
		t.Errorf("the count does not carry the record's attributes:\n%s", out)
	}

	var all bytes.Buffer
	d := NewDedup(slog.NewTextHandler(&all, nil), time.Hour)
	log = slog.New(d)
	for range 3 {
		log.Warn("same")
	}
	d.Flush()
	d.Flush() // nothing more pending
	if got := strings.Count(all.String(), "repeated=2"); got != 1 {
		t.Errorf("Flush wrote the count %d times, want once:\n%s", got, all.String())
	}
}
