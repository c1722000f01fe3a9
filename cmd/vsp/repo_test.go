//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// TestNoTrackedBinaries fails when git tracks a compiled binary (an
// executable, object file, shared library or archive): build outputs are
// ignored (.gitignore), never committed.
func TestNoTrackedBinaries(t *testing.T) {
	git := testenv.Tool(t, "git")
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		testenv.Missing(t, "the source tree is not a git checkout (no .git): "+err.Error())
	}
	root := strings.TrimSpace(string(top))
	cmd := exec.Command(git, "ls-files", "-z")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	names := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	if len(names) < 10 {
		t.Fatalf("git ls-files lists %d files; want the repository's files", len(names))
	}
	for _, name := range names {
		kind, err := binaryKind(filepath.Join(root, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if kind != "" {
			t.Errorf("%s is a compiled binary (%s) tracked by git; `git rm --cached %s` and ignore it in .gitignore", name, kind, name)
		}
	}
}

// TestBinaryKind shows that the check above recognises each kind of
// binary, including the vsp binary the tests build, and leaves text alone.
func TestBinaryKind(t *testing.T) {
	pe := make([]byte, 0x84)
	copy(pe, "MZ")
	binary.LittleEndian.PutUint32(pe[0x3c:], 0x80)
	copy(pe[0x80:], "PE\x00\x00")
	tests := []struct {
		name string
		data []byte
		want string // "" for not a binary
	}{
		{"a.out", []byte("\x7fELF\x02\x01\x01\x00rest"), "ELF"},
		{"prog", pe, "PE (Windows)"},
		{"macho64", []byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"), "Mach-O"},
		{"macho32be", []byte("\xfe\xed\xfa\xce\x00\x00\x00\x07"), "Mach-O"},
		{"universal", []byte("\xca\xfe\xba\xbe\x00\x00\x00\x02"), "Mach-O"},
		{"lib", []byte("!<arch>\n__.PKGDEF"), "ar archive"},
		{"x.exe", []byte("#!/bin/sh\n"), "*.exe"},
		{"vsp.test", []byte("text"), "*.test"},
		{"libfoo.so", []byte("text"), "*.so"},
		{"libfoo.so.1", []byte("text"), "*.so"},
		{"pkg.a", []byte("text"), "*.a"},
		{"main.go", []byte("package main\n"), ""},
		{"MZ.txt", []byte("MZ is how this text starts, with no PE header after it"), ""},
		{"empty", nil, ""},
		{"notes.so.md", []byte("text"), ""},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, tt.name)
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := binaryKind(p)
			if err != nil || got != tt.want {
				t.Errorf("binaryKind(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
			}
		})
	}
	t.Run("built vsp", func(t *testing.T) {
		got, err := binaryKind(bins.Build(t, "vsp"))
		if err != nil || got == "" {
			t.Errorf("binaryKind(vsp binary) = %q, %v; want a binary kind", got, err)
		}
	})
}

// binaryKind names the kind of compiled binary the file at path is, from
// its name and its first bytes, or returns "" for anything else. Files
// tracked but absent from the work tree, symlinks and submodules are not
// binaries.
func binaryKind(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", nil
	}
	if m := binaryName.FindStringSubmatch(filepath.Base(path)); m != nil {
		return "*." + m[1], nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 0x200)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", err
	}
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte("\x7fELF")):
		return "ELF", nil
	case bytes.HasPrefix(head, []byte("!<arch>\n")):
		return "ar archive", nil
	case len(head) >= 4 && isMachO(binary.BigEndian.Uint32(head)):
		return "Mach-O", nil
	case bytes.HasPrefix(head, []byte("MZ")) && len(head) >= 0x40:
		// A PE file: the DOS header's e_lfanew points at "PE\0\0".
		off := int(binary.LittleEndian.Uint32(head[0x3c:]))
		if off+4 <= len(head) && string(head[off:off+4]) == "PE\x00\x00" {
			return "PE (Windows)", nil
		}
		if off+4 > len(head) {
			sig := make([]byte, 4)
			if _, err := f.ReadAt(sig, int64(off)); err == nil && string(sig) == "PE\x00\x00" {
				return "PE (Windows)", nil
			}
		}
	}
	return "", nil
}

// binaryName matches the names of build outputs whatever their content:
// executables, test binaries, objects, libraries and archives.
var binaryName = regexp.MustCompile(`\.(exe|test|o|a|so|dll|dylib)(\.[0-9]+)*$`)

// isMachO reports whether magic (the first four bytes, big-endian) is a
// Mach-O or universal ("fat") binary's.
func isMachO(magic uint32) bool {
	switch magic {
	case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe, 0xcafebabe:
		return true
	}
	return false
}
