package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// Journal returns a handler made by newInner over a writer that starts
// each record with its sd-daemon(3) priority prefix: "<3>" error, "<4>"
// warning, "<6>" info, "<7>" debug. newInner must write each record with
// one Write call, as slog's text and JSON handlers do.
func Journal(w io.Writer, newInner func(io.Writer) slog.Handler) slog.Handler {
	pw := &prioWriter{w: w}
	return &journal{inner: newInner(pw), w: pw}
}

type journal struct {
	inner slog.Handler
	w     *prioWriter
}

type prioWriter struct {
	mu     sync.Mutex // held by journal.Handle around the inner handler's Write
	w      io.Writer
	prefix string
}

func (p *prioWriter) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix+string(b)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

func (j *journal) Enabled(ctx context.Context, l slog.Level) bool { return j.inner.Enabled(ctx, l) }

func (j *journal) WithAttrs(as []slog.Attr) slog.Handler {
	return &journal{inner: j.inner.WithAttrs(as), w: j.w}
}

func (j *journal) WithGroup(name string) slog.Handler {
	return &journal{inner: j.inner.WithGroup(name), w: j.w}
}

func (j *journal) Handle(ctx context.Context, r slog.Record) error {
	j.w.mu.Lock()
	defer j.w.mu.Unlock()
	j.w.prefix = fmt.Sprintf("<%d>", priority(r.Level))
	return j.inner.Handle(ctx, r)
}
