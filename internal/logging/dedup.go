package logging

import (
	"context"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// maxKeys bounds the records a Dedup remembers; older ones are forgotten
// first when it is full.
const maxKeys = 256

// Dedup is a slog.Handler that writes the first of identical records
// (same level, message and attributes, where the ports of a connection do
// not count: see dedupText) at warning level or above, and
// drops the identical ones that follow within the window. When the window
// ends with records dropped, the last of them is written with the
// attributes "repeated" (how many were dropped) and "in" (over how long):
// by the next identical record, or by a timer when none comes, so a burst
// that stops is still counted in the log within one window. Records below
// warning level pass unchanged, and so does everything when the inner
// handler logs at debug level: debug means every record. Flush writes the
// pending counts at once (at exit).
type Dedup struct {
	inner  slog.Handler
	window time.Duration
	now    func() time.Time
	attrs  string // attributes from WithAttrs and WithGroup, formatted
	st     *dedupState
}

type dedupState struct {
	mu    sync.Mutex
	seen  map[string]*seen
	timer *time.Timer // pending summary of dropped records; nil when none
}

type seen struct {
	since   time.Time
	dropped int
	last    slog.Record  // a record dropped (all are identical but for the time)
	h       slog.Handler // where it would have gone
}

// NewDedup wraps inner; window is how long identical records stay dropped.
func NewDedup(inner slog.Handler, window time.Duration) *Dedup {
	return &Dedup{inner: inner, window: window, now: time.Now, st: &dedupState{seen: map[string]*seen{}}}
}

// Enabled reports whether the inner handler handles level.
func (d *Dedup) Enabled(ctx context.Context, level slog.Level) bool {
	return d.inner.Enabled(ctx, level)
}

// WithAttrs returns a Dedup over inner.WithAttrs that shares d's memory.
func (d *Dedup) WithAttrs(as []slog.Attr) slog.Handler {
	c := *d
	c.inner = d.inner.WithAttrs(as)
	var b strings.Builder
	b.WriteString(d.attrs)
	for _, a := range as {
		b.WriteString(" " + a.String())
	}
	c.attrs = b.String()
	return &c
}

// WithGroup returns a Dedup over inner.WithGroup that shares d's memory.
func (d *Dedup) WithGroup(name string) slog.Handler {
	c := *d
	c.inner = d.inner.WithGroup(name)
	c.attrs = d.attrs + " [" + name + "]"
	return &c
}

// Handle writes r, or counts it as a repeat.
func (d *Dedup) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || d.inner.Enabled(ctx, slog.LevelDebug) {
		return d.inner.Handle(ctx, r)
	}
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message + d.attrs)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	key := dedupText(b.String())
	now := d.now()
	d.st.mu.Lock()
	s := d.st.seen[key]
	switch {
	case s != nil && now.Sub(s.since) < d.window:
		s.dropped++
		if s.dropped == 1 { // identical records: the first one dropped stands for all
			s.last, s.h = r.Clone(), d.inner
		}
		if d.st.timer == nil {
			d.st.timer = time.AfterFunc(d.window-now.Sub(s.since), d.summarize)
		}
		d.st.mu.Unlock()
		return nil
	case s != nil && s.dropped > 0:
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", s.dropped), slog.Duration("in", now.Sub(s.since).Round(time.Second)))
	}
	if s == nil {
		if len(d.st.seen) >= maxKeys {
			d.st.forget()
		}
		s = &seen{}
		d.st.seen[key] = s
	}
	s.since, s.dropped, s.last, s.h = now, 0, slog.Record{}, nil
	d.st.mu.Unlock()
	return d.inner.Handle(ctx, r)
}

// socketPorts matches both ends of a socket in a net.OpError's text
// ("read tcp 127.0.0.1:58572->127.0.0.1:45503: …"): one of the two ports
// is ephemeral, new at each connection: the local one when vsp dials, the
// device's when it dials vsp (listen mode).
var socketPorts = regexp.MustCompile(`((?:tcp|udp)[46]? \S+?:)\d+->(\S+?:)\d+(:|\s|$)`)

// dedupText is the text two records are compared by: the record's, with
// the ports of a connection masked. Without it, "connection reset by peer"
// from a device that hangs up at each connection would be a new warning
// every time, and never rate-limited. (A dial error names the device's
// address alone, and keeps its port.)
func dedupText(s string) string {
	if !strings.Contains(s, "->") {
		return s
	}
	return socketPorts.ReplaceAllString(s, "${1}*->${2}*${3}")
}

// summarize writes the count of every record whose window has ended with
// records dropped, and sets the timer for the next window to end.
func (d *Dedup) summarize() { d.flush(false) }

// Flush writes the count of every record dropped so far, window ended or
// not (the daemon calls it as it exits).
func (d *Dedup) Flush() { d.flush(true) }

func (d *Dedup) flush(all bool) {
	type out struct {
		h slog.Handler
		r slog.Record
	}
	var outs []out
	d.st.mu.Lock()
	now := d.now()
	next := time.Duration(-1)
	for _, s := range d.st.seen {
		if s.dropped == 0 {
			continue
		}
		if left := d.window - now.Sub(s.since); left > 0 && !all {
			if next < 0 || left < next {
				next = left
			}
			continue
		}
		r := s.last
		r.Time = now
		r.AddAttrs(slog.Int("repeated", s.dropped), slog.Duration("in", now.Sub(s.since).Round(time.Second)))
		outs = append(outs, out{s.h, r})
		s.since, s.dropped, s.last, s.h = now, 0, slog.Record{}, nil
	}
	if d.st.timer != nil {
		d.st.timer.Stop()
		d.st.timer = nil
	}
	if next >= 0 {
		d.st.timer = time.AfterFunc(next, d.summarize)
	}
	d.st.mu.Unlock()
	for _, o := range outs {
		_ = o.h.Handle(context.Background(), o.r)
	}
}

// forget drops the oldest half of the remembered records, except those
// with a count not yet written (the summary timer writes and resets them
// within a window).
func (st *dedupState) forget() {
	var times []time.Time
	for _, s := range st.seen {
		times = append(times, s.since)
	}
	slices.SortFunc(times, time.Time.Compare)
	cut := times[len(times)/2]
	for k, s := range st.seen {
		if !s.since.After(cut) && s.dropped == 0 { // a pending count stays until written
			delete(st.seen, k)
		}
	}
}
