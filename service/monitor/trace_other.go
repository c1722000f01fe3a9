//go:build !unix

package monitor

import (
	"errors"
	"fmt"
	"os"
)

// OpenTraceFile returns an error wrapping errors.ErrUnsupported: the
// ownership checks it makes need a Unix system (and so do vsp's ports).
func OpenTraceFile(path string) (*os.File, error) {
	return nil, fmt.Errorf("monitor: trace %s: %w", path, errors.ErrUnsupported)
}
