package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
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

// Two ports conflict when they share a link (compared cleaned) or their
// listen addresses overlap; the error is at the port's own key and names
// the other file:line.
func TestConflicts(t *testing.T) {
	dir := t.TempDir()
	port := func(name, body string) *Port {
		t.Helper()
		path := filepath.Join(dir, name+".toml")
		if err := os.WriteFile(path, []byte("# comment\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	dial := func(name, link string) *Port {
		return port(name, "link = \""+link+"\"\ndevice = \"10.0.0.1:1470\"\ntls = \"off\"\n")
	}
	listen := func(name, link, addr string) *Port {
		return port(name, "link = \""+link+"\"\ntls = \"off\"\nlisten = \""+addr+"\"\n")
	}
	at := func(name string, line int) string {
		return filepath.Join(dir, name+".toml") + ":" + strconv.Itoa(line) + ":1"
	}
	a := dial("a", "/dev/ttyVSP0")
	for _, tc := range []struct {
		p      *Port
		others []*Port
		want   []string // the messages, in order; none = no conflict
	}{
		{dial("b", "/dev/ttyVSP0"), []*Port{a},
			[]string{at("b", 2) + `: link: "/dev/ttyVSP0" is also the link of port "a" (` + at("a", 2) + ")"}},
		{dial("b", "/dev/ttyVSP1"), []*Port{a}, nil},
		{a, []*Port{a}, nil}, // itself, as when a running port's file is reloaded
		{listen("e", "/dev/ttyE", ":1470"), []*Port{listen("f", "/dev/ttyF", "127.0.0.1:1470"), a},
			[]string{at("e", 4) + `: listen: ":1470" overlaps the listen address "127.0.0.1:1470" of port "f" (` + at("f", 4) + ")"}},
		{listen("e", "/dev/ttyVSP0", "127.0.0.1:1471"), []*Port{listen("f", "/dev/ttyF", "127.0.0.1:1470"), a},
			[]string{at("e", 2) + `: link: "/dev/ttyVSP0" is also the link of port "a" (` + at("a", 2) + ")"}},
		{listen("e", "/dev/ttyF", ":1470"), []*Port{listen("f", "/dev/ttyF", "127.0.0.1:1470")},
			[]string{at("e", 2) + `: link: "/dev/ttyF" is also the link of port "f" (` + at("f", 2) + ")",
				at("e", 4) + `: listen: ":1470" overlaps the listen address "127.0.0.1:1470" of port "f" (` + at("f", 4) + ")"}},
		// A port built in code has no lines: its file alone is named.
		{&Port{Name: "c", File: "c.toml", Link: "/dev/ttyVSP0"}, []*Port{a},
			[]string{`c.toml: link: "/dev/ttyVSP0" is also the link of port "a" (` + at("a", 2) + ")"}},
		{dial("b", "/dev/ttyVSP0"), []*Port{{Name: "c", File: "c.toml", Link: "/dev/ttyVSP0"}},
			[]string{at("b", 2) + `: link: "/dev/ttyVSP0" is also the link of port "c" (c.toml)`}},
	} {
		err := Conflicts(tc.p, tc.others)
		var got []string
		for _, e := range Errors(err) {
			got = append(got, e.Error())
			if !errors.Is(e, ErrConflict) {
				t.Errorf("Conflicts(%s): %v is not ErrConflict", tc.p.Name, e)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Conflicts(%s, ...):\n got %q\nwant %q", tc.p.Name, got, tc.want)
		}
		// Symmetric: each other port conflicts with p exactly when p
		// conflicts with it.
		for _, q := range tc.others {
			if (Conflicts(tc.p, []*Port{q}) == nil) != (Conflicts(q, []*Port{tc.p}) == nil) {
				t.Errorf("Conflicts(%s, %s) and Conflicts(%s, %s) disagree", tc.p.Name, q.Name, q.Name, tc.p.Name)
			}
		}
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
