//go:build unix

package config

import (
	"io/fs"
	"os"
	"syscall"
)

// trustedFile refuses, as an *Error for path, a configuration file that a
// user other than root and the reader could have written: whoever writes a
// port file chooses the devices the host talks to and where root makes
// links, whoever writes the settings file chooses the daemon's directories
// (docs/reliability.md, "Threat model"). fi is the opened file's.
func trustedFile(path string, fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	euid := os.Geteuid()
	switch {
	case int(st.Uid) != 0 && int(st.Uid) != euid:
		return &Error{File: path, Err: reasonf(ErrRead, "owned by uid %d, another user (this process runs as uid %d): whoever can write a configuration file controls what vsp does; chown it", st.Uid, euid)}
	case fi.Mode().Perm()&0o022 != 0:
		return &Error{File: path, Err: reasonf(ErrRead, "writable by group or others (mode %04o): whoever can write a configuration file controls what vsp does; chmod go-w it", fi.Mode().Perm())}
	}
	return nil
}
