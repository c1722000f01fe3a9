//go:build !linux

package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Sending files to a service manager is only implemented on Linux (the
// only system with systemd).
var errNoFiles = fmt.Errorf("sdnotify: passing files: %w", errors.ErrUnsupported)

func (n *Notifier) barrier(timeout time.Duration) error { return errNoFiles }

func (n *Notifier) sendFiles(state string, files []*os.File) error { return errNoFiles }
