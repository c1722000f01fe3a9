//go:build linux

package pty

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/safepath"
)

// A link vsp owns (DESIGN rule 7) is one it holds the lock of: a file in
// Config.LockDir, named after the link's directory (device and inode) and
// base name, locked with flock for the Port's life and recording the pid,
// the port name, the link and the tty. With the lock, the record is what
// proves an existing symlink is vsp's own: a crashed process's link (lock
// free, record names this link, the symlink still points at the recorded
// tty), or the link of a pty adopted from the file-descriptor store (the
// same, and the tty is the adopted one). Anything else at the path is
// someone else's and is left alone.

// linkClaim is a Port's hold on its link path.
type linkClaim struct {
	path   string        // the link, as configured (clean, absolute or relative to the cwd)
	dir    *safepath.Dir // the link's directory, checked and open
	base   string        // the link's name in dir
	exists bool          // something was at the link path when claimed
	lock   *os.File      // the locked record; nil without Config.LockDir
	// lockDir and lockName locate the record for removal at Close.
	lockDir  *safepath.Dir
	lockName string
}

// record is the content of a link's lock file.
type record struct {
	PID  int
	Port string
	Link string
	TTY  string
}

func (r record) String() string {
	return "pid=" + strconv.Itoa(r.PID) + "\nport=" + r.Port + "\nlink=" + r.Link + "\ntty=" + r.TTY + "\n"
}

// maxRecord bounds what is read of a lock file.
const maxRecord = 4096

func parseRecord(b []byte) record {
	var r record
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "pid":
			r.PID, _ = strconv.Atoi(v)
		case "port":
			r.Port = v
		case "link":
			r.Link = v
		case "tty":
			r.TTY = v
		}
	}
	return r
}

// holder describes the process a record names, for messages.
func (r record) holder() string {
	s := "vsp pid " + strconv.Itoa(r.PID)
	if r.Port != "" {
		s += " (port " + r.Port + ")"
	}
	return s
}

// claimLink checks the link's directory, takes the link's lock (if
// cfg.LockDir is set) and points the link at tty: creating it where
// nothing is, keeping or replacing it where the record proves it is vsp's
// own, refusing everything else.
func claimLink(cfg *Config, tty string) (_ *linkClaim, err error) {
	link := cfg.Link
	abs, err := filepath.Abs(link)
	if err != nil {
		return nil, fmt.Errorf("pty: link %s: %w", link, err)
	}
	euid := os.Geteuid()
	c := &linkClaim{path: link, base: filepath.Base(abs)}
	defer func() {
		if err != nil {
			c.close(false, "")
		}
	}()
	if cfg.LockDir != "" {
		// First: the link directory may be inside the runtime
		// directory, which must then be made 0700, not 0755.
		if c.lockDir, err = safepath.StateDir(cfg.LockDir, euid); err != nil {
			return nil, fmt.Errorf("pty: link %s: lock directory: %w", link, err)
		}
	}
	if c.dir, err = safepath.OpenDir(filepath.Dir(abs), euid, true, 0o755); err != nil {
		return nil, fmt.Errorf("pty: link %s: %w", link, err)
	}
	var prev record
	if cfg.LockDir != "" {
		if prev, err = c.takeLock(cfg.LockDir); err != nil {
			return nil, err
		}
	}
	replace, err := c.check(cfg, prev, tty, euid)
	if err != nil {
		if c.lock != nil && prev == (record{}) {
			_ = unix.Unlinkat(c.lockDir.FD(), c.lockName, 0) // ours, empty: leave nothing behind
		}
		return nil, err
	}
	if c.lock != nil {
		if err := c.writeRecord(record{PID: os.Getpid(), Port: cfg.Name, Link: link, TTY: tty}); err != nil {
			return nil, err
		}
	}
	switch {
	case !replace:
		return c, nil // an adopted pty: the link is already right
	case replace && !c.exists:
		if err := unix.Symlinkat(tty, c.dir.FD(), c.base); err != nil {
			return nil, fmt.Errorf("pty: create link %s: %w", link, err)
		}
		return c, nil
	}
	// vsp's own stale link (its process died): replace it atomically.
	for i := 0; ; i++ {
		tmp := "." + c.base + ".tmp" + strconv.Itoa(os.Getpid()) + "." + strconv.FormatInt(time.Now().UnixNano()%1e9, 10)
		err := unix.Symlinkat(tty, c.dir.FD(), tmp)
		if errors.Is(err, unix.EEXIST) && i < 10 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pty: replace stale link %s: %w", link, err)
		}
		if err := unix.Renameat(c.dir.FD(), tmp, c.dir.FD(), c.base); err != nil {
			_ = unix.Unlinkat(c.dir.FD(), tmp, 0)
			return nil, fmt.Errorf("pty: replace stale link %s: %w", link, err)
		}
		return c, nil
	}
}

