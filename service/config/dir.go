package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Ext is the extension of port files.
const Ext = ".toml"

// Ignored reports whether a directory entry called name is not a port file:
// anything not ending in ".toml", hidden files (".x.toml", Emacs lock files
// ".#x.toml"), and editor or package-manager leftovers (Emacs "#x.toml#",
// Vim ".x.toml.swp", "x.toml~", "*.tmp", "*.bak", "*.dpkg-new", "*.rpmnew"...,
// all of which do not end in ".toml"). It is the one rule: the daemon applies
// it to its directory scan and to every file event.
func Ignored(name string) bool {
	return !strings.HasSuffix(name, Ext) || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") || name == Ext
}

// NameOf returns the port name for a port file path: its base name without
// ".toml".
func NameOf(path string) string {
	return strings.TrimSuffix(filepath.Base(path), Ext)
}

// Conflicts reports what keeps port p from running beside the ports in
// others: the same link, or listen addresses that compete for one TCP port
// (see listenOverlap). Links are compared as given, cleaned: a caller whose
// ports may have bare link names resolves them first (LinkPath), so that
// "ttyVSP0" and "/dev/ttyVSP0" are one link when the link directory is
// /dev. A port in others with p's name is skipped. The result is nil or
// *Error values (joined when there are several), each at p's key and naming
// the other port and its file:line, so an administrator sees both files.
// The relation is symmetric: a conflicts with b exactly when b conflicts
// with a.
func Conflicts(p *Port, others []*Port) error {
	var errs []*Error
	add := func(key, format string, args ...any) {
		pos := p.pos.lookup(key)
		errs = append(errs, &Error{File: p.File, Line: pos.line, Col: pos.col, Key: key, Err: reasonf(ErrConflict, format, args...)})
	}
	where := func(q *Port, key string) string {
		pos := q.pos.lookup(key)
		if pos.line == 0 {
			return q.File
		}
		return fmt.Sprintf("%s:%d:%d", q.File, pos.line, pos.col)
	}
	for _, q := range others {
		if q.Name == p.Name {
			continue
		}
		if p.Link != "" && filepath.Clean(p.Link) == filepath.Clean(q.Link) {
			add("link", "%q is also the link of port %q (%s)", p.Link, q.Name, where(q, "link"))
		}
		if p.Listen != "" && q.Listen != "" && listenOverlap(p.Listen, q.Listen) {
			add("listen", "%q overlaps the listen address %q of port %q (%s)", p.Listen, q.Listen, q.Name, where(q, "listen"))
		}
	}
	return joinErrors(errs)
}

// listenOverlap reports whether two listen addresses would compete for the
// same port: same port number and the same host, or either is a wildcard.
func listenOverlap(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb {
		return false
	}
	wild := func(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }
	return wild(ha) || wild(hb) || strings.EqualFold(ha, hb)
}

// WriteAtomic replaces path with data so that readers (and the daemon's
// file watch) see either the old file or the new one, never a partial one:
// it writes a hidden temporary file in the same directory (".<name>.tmp-*",
// which Ignored skips), sets perm exactly (regardless of umask), syncs
// it, renames it over path and syncs the directory. On failure path is left
// as it was and the temporary file is removed. If path is a symlink, the
// link itself is replaced by a regular file.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := writeTemp(dir, "."+base+".tmp-*", data, perm)
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			os.Remove(tmp)
		}
	}
	if err != nil {
		return fmt.Errorf("config: write %s: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return nil // the rename happened; syncing the directory is best effort
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("config: write %s: sync directory: %w", path, err)
	}
	return nil
}

// writeTemp creates a temporary file in dir holding data with mode perm,
// synced and closed, and returns its name; on error nothing is left behind.
func writeTemp(dir, pattern string, data []byte, perm os.FileMode) (name string, err error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Chmod(perm); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}
