package monitor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"sync"
)

// TraceConfig is a port's [trace] table: where its records are written.
// The zero value (no File) means no trace.
type TraceConfig struct {
	File     string // path of the trace file
	MaxSize  int64  // rotate before the file would grow past this many bytes; 0 = never
	MaxFiles int    // files kept, the current one included; 0 = DefaultMaxFiles
	Format   Format // FormatHexdump (default) or FormatJSON
}

// DefaultMaxFiles is how many trace files are kept when max_files is not
// set.
const DefaultMaxFiles = 5

// Trace writes a port's records to a file, rotating it like a log: file,
// file.1 (the previous one), ... file.<MaxFiles-1>. Every file ends on a
// whole record. It is an observer like any monitor: a full disk or a slow
// file system loses records (said inline), never slows the port.
type Trace struct {
	cfg  TraceConfig
	sub  *Sub
	log  *slog.Logger
	done chan struct{}
	ctx  context.Context
	stop context.CancelFunc
	once sync.Once

	f    *os.File
	size int64
}

// StartTrace opens cfg.File (see OpenTraceFile) and writes h's records to
// it until Close.
func StartTrace(h *Hub, cfg TraceConfig, log *slog.Logger) (*Trace, error) {
	if cfg.MaxFiles <= 0 {
		cfg.MaxFiles = DefaultMaxFiles
	}
	if cfg.Format == "" {
		cfg.Format = FormatHexdump
	}
	f, err := OpenTraceFile(cfg.File)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("monitor: trace %s: %w", cfg.File, err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Trace{cfg: cfg, log: log, f: f, size: fi.Size(), sub: h.Subscribe(), done: make(chan struct{})}
	t.ctx, t.stop = context.WithCancel(context.Background())
	go t.run()
	return t, nil
}

// Config returns what the trace was started with (defaults applied).
func (t *Trace) Config() TraceConfig { return t.cfg }

func (t *Trace) run() {
	defer close(t.done)
	enc := Encoder{Format: t.cfg.Format}
	var rec, batch []byte
	closed, cancel := context.WithCancel(context.Background())
	cancel() // Next with it returns only what is already queued
	warn := func(err error) {
		if err != nil {
			t.log.Warn("trace file", "file", t.cfg.File, "err", err)
		}
	}
	for {
		r, err := t.sub.Next(t.ctx)
		final := err != nil // Close: write what was queued before it
		// One write for everything queued: a busy port costs one
		// system call per batch, not per record.
		for err == nil {
			rec = enc.Append(rec[:0], r)
			if t.cfg.MaxSize > 0 && t.size+int64(len(batch)+len(rec)) > t.cfg.MaxSize && t.size+int64(len(batch)) > 0 {
				warn(t.write(batch))
				batch = batch[:0]
				warn(t.rotate())
			}
			batch = append(batch, rec...)
			if len(batch) >= 64<<10 {
				break
			}
			r, err = t.sub.Next(closed)
		}
		warn(t.write(batch))
		batch = batch[:0]
		if final {
			return
		}
	}
}

// write appends whole encoded records (run rotates between them).
func (t *Trace) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if t.f == nil {
		if err := t.reopen(); err != nil {
			return err
		}
	}
	n, err := t.f.Write(p)
	t.size += int64(n)
	return err
}

// rotate shifts file.i to file.i+1 (the oldest goes) and starts an empty
// file.
func (t *Trace) rotate() error {
	if t.f != nil {
		_ = t.f.Close()
		t.f = nil
	}
	name := func(i int) string {
		if i == 0 {
			return t.cfg.File
		}
		return t.cfg.File + "." + strconv.Itoa(i)
	}
	// Rename and Remove act on names, never through a symlink.
	if err := os.Remove(name(t.cfg.MaxFiles - 1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("monitor: trace rotation: %w", err)
	}
	for i := t.cfg.MaxFiles - 2; i >= 0; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("monitor: trace rotation: %w", err)
		}
	}
	return t.reopen()
}

func (t *Trace) reopen() error {
	f, err := OpenTraceFile(t.cfg.File)
	if err != nil {
		return err
	}
	t.f, t.size = f, 0
	if fi, err := f.Stat(); err == nil {
		t.size = fi.Size()
	}
	return nil
}

// Close stops observing, writes what was queued and closes the file. It is
// idempotent.
func (t *Trace) Close() error {
	var err error
	t.once.Do(func() {
		t.sub.Close()
		t.stop()
		<-t.done
		if t.f != nil {
			err = t.f.Close()
		}
	})
	return err
}
