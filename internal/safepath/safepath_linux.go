//go:build linux

package safepath

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUntrusted is wrapped by every refusal: a path another user could
// change, or a runtime directory that is not private.
var ErrUntrusted = errors.New("safepath: untrusted path")

// Error is a refusal: Path is the offending directory or symlink, Reason
// says why.
type Error struct {
	Path   string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("safepath: refusing %s: %s", e.Path, e.Reason)
}

// Unwrap makes errors.Is(err, ErrUntrusted) true.
func (e *Error) Unwrap() error { return ErrUntrusted }

// maxSymlinks bounds the symlinks followed in one resolution, as the
// kernel's own 40 (ELOOP).
const maxSymlinks = 40

// Dir is a directory opened by OpenDir or StateDir: an O_PATH file
// descriptor for the *at system calls (symlinkat, renameat, unlinkat,
// openat, fstatat, readlinkat).
type Dir struct {
	fd   int
	path string // the path the caller asked for, cleaned (for messages)
}

// FD returns the directory's file descriptor (valid until Close).
func (d *Dir) FD() int { return d.fd }

// Stat returns the directory's own fstat.
func (d *Dir) Stat() (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstat(d.fd, &st)
	return st, err
}

// Close closes the directory's file descriptor; it is idempotent.
func (d *Dir) Close() error {
	if d == nil || d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	return err
}

// OpenDir resolves the absolute path dir from / one component at a time
// and returns it open. Every directory on the way, and dir itself, must be
// owned by root or by uid (normally os.Geteuid()) and must not be writable
// by other users unless it is sticky; symlinks are followed only when root
// or uid owns them. With create, missing directories are made with mode
// perm (less the umask), owned by the process. A refusal is an *Error
// naming the path and why.
//
// Why not openat2(RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)? It refuses
// every symlink, including root's own (/var/run -> /run on most systems,
// or an admin's link to a data directory), and it cannot check who owns
// or may write each directory; resolving component by component with
// O_PATH|O_NOFOLLOW does both, works on every Linux vsp supports, and is
// as race-free: each check is made on the open file descriptor that the
// next step uses.
func OpenDir(dir string, uid int, create bool, perm uint32) (*Dir, error) {
	if !filepath.IsAbs(dir) {
		return nil, fmt.Errorf("safepath: %s: not an absolute path", dir)
	}
	dir = filepath.Clean(dir)
	fd, err := resolve(dir, uid, create, perm)
	if err != nil {
		return nil, err
	}
	return &Dir{fd: fd, path: dir}, nil
}

// StateDir opens (creating it if missing: mode 0700, or 0755 for root) a runtime state
// directory: the control socket's directory, which also holds the link
// locks. Beyond OpenDir's rules the directory itself must be owned by uid
// and, for a user other than root, have no permissions for group or
// others: it is the per-user fallback directory ($TMPDIR/vsp-<uid>) that
// another user may have created first, to swap what vsp makes there. Root's
// directory (/run/vsp) may be readable by others but not writable.
func StateDir(dir string, uid int) (*Dir, error) {
	perm := uint32(0o700)
	if uid == 0 {
		// Root's runtime directory holds the system daemon's control
		// socket, which members of the vsp group use: they must be able
		// to reach it (the socket's own mode and group decide the rest).
		perm = 0o755
	}
	d, err := OpenDir(dir, uid, true, perm)
	var se *Error
	if errors.As(err, &se) && se.Path == filepath.Clean(dir) {
		se.Reason += "; a runtime directory must be your own with mode 0700 (remove it, or use another directory, e.g. set XDG_RUNTIME_DIR)"
	}
	if err != nil {
		return nil, err
	}
	st, err := d.Stat()
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("safepath: %s: %w", dir, err)
	}
	mask := uint32(0o077)
	want := "0700"
	if uid == 0 {
		mask, want = 0o022, "not writable by group or others"
	}
	if int(st.Uid) != uid || st.Mode&mask != 0 {
		d.Close()
		return nil, &Error{Path: d.path, Reason: fmt.Sprintf(
			"runtime directory owned by uid %d with mode %04o; it must be owned by uid %d with mode %s (remove it, or use another directory, e.g. set XDG_RUNTIME_DIR)",
			st.Uid, st.Mode&0o7777, uid, want)}
	}
	return d, nil
}

