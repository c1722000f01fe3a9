package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	port := func(link, dev string) string {
		return "# comment\nlink = \"" + link + "\"\ndevice = \"" + dev + "\"\ntls = \"off\"\n"
	}
	listen := func(link, addr string) string {
		return "link = \"" + link + "\"\ntls = \"off\"\nlisten = \"" + addr + "\"\n"
	}
	writeFiles(t, dir, map[string]string{
		"a.toml":          port("/dev/ttyVSP0", "10.0.0.1:1470"),
		"b.toml":          port("/dev/ttyVSP0", "10.0.0.2:1470"), // same link as a
		"c.toml":          port("/dev/ttyVSP2", "10.0.0.3:1470"),
		"d.toml":          "link = 5\n",
		"e.toml":          listen("/dev/ttyVSP4", ":1470"),
		"f.toml":          listen("/dev/ttyVSP5", "127.0.0.1:1470"), // overlaps e's wildcard
		"g.toml":          listen("/dev/ttyVSP6", "127.0.0.1:1471"),
		"bad name.toml":   port("/dev/ttyVSP7", "10.0.0.7:1470"),
		".hidden.toml":    "garbage",
		".#c.toml":        "garbage",
		"#c.toml#":        "garbage",
		"c.toml~":         "garbage",
		".c.toml.swp":     "garbage",
		"c.toml.tmp":      "garbage",
		"c.toml.bak":      "garbage",
		"c.toml.dpkg-new": "garbage",
		"README":          "garbage",
		".toml":           "garbage",
	})
	if err := os.Mkdir(filepath.Join(dir, "sub.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("c.toml", filepath.Join(dir, "h.toml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("nowhere.toml", filepath.Join(dir, "dangling.toml")); err != nil {
		t.Fatal(err)
	}

	ports, failed, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(ports), []string{"g"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ports = %q, want %q", got, want)
	}
	// h is a symlink to c: same link, so both fail.
	if got, want := keys(failed), []string{"a", "b", "bad name", "c", "d", "e", "f", "h"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failed = %q, want %q", got, want)
	}
	pa, pb := filepath.Join(dir, "a.toml"), filepath.Join(dir, "b.toml")
	wantErr := map[string]string{
		"a": pa + `:2:1: link: "/dev/ttyVSP0" is also the link of port "b" (` + pb + `:2:1)`,
		"b": pb + `:2:1: link: "/dev/ttyVSP0" is also the link of port "a" (` + pa + `:2:1)`,
		"e": filepath.Join(dir, "e.toml") + `:3:1: listen: ":1470" overlaps the listen address "127.0.0.1:1470" of port "f" (` + filepath.Join(dir, "f.toml") + `:3:1)`,
		"d": filepath.Join(dir, "d.toml") + `:1:1: link: want a string, got integer 5 (the tty symlink path; TCP link tuning is the [net] table)`,
	}
	for name, want := range wantErr {
		if got := failed[name].Error(); !strings.HasPrefix(got, want) {
			t.Errorf("failed[%q] = %q, want prefix %q", name, got, want)
		}
	}
	for name, err := range failed {
		if !errors.Is(err, ErrConflict) && !errors.Is(err, ErrType) && !errors.Is(err, ErrName) && !errors.Is(err, ErrMissing) {
			t.Errorf("failed[%q] = %v: unexpected kind", name, err)
		}
		for _, e := range Errors(err) {
			if NameOf(e.File) != name {
				t.Errorf("failed[%q] has an error for file %q", name, e.File)
			}
		}
	}

	if _, _, err := LoadDir(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadDir(missing) err = %v", err)
	}
}

func TestIgnored(t *testing.T) {
	for name, want := range map[string]bool{
		"plc1.toml": false, "a.b.toml": false,
		".plc1.toml": true, ".#plc1.toml": true, "#plc1.toml#": true, "plc1.toml~": true,
		".plc1.toml.swp": true, "plc1.toml.tmp": true, "plc1.tmp": true, ".toml": true, "plc1.TOML": true,
		".plc1.toml.tmp-1234": true,
	} {
		if got := Ignored(name); got != want {
			t.Errorf("Ignored(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestListenOverlap(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{":1470", ":1470", true},
		{":1470", "10.0.0.1:1470", true},
		{"0.0.0.0:1470", "[::1]:1470", true},
		{"10.0.0.1:1470", "10.0.0.2:1470", false},
		{"10.0.0.1:1470", "10.0.0.1:1471", false},
		{"[::]:1", "[::1]:1", true},
	} {
		if got := listenOverlap(tc.a, tc.b); got != tc.want {
			t.Errorf("listenOverlap(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func noTemp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plc1.toml")
	for i, tc := range []struct {
		data string
		perm os.FileMode
	}{
		{"first\n", 0o640},  // creates
		{"second\n", 0o604}, // replaces, mode follows perm exactly
	} {
		if err := WriteAtomic(path, []byte(tc.data), tc.perm); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != tc.data {
			t.Errorf("write %d: content %q, %v", i, got, err)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode() != tc.perm {
			t.Errorf("write %d: mode %v, want %v (%v)", i, fi.Mode(), tc.perm, err)
		}
		noTemp(t, dir)
	}

	// A directory that does not exist.
	err := WriteAtomic(filepath.Join(dir, "nope", "x.toml"), []byte("x"), 0o644)
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: write ") {
		t.Errorf("WriteAtomic into a missing directory: %v", err)
	}

	// The rename fails (the target is a non-empty directory): the old
	// target and its contents stay, no temporary file is left.
	target := filepath.Join(dir, "busy.toml")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, target, map[string]string{"keep": "old"})
	if err := WriteAtomic(target, []byte("new"), 0o644); err == nil {
		t.Error("WriteAtomic over a directory succeeded")
	}
	if got, err := os.ReadFile(filepath.Join(target, "keep")); err != nil || string(got) != "old" {
		t.Errorf("old contents: %q, %v", got, err)
	}
	noTemp(t, dir)

	// A read-only directory (meaningless for root, who may write anyway).
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFiles(t, ro, map[string]string{"p.toml": "old"})
		if err := os.Chmod(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
		if err := WriteAtomic(filepath.Join(ro, "p.toml"), []byte("new"), 0o644); !errors.Is(err, fs.ErrPermission) {
			t.Errorf("WriteAtomic into a read-only directory: %v", err)
		}
		if got, _ := os.ReadFile(filepath.Join(ro, "p.toml")); string(got) != "old" {
			t.Errorf("old file changed: %q", got)
		}
	}

	// A relative path writes in the current directory.
	t.Chdir(dir)
	if err := WriteAtomic("rel.toml", []byte("rel"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "rel.toml")); string(got) != "rel" {
		t.Errorf("relative write: %q", got)
	}
}
