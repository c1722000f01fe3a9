//go:build !linux

package service

import (
	"errors"
	"fmt"
	"os"
)

// reexecSignals: re-execution with the ports' ptys is Linux-only.
func reexecSignals() []os.Signal { return nil }

var errNoReexec = fmt.Errorf("service: re-execution with the ports' ptys: %w", errors.ErrUnsupported)

func closeOnExec(fd int) error                     { return errNoReexec }
func inheritable(f *os.File) (int, error)          { return -1, errNoReexec }
func execSelf(exe string, fds []inheritedFD) error { return errNoReexec }