// resolve walks path (absolute, clean) from / and returns an O_PATH fd of
// the directory it names.
func resolve(path string, uid int, create bool, perm uint32) (int, error) {
	cur, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("safepath: open /: %w", err)
	}
	curPath := "/"
	if err := checkDir(cur, curPath, uid); err != nil {
		unix.Close(cur)
		return -1, err
	}
	rest := splitPath(path)
	links := 0
	for len(rest) > 0 {
		name := rest[0]
		rest = rest[1:]
		switch name {
		case ".":
			continue
		case "..":
			// Only reached through a symlink's target: go up from
			// the checked directory (its parent was checked on the
			// way down, or is / ).
			next, err := unix.Openat(cur, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				unix.Close(cur)
				return -1, fmt.Errorf("safepath: %s/..: %w", curPath, err)
			}
			unix.Close(cur)
			cur, curPath = next, filepath.Dir(curPath)
			if err := checkDir(cur, curPath, uid); err != nil {
				unix.Close(cur)
				return -1, err
			}
			continue
		}
		p := filepath.Join(curPath, name)
		next, err := unix.Openat(cur, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err := unix.Mkdirat(cur, name, perm); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(cur)
				return -1, fmt.Errorf("safepath: create %s: %w", p, err)
			}
			next, err = unix.Openat(cur, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			unix.Close(cur)
			return -1, fmt.Errorf("safepath: %s: %w", p, err)
		}
		var st unix.Stat_t
		if err := unix.Fstat(next, &st); err != nil {
			unix.Close(next)
			unix.Close(cur)
			return -1, fmt.Errorf("safepath: %s: %w", p, err)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			unix.Close(cur)
			cur, curPath = next, p
			if err := checkDir(cur, curPath, uid); err != nil {
				unix.Close(cur)
				return -1, err
			}
		case unix.S_IFLNK:
			target, err := readlinkFD(next)
			unix.Close(next)
			if err != nil {
				unix.Close(cur)
				return -1, fmt.Errorf("safepath: %s: %w", p, err)
			}
			if int(st.Uid) != 0 && int(st.Uid) != uid {
				unix.Close(cur)
				return -1, &Error{Path: p, Reason: fmt.Sprintf("symlink (to %s) owned by uid %d, another user", target, st.Uid)}
			}
			if links++; links > maxSymlinks {
				unix.Close(cur)
				return -1, fmt.Errorf("safepath: %s: %w", path, unix.ELOOP)
			}
			rest = append(splitPath(target), rest...)
			if filepath.IsAbs(target) {
				unix.Close(cur)
				if cur, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
					return -1, fmt.Errorf("safepath: open /: %w", err)
				}
				curPath = "/"
			}
		default:
			unix.Close(next)
			unix.Close(cur)
			return -1, fmt.Errorf("safepath: %s: %w", p, unix.ENOTDIR)
		}
	}
	return cur, nil
}

// checkDir applies the ownership and write rules to the directory open as
// fd.
func checkDir(fd int, path string, uid int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("safepath: %s: %w", path, err)
	}
	if int(st.Uid) != 0 && int(st.Uid) != uid {
		return &Error{Path: path, Reason: fmt.Sprintf("directory owned by uid %d, another user", st.Uid)}
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		who := "group"
		if st.Mode&0o002 != 0 {
			who = "all users"
		}
		return &Error{Path: path, Reason: fmt.Sprintf("directory writable by %s (mode %04o) and not sticky; other users could add, replace or remove what is in it", who, st.Mode&0o7777)}
	}
	return nil
}

// readlinkFD reads the symlink open as an O_PATH|O_NOFOLLOW fd.
func readlinkFD(fd int) (string, error) { return readlinkAt(fd, "") }

// readlinkAt is readlinkat(2) with a buffer that grows as needed.
func readlinkAt(dirfd int, name string) (string, error) {
	for n := 256; ; n *= 2 {
		buf := make([]byte, n)
		m, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if m < n {
			return string(buf[:m]), nil
		}
		if n > 1<<16 {
			return "", unix.ENAMETOOLONG
		}
	}
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Readlinkat reads the symlink name in d.
func (d *Dir) Readlinkat(name string) (string, error) { return readlinkAt(d.fd, name) }

// Lstatat is fstatat(name, AT_SYMLINK_NOFOLLOW) in d.
func (d *Dir) Lstatat(name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}
