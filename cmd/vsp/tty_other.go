//go:build !linux

package main

import (
	"errors"
	"fmt"
	"os"
)

// openTTY is Linux-only, like vsp ports (see platform.go).
func openTTY(path string) (*os.File, error) {
	return nil, fmt.Errorf("open %s: not supported on this platform: %w", path, errors.ErrUnsupported)
}

// makeRaw is Linux-only, like vsp ports (see platform.go).
func makeRaw(*os.File) error {
	return fmt.Errorf("raw tty: not supported on this platform: %w", errors.ErrUnsupported)
}
