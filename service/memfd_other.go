//go:build !linux

package service

import (
	"errors"
	"fmt"
	"os"
)

// memfd is only implemented on Linux, the only system with an fd store.
func memfd(name string, b []byte) (*os.File, error) {
	return nil, fmt.Errorf("service: memfd: %w", errors.ErrUnsupported)
}
