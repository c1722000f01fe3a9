package service

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// envInherited carries the ports' fds across a SIGUSR2 re-execution (an
// upgrade without a service manager): "PID:NAME=FD:NAME=FD...", names as
// fdName makes them (they never contain ':'). PID guards against a child
// process taking the variable for its own, as LISTEN_PID does.
const envInherited = "VSP_INHERITED_FDS"

// inheritedFD is one fd a re-executing vsp left to its next image.
type inheritedFD struct {
	name string
	fd   int
}

// formatInherited is parseInherited's inverse.
func formatInherited(pid int, fds []inheritedFD) string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(pid))
	for _, f := range fds {
		b.WriteByte(':')
		b.WriteString(f.name)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(f.fd))
	}
	return b.String()
}

// parseInherited reads envInherited's value; it refuses a value meant for
// another process.
func parseInherited(v string, pid int) ([]inheritedFD, error) {
	parts := strings.Split(v, ":")
	p, err := strconv.Atoi(parts[0])
	if err != nil || p <= 0 {
		return nil, fmt.Errorf("service: %s: bad pid %q", envInherited, parts[0])
	}
	if p != pid {
		return nil, fmt.Errorf("service: %s is for pid %d, not this process (%d)", envInherited, p, pid)
	}
	var out []inheritedFD
	for _, part := range parts[1:] {
		i := strings.LastIndexByte(part, '=')
		if i <= 0 {
			return nil, fmt.Errorf("service: %s: want NAME=FD, got %q", envInherited, part)
		}
		fd, err := strconv.Atoi(part[i+1:])
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("service: %s: bad fd in %q", envInherited, part)
		}
		out = append(out, inheritedFD{name: part[:i], fd: fd})
	}
	return out, nil
}

// inherited returns the files a re-executing vsp left to this process, by
// name, and removes the variable.
func inherited() (map[string][]*os.File, error) {
	v, ok := os.LookupEnv(envInherited)
	if !ok {
		return nil, nil
	}
	_ = os.Unsetenv(envInherited)
	fds, err := parseInherited(v, os.Getpid())
	if err != nil {
		return nil, err
	}
	files := map[string][]*os.File{}
	for _, f := range fds {
		if err := closeOnExec(f.fd); err != nil {
			return files, fmt.Errorf("service: inherited fd %d (%s): %w", f.fd, f.name, err)
		}
		files[f.name] = append(files[f.name], os.NewFile(uintptr(f.fd), f.name))
	}
	return files, nil
}
