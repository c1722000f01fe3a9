//go:build !linux

package serialport

import (
	"errors"
	"fmt"
	"os"
)

// Open returns an error wrapping errors.ErrUnsupported: the examples only
// implement Linux termios (vsp ports exist only on Linux).
func Open(path string, baud int) (*os.File, error) {
	return nil, fmt.Errorf("serialport: %s: not supported on this platform: %w", path, errors.ErrUnsupported)
}
