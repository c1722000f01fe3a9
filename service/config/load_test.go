//go:build linux

package config

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// returns runs f and fails the test if it does not return within 5 s: a
// loader that blocks on a FIFO must fail the test, not hang it.
func returns[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not return within 5s", what)
		panic("unreachable")
	}
}

// The one port-file loader reads regular files (a symlink to one is fine)
// and refuses everything else at once, as an *Error of kind ErrRead for
// that path, never blocking.
func TestLoadOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	const body = "link = \"/dev/ttyVSP0\"\ndevice = \"10.0.0.1:1470\"\ntls = \"off\"\n"
	path := func(name string) string { return filepath.Join(dir, name+".toml") }
	write := func(name, data string) {
		if err := os.WriteFile(path(name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	link := func(name, target string) {
		if err := os.Symlink(target, path(name)); err != nil {
			t.Fatal(err)
		}
	}
	write("regular", body)
	link("viasymlink", "regular.toml")
	if err := syscall.Mkfifo(path("fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path("directory"), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path("socket"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	link("devnull", "/dev/null")
	// Just over the cap, as comments would make it; and a sparse one
	// whose size alone says no.
	write("oversize", body+strings.Repeat("#", maxFileSize-len(body))+"\n")
	write("sparse", "")
	if err := os.Truncate(path("sparse"), 1<<40); err != nil {
		t.Fatal(err)
	}
	link("loop", "loop.toml")
	link("dangling", "nowhere.toml")
	link("readfails", "/proc/self/mem") // regular, size 0, and read(2) says EIO, even to root

	for _, tc := range []struct {
		name string
		want string  // "" = loads; else a part of the message
		is   []error // what errors.Is must match besides ErrRead
	}{
		{"regular", "", nil},
		{"viasymlink", "", nil},
		{"fifo", "a FIFO (named pipe), not a regular file", nil},
		{"directory", "a directory, not a regular file", nil},
		{"socket", "a socket, not a regular file", nil},
		{"devnull", "a character device, not a regular file", nil},
		{"oversize", "larger than 1048576 bytes", nil},
		{"sparse", "larger than 1048576 bytes", nil},
		{"loop", "too many levels of symbolic links", nil},
		{"dangling", "no such file or directory", []error{fs.ErrNotExist}},
		{"readfails", "input/output error", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			type result struct {
				p   *Port
				err error
			}
			r := returns(t, "Load("+tc.name+")", func() result { p, err := Load(path(tc.name)); return result{p, err} })
			if tc.want == "" {
				if r.err != nil || r.p.Name != tc.name || r.p.Link != "/dev/ttyVSP0" {
					t.Fatalf("Load = %+v, %v; want port %s", r.p, r.err, tc.name)
				}
				return
			}
			var e *Error
			if !errors.As(r.err, &e) || e.File != path(tc.name) || !errors.Is(r.err, ErrRead) || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("Load = %v; want an *Error for %s of kind ErrRead saying %q", r.err, path(tc.name), tc.want)
			}
			for _, target := range tc.is {
				if !errors.Is(r.err, target) {
					t.Errorf("Load error %v does not match %v", r.err, target)
				}
			}
		})
	}

	// Not readable by its owner's permission bits (meaningless for root,
	// who reads it anyway: the /proc/self/mem case above covers a read
	// error for root).
	if os.Geteuid() != 0 {
		write("noperm", body)
		if err := os.Chmod(path("noperm"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path("noperm")); !errors.Is(err, ErrRead) || !errors.Is(err, fs.ErrPermission) {
			t.Errorf("Load(noperm) = %v; want ErrRead and fs.ErrPermission", err)
		}
	}

	// What counts is the file that was opened: a FIFO swapped in between
	// the check of the path and the open is refused too, at once.
	fifo, err := os.OpenFile(path("fifo"), os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fifo.Close()
	err = returns(t, "readOpened(fifo)", func() error { _, err := readOpened(path("regular"), fifo); return err })
	var e *Error
	if !errors.As(err, &e) || e.File != path("regular") || !strings.Contains(err.Error(), "FIFO") {
		t.Errorf("readOpened(a FIFO) = %v; want an *Error for the path naming the FIFO", err)
	}
}
