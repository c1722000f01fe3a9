//go:build !linux

package device

import (
	"errors"
	"fmt"
)

func isEIO(error) bool { return false }

func openPTY(path string) (*fileBackend, error) {
	return nil, fmt.Errorf("device: pty backend: %w", errors.ErrUnsupported)
}

func openTTY(path string) (*fileBackend, error) {
	return nil, fmt.Errorf("device: serial backend: %w", errors.ErrUnsupported)
}

func (b *fileBackend) configure(Serial) error { return nil }

func (b *fileBackend) flush(bool, bool) (int, int, error) { return 0, 0, nil }
