//go:build !linux

package safepath

import (
	"errors"
	"fmt"
	"runtime"
)

// Dir is a directory opened by OpenDir or StateDir; only implemented on
// Linux.
type Dir struct{}

// Close does nothing.
func (d *Dir) Close() error { return nil }

// ErrUntrusted is wrapped by every refusal.
var ErrUntrusted = errors.New("safepath: untrusted path")

// OpenDir returns an error wrapping errors.ErrUnsupported.
func OpenDir(dir string, uid int, create bool, perm uint32) (*Dir, error) {
	return nil, fmt.Errorf("safepath: %s/%s: %w", runtime.GOOS, runtime.GOARCH, errors.ErrUnsupported)
}

// StateDir returns an error wrapping errors.ErrUnsupported.
func StateDir(dir string, uid int) (*Dir, error) { return OpenDir(dir, uid, true, 0o700) }
