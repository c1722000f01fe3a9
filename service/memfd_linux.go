//go:build linux

package service

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// memfd returns an in-memory file holding b.
func memfd(name string, b []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("service: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, fmt.Errorf("service: memfd: %w", err)
	}
	return f, nil
}
