package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Ext is the extension of port files.
const Ext = ".toml"

// Ignored reports whether a directory entry called name is not a port file:
// anything not ending in ".toml", hidden files (".x.toml", Emacs lock files
// ".#x.toml"), and editor or package-manager leftovers (Emacs "#x.toml#",
// Vim ".x.toml.swp", "x.toml~", "*.tmp", "*.bak", "*.dpkg-new", "*.rpmnew"...,
// all of which do not end in ".toml").
func Ignored(name string) bool {
	return !strings.HasSuffix(name, Ext) || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "#") || name == Ext
}

// NameOf returns the port name for a port file path: its base name without
// ".toml".
func NameOf(path string) string {
	return strings.TrimSuffix(filepath.Base(path), Ext)
}

// LoadDir loads every port file in dir (see Ignored for what is skipped).
//
// ports holds the ports that are valid; failed holds, by port name, the
// error of every port file that is not (an *Error or a join of them). A
// port appears in exactly one of the two maps. Ports that conflict with each
// other — the same link, or overlapping listen addresses — all go to
// failed, each error naming the other file: a supervisor keeps running the
// last good configuration of a failed port, so adding a conflicting file
// never takes over a running port. err is set only when dir itself cannot
// be read.
func LoadDir(dir string) (ports map[string]*Port, failed map[string]error, err error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("config: read port directory: %w", err)
	}
	ports = map[string]*Port{}
	failed = map[string]error{}
	for _, e := range entries { // sorted by name
		if Ignored(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		if e.Type()&fs.ModeSymlink != 0 || !e.Type().IsRegular() {
			fi, err := os.Stat(path)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // dangling symlink or removed meanwhile
				}
			} else if !fi.Mode().IsRegular() {
				continue // a directory called x.toml, a fifo...
			}
		}
		p, err := Load(path)
		if err != nil {
			failed[NameOf(path)] = err
			continue
		}
		ports[p.Name] = p
	}
	for name, err := range conflicts(ports) {
		delete(ports, name)
		failed[name] = err
	}
	return ports, failed, nil
}

// conflicts finds ports that cannot run side by side.
func conflicts(ports map[string]*Port) map[string]error {
	names := make([]string, 0, len(ports))
	for n := range ports {
		names = append(names, n)
	}
	sort.Strings(names)
	errs := map[string][]*Error{}
	add := func(p *Port, key string, kind error, format string, args ...any) {
		pos := p.pos.lookup(key)
		errs[p.Name] = append(errs[p.Name], &Error{File: p.File, Line: pos.line, Col: pos.col, Key: key, Err: reasonf(kind, format, args...)})
	}
	where := func(p *Port, key string) string {
		pos := p.pos.lookup(key)
		if pos.line == 0 {
			return p.File
		}
		return fmt.Sprintf("%s:%d:%d", p.File, pos.line, pos.col)
	}
	for i, a := range names {
		for _, b := range names[i+1:] {
			pa, pb := ports[a], ports[b]
			if filepath.Clean(pa.Link) == filepath.Clean(pb.Link) {
				add(pa, "link", ErrConflict, "%q is also the link of port %q (%s)", pa.Link, b, where(pb, "link"))
				add(pb, "link", ErrConflict, "%q is also the link of port %q (%s)", pb.Link, a, where(pa, "link"))
			}
			if pa.Listen != "" && pb.Listen != "" && listenOverlap(pa.Listen, pb.Listen) {
				add(pa, "listen", ErrConflict, "%q overlaps the listen address %q of port %q (%s)", pa.Listen, pb.Listen, b, where(pb, "listen"))
				add(pb, "listen", ErrConflict, "%q overlaps the listen address %q of port %q (%s)", pb.Listen, pa.Listen, a, where(pa, "listen"))
			}
		}
	}
	out := map[string]error{}
	for n, e := range errs {
		out[n] = joinErrors(e)
	}
	return out
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
// which LoadDir ignores), sets perm exactly (regardless of umask), syncs
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