// check decides what to do at the link path: make or replace the link
// (replace true; c.exists says whether something is there), keep it as it
// is (it already points at tty, by vsp's record), or refuse.
func (c *linkClaim) check(cfg *Config, prev record, tty string, euid int) (replace bool, err error) {
	st, err := c.dir.Lstatat(c.base)
	switch {
	case errors.Is(err, unix.ENOENT):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("pty: link %s: %w", c.path, err)
	case st.Mode&unix.S_IFMT != unix.S_IFLNK:
		return false, fmt.Errorf("%w: %s is a %s; remove it or choose another link path",
			ErrNotSymlink, c.path, describeMode(fileMode(st.Mode)))
	}
	c.exists = true
	target, err := c.dir.Readlinkat(c.base)
	if err != nil {
		return false, fmt.Errorf("pty: link %s: %w", c.path, err)
	}
	if target == tty && int(st.Uid) == euid {
		return false, nil // already points at the (adopted) tty this Port holds
	}
	if cfg.LockDir == "" || int(st.Uid) != euid || prev.Link != cfg.Link || prev.TTY != target {
		why := "no record of it in " + lockDirName(cfg.LockDir)
		switch {
		case cfg.LockDir == "":
		case int(st.Uid) != euid:
			why = "owned by uid " + strconv.FormatUint(uint64(st.Uid), 10)
		case prev.Link == cfg.Link:
			why = "changed since vsp made it to " + prev.TTY + " (record in " + cfg.LockDir + ")"
		}
		return false, fmt.Errorf("%w: %s (a symlink to %s; %s); remove it or choose another link path",
			ErrNotOurs, c.path, target, why)
	}
	return true, nil // vsp's own, stale
}

func lockDirName(d string) string {
	if d == "" {
		return "Config.LockDir: none given"
	}
	return d
}

// takeLock opens (creating) and locks the link's record in lockDir and
// returns what it recorded before. A lock another process holds is
// ErrLinkBusy, naming the holder.
func (c *linkClaim) takeLock(lockDir string) (record, error) {
	d := c.lockDir
	st, err := c.dir.Stat()
	if err != nil {
		return record{}, fmt.Errorf("pty: link %s: %w", c.path, err)
	}
	// One lock per link, whatever path spelling reaches it: the key is
	// the directory's identity and the name in it.
	sum := sha256.Sum256([]byte(strconv.FormatUint(st.Dev, 16) + ":" + strconv.FormatUint(st.Ino, 16) + ":" + c.base))
	c.lockName = "link-" + hex.EncodeToString(sum[:12]) + ".lock"
	for attempt := 0; ; attempt++ {
		fd, err := unix.Openat(d.FD(), c.lockName, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return record{}, fmt.Errorf("pty: link %s: lock %s: %w", c.path, filepath.Join(lockDir, c.lockName), err)
		}
		f := os.NewFile(uintptr(fd), filepath.Join(lockDir, c.lockName))
		prev := readRecord(f)
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return record{}, fmt.Errorf("%w: %s is held by %s (lock %s); stop that port first or choose another link path",
					ErrLinkBusy, c.path, prev.holder(), filepath.Join(lockDir, c.lockName))
			}
			return record{}, fmt.Errorf("pty: link %s: lock: %w", c.path, err)
		}
		// The holder removes the file at Close: if that happened
		// between our open and our lock, ours is a dead file; retry.
		var fst, pst unix.Stat_t
		if err := unix.Fstat(fd, &fst); err == nil && unix.Fstatat(d.FD(), c.lockName, &pst, unix.AT_SYMLINK_NOFOLLOW) == nil &&
			fst.Ino == pst.Ino && fst.Dev == pst.Dev {
			c.lock = f
			return readRecord(f), nil
		}
		f.Close()
		if attempt > 10 {
			return record{}, fmt.Errorf("pty: link %s: lock %s keeps being replaced", c.path, c.lockName)
		}
	}
}

// readRecord reads a lock file's record (empty if unreadable).
func readRecord(f *os.File) record {
	b := make([]byte, maxRecord)
	n, _ := f.ReadAt(b, 0)
	return parseRecord(b[:n])
}

// writeRecord replaces the locked file's record with r.
func (c *linkClaim) writeRecord(r record) error {
	if err := c.lock.Truncate(0); err != nil {
		return fmt.Errorf("pty: link %s: write lock record: %w", c.path, err)
	}
	if _, err := c.lock.WriteAt([]byte(r.String()), 0); err != nil {
		return fmt.Errorf("pty: link %s: write lock record: %w", c.path, err)
	}
	return nil
}

// close gives up the claim. With remove, the link is removed if it still
// points at tty, and so is the record; without, both stay for a later
// process to prove the link its own (Release, or a failed Open that never
// made the link). The lock is released either way.
func (c *linkClaim) close(remove bool, tty string) error {
	if c == nil {
		return nil
	}
	var errs []error
	if remove && c.dir != nil {
		if target, err := c.dir.Readlinkat(c.base); err == nil && target == tty {
			if err := unix.Unlinkat(c.dir.FD(), c.base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("pty: remove link %s: %w", c.path, err))
			}
		}
		if c.lock != nil {
			if err := unix.Unlinkat(c.lockDir.FD(), c.lockName, 0); err != nil && !errors.Is(err, unix.ENOENT) {
				errs = append(errs, fmt.Errorf("pty: remove lock: %w", err))
			}
		}
	}
	if c.lock != nil {
		if err := c.lock.Close(); err != nil {
			errs = append(errs, fmt.Errorf("pty: %w", err))
		}
		c.lock = nil
	}
	c.lockDir.Close()
	c.dir.Close()
	return errors.Join(errs...)
}

// fileMode turns a stat mode's type bits into an os.FileMode for
// describeMode.
func fileMode(m uint32) os.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		return os.ModeDir
	case unix.S_IFCHR:
		return os.ModeDevice | os.ModeCharDevice
	case unix.S_IFBLK:
		return os.ModeDevice
	case unix.S_IFIFO:
		return os.ModeNamedPipe
	case unix.S_IFSOCK:
		return os.ModeSocket
	case unix.S_IFREG:
		return 0
	}
	return os.ModeIrregular
}
