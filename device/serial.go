package device

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// backend is the serial line a COM port drives: bytes written go out to the
// attached equipment, bytes read came from it.
type backend interface {
	// read reads bytes received from the line; epoch is the backend's
	// input epoch when it took them (see flush).
	read(p []byte) (n int, epoch uint64, err error)
	// inputEpoch is the current input epoch: each input flush advances
	// it, so the caller can tell bytes taken before a flush (stale) from
	// bytes taken after.
	inputEpoch() uint64
	// flush discards what the backend holds: with input, the bytes
	// received from the line and not yet read; with output, the bytes
	// written and not yet sent on the line. It returns how many it
	// discarded of each.
	flush(input, output bool) (in, out int, err error)
	// write writes all of p unless ctx ends or the backend is closed.
	write(ctx context.Context, p []byte) (int, error)
	// configure applies serial settings where the backend can (termios).
	configure(s Serial) error
	Close() error
	String() string
}

// openBackend opens a backend from its specification: "echo", "pty:PATH" or
// a serial device path.
func openBackend(spec string) (backend, error) {
	switch {
	case spec == "" || spec == "echo":
		return newLoopback(), nil
	case strings.HasPrefix(spec, "pty:"):
		path := strings.TrimPrefix(spec, "pty:")
		if path == "" {
			return nil, fmt.Errorf("%w: pty backend needs a path (pty:PATH)", ErrInvalid)
		}
		return openPTY(path)
	case strings.HasPrefix(spec, "/"):
		return openTTY(spec)
	}
	return nil, fmt.Errorf("%w: serial backend %q (echo, pty:PATH or /dev/...)", ErrInvalid, spec)
}

// loopback is the "echo" backend: a loopback plug on the serial connector.
// Everything written is read back; the buffer is bounded so a writer blocks
// when nobody reads, as with hardware flow control.
type loopback struct {
	mu     sync.Mutex
	cond   *sync.Cond
	buf    []byte
	closed bool
	epoch  uint64 // input flushes so far
}

const loopbackSize = 64 << 10

func newLoopback() *loopback {
	l := &loopback{}
	l.cond = sync.NewCond(&l.mu)
	return l
}

func (l *loopback) String() string { return "echo" }

func (l *loopback) read(p []byte) (int, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.buf) == 0 && !l.closed {
		l.cond.Wait()
	}
	if len(l.buf) == 0 {
		return 0, l.epoch, io.EOF
	}
	n := copy(p, l.buf)
	l.buf = l.buf[n:]
	if len(l.buf) == 0 {
		l.buf = nil
	}
	l.cond.Broadcast()
	return n, l.epoch, nil
}

func (l *loopback) inputEpoch() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// flush: what the plug holds was sent on the line and came back, not yet
// read: input. Nothing waits to go out (a write puts its bytes straight on
// the plug), so an output flush has nothing to drop.
func (l *loopback) flush(input, _ bool) (int, int, error) {
	if !input {
		return 0, 0, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.buf)
	l.buf = nil
	l.epoch++
	l.cond.Broadcast() // writers waiting for room
	return n, 0, nil
}

func (l *loopback) write(ctx context.Context, p []byte) (int, error) {
	stop := context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.cond.Broadcast()
		l.mu.Unlock()
	})
	defer stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for n < len(p) {
		for len(l.buf) >= loopbackSize && !l.closed && ctx.Err() == nil {
			l.cond.Wait()
		}
		if l.closed {
			return n, os.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k := min(len(p)-n, loopbackSize-len(l.buf))
		l.buf = append(l.buf, p[n:n+k]...)
		n += k
		l.cond.Broadcast()
	}
	return n, nil
}

func (l *loopback) configure(Serial) error { return nil }

func (l *loopback) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	return nil
}

// fileBackend drives a character device (PTY master or real tty).
type fileBackend struct {
	epoch  atomic.Uint64 // input flushes so far
	name   string
	f      *os.File // PTY master or tty
	slave  *os.File // PTY only: kept open so the master never reads EIO
	link   string   // PTY only: symlink to remove on Close
	closed sync.Once
	err    error
}

func (b *fileBackend) String() string { return b.name }

// read: the epoch is read after the bytes were taken, so bytes the kernel
// handed over just before a flush can pass as taken after it (the kernel
// has no way to take and count in one step); the loopback is exact.
func (b *fileBackend) read(p []byte) (int, uint64, error) {
	for {
		n, err := b.f.Read(p)
		if n == 0 && err != nil && b.slave != nil && isEIO(err) {
			// The equipment side hung up; we hold the slave, so this is
			// transient. Retry after a short pause.
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return n, b.epoch.Load(), err
	}
}

func (b *fileBackend) inputEpoch() uint64 { return b.epoch.Load() }

func (b *fileBackend) write(ctx context.Context, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := b.f.SetWriteDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			k, err := b.f.Write(p[n:])
			return n + k, err
		}
		k, err := b.f.Write(p[n:])
		n += k
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
	}
	return n, nil
}

func (b *fileBackend) Close() error {
	b.closed.Do(func() {
		b.err = b.f.Close()
		if b.slave != nil {
			b.slave.Close()
		}
		if b.link != "" {
			if target, err := os.Readlink(b.link); err == nil && strings.HasPrefix(target, "/dev/pts/") {
				os.Remove(b.link)
			}
		}
	})
	return b.err
}
