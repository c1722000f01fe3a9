//go:build !linux

package pty

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	cpty "github.com/creack/pty"
)

// errUnsupported is returned by everything on platforms without an
// implementation. It wraps errors.ErrUnsupported and creack/pty's
// ErrUnsupported.
var errUnsupported = fmt.Errorf("pty: virtual serial ports are not supported on this platform (%s/%s; they need the Linux pty driver): %w",
	runtime.GOOS, runtime.GOARCH, unsupported{})

// unsupported matches both errors.ErrUnsupported and creack/pty's
// ErrUnsupported with errors.Is, on one line.
type unsupported struct{}

func (unsupported) Error() string { return errors.ErrUnsupported.Error() }
func (unsupported) Is(target error) bool {
	return target == errors.ErrUnsupported || target == cpty.ErrUnsupported
}

// Port is a virtual serial port. It is only implemented on Linux.
type Port struct{}

// OpenWatcher tracks application opens of many ports. It is only
// implemented on Linux.
type OpenWatcher struct{}

// NewOpenWatcher returns an error wrapping errors.ErrUnsupported.
func NewOpenWatcher(log *slog.Logger) (*OpenWatcher, error) { return nil, errUnsupported }

// Close does nothing.
func (w *OpenWatcher) Close() error { return nil }

// Open returns an error wrapping errors.ErrUnsupported.
func Open(cfg Config, log *slog.Logger) (*Port, error) { return nil, errUnsupported }

// Read returns an error wrapping errors.ErrUnsupported.
func (p *Port) Read(b []byte) (int, error) { return 0, errUnsupported }

// Write returns an error wrapping errors.ErrUnsupported.
func (p *Port) Write(b []byte) (int, error) { return 0, errUnsupported }

// SetReadDeadline returns an error wrapping errors.ErrUnsupported.
func (p *Port) SetReadDeadline(t time.Time) error { return errUnsupported }

// SetWriteDeadline returns an error wrapping errors.ErrUnsupported.
func (p *Port) SetWriteDeadline(t time.Time) error { return errUnsupported }

// Close does nothing.
func (p *Port) Close() error { return nil }

// Name returns "".
func (p *Port) Name() string { return "" }

// Link returns "".
func (p *Port) Link() string { return "" }

// Settings returns an error wrapping errors.ErrUnsupported.
func (p *Port) Settings() (Settings, error) { return Settings{}, errUnsupported }

// Events returns nil.
func (p *Port) Events() <-chan Event { return nil }

// EventsDropped returns 0.
func (p *Port) EventsDropped() uint64 { return 0 }

// AppOpen returns false.
func (p *Port) AppOpen() bool { return false }

// DiscardInput returns an error wrapping errors.ErrUnsupported.
func (p *Port) DiscardInput() error { return errUnsupported }

// Adopt returns an error wrapping errors.ErrUnsupported.
func Adopt(cfg Config, master, slave *os.File, log *slog.Logger) (*Port, error) {
	return nil, errUnsupported
}

// Files returns an error wrapping errors.ErrUnsupported.
func (p *Port) Files() (master, slave *os.File, err error) { return nil, nil, errUnsupported }

// Release does nothing.
func (p *Port) Release() error { return nil }

// SetFlushHandler does nothing: no Port exists on this platform.
func (p *Port) SetFlushHandler(f func(EventKind)) {}

// SetSettingsHandler does nothing: no Port exists on this platform.
func (p *Port) SetSettingsHandler(f func(Settings)) {}
