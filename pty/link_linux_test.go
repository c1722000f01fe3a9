//go:build linux

package pty

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cpty "github.com/creack/pty"

	"github.com/vsp-dev/vsp/internal/safepath"
)

// TestLinkBusy: a second Port claiming a live Port's link, under the same
// path or another spelling of it, is refused at once naming the holder;
// the first Port's link stays.
func TestLinkBusy(t *testing.T) {
	dir := t.TempDir()
	link := filepath.Join(dir, "dev", "ttyVSP0")
	locks := filepath.Join(dir, "run")
	p1 := openPort(t, Config{Link: link, LockDir: locks, Name: "first"})
	must(t, os.Symlink(filepath.Join(dir, "dev"), filepath.Join(dir, "alias"))) // our own symlink: trusted
	for _, l := range []string{link, filepath.Join(dir, "alias", "ttyVSP0")} {
		p2, err := Open(Config{Link: l, LockDir: locks, Name: "second"}, nil)
		if err == nil {
			p2.Close()
			t.Fatalf("second Port on %s opened", l)
		}
		want := "pid " + strconv.Itoa(os.Getpid()) + " (port first)"
		if !errors.Is(err, ErrLinkBusy) || !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q: want ErrLinkBusy naming %q", err, want)
		}
		t.Log(err)
		if got, _ := os.Readlink(link); got != p1.Name() {
			t.Fatalf("after the refusal the link points at %q, want %s", got, p1.Name())
		}
	}
	must(t, p1.Close())
	if _, err := os.Lstat(link); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("link left after Close: %v", err)
	}
	if ents, _ := os.ReadDir(locks); len(ents) != 0 {
		t.Fatalf("lock record left after Close: %v", ents)
	}
	// Free again: a new Port takes it.
	openPort(t, Config{Link: link, LockDir: locks, Name: "third"})
}

// TestLinkStaleRepair: a process that died left its link (pointing at a
// pty that is gone) and its record; the next Port proves the link its own
// and repoints it. A link changed since (another target) is not repaired.
func TestLinkStaleRepair(t *testing.T) {
	tests := []struct {
		name    string
		tamper  func(t *testing.T, link string)
		repairs bool
	}{
		{"as left", func(*testing.T, string) {}, true},
		{"repointed by someone", func(t *testing.T, link string) {
			must(t, os.Remove(link))
			must(t, os.Symlink("/etc/hostname", link))
		}, false},
		{"record gone", func(t *testing.T, link string) {
			ents, _ := os.ReadDir(filepath.Join(filepath.Dir(filepath.Dir(link)), "run"))
			for _, e := range ents {
				must(t, os.Remove(filepath.Join(filepath.Dir(filepath.Dir(link)), "run", e.Name())))
			}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			link := filepath.Join(dir, "dev", "ttyVSP0")
			cfg := Config{Link: link, LockDir: filepath.Join(dir, "run"), Name: "VSP0"}
			p1, err := Open(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			// A crash: the lock goes with the process, the link and
			// the record stay (Release does exactly that), and the
			// pty goes away with its last fd.
			must(t, p1.Release())
			// The kernel would give p1's /dev/pts/N to the next pty:
			// a spacer takes it, so the link is stale as after a
			// crash (one pointing at the pty a Port holds is kept
			// whoever made it: TestAdoptKeepsTheTTY).
			before, _ := os.Readlink(link)
			spacer := holdPts(t, before)
			tt.tamper(t, link)
			before, _ = os.Readlink(link)
			p2, err := Open(cfg, nil)
			if !tt.repairs {
				if err == nil {
					p2.Close()
					t.Fatal("a link not provably vsp's was replaced")
				}
				if !errors.Is(err, ErrNotOurs) {
					t.Fatalf("error %v, want ErrNotOurs", err)
				}
				if got, _ := os.Readlink(link); got != before {
					t.Fatalf("refused link changed: %q -> %q", before, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p2.Close()
			if p2.Name() == before {
				t.Fatalf("p2 got %s, the spacer %s: the link (to %s) was not stale", p2.Name(), spacer, before)
			}
			if got, _ := os.Readlink(link); got != p2.Name() {
				t.Fatalf("link points at %q, want %s", got, p2.Name())
			}
			if ents, _ := os.ReadDir(filepath.Dir(link)); len(ents) != 1 {
				t.Fatalf("temporary files left: %v", ents)
			}
		})
	}
}

// TestLinkUntrustedDirectory: a link directory another user could change
// is refused before anything is made in it.
func TestLinkUntrustedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make files owned by another user")
	}
	const other = 65534
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string) (link, bad string)
		ok    bool
	}{
		{"world-writable", func(t *testing.T, dir string) (string, string) {
			d := filepath.Join(dir, "pub")
			must(t, os.Mkdir(d, 0o777))
			must(t, os.Chmod(d, 0o777))
			return filepath.Join(d, "ttyVSP0"), d
		}, false},
		{"group-writable", func(t *testing.T, dir string) (string, string) {
			d := filepath.Join(dir, "grp")
			must(t, os.Mkdir(d, 0o775))
			must(t, os.Chmod(d, 0o775))
			return filepath.Join(d, "sub", "ttyVSP0"), d
		}, false},
		{"another user's directory", func(t *testing.T, dir string) (string, string) {
			d := filepath.Join(dir, "theirs")
			must(t, os.Mkdir(d, 0o755))
			must(t, os.Chown(d, other, other))
			return filepath.Join(d, "ttyVSP0"), d
		}, false},
		{"another user's symlink", func(t *testing.T, dir string) (string, string) {
			victim := filepath.Join(dir, "victim")
			must(t, os.Mkdir(victim, 0o755))
			l := filepath.Join(dir, "sub")
			must(t, os.Symlink(victim, l))
			must(t, os.Lchown(l, other, other))
			return filepath.Join(l, "ttyVSP0"), l
		}, false},
		{"sticky world-writable", func(t *testing.T, dir string) (string, string) {
			d := filepath.Join(dir, "tmp")
			must(t, os.Mkdir(d, 0o777))
			must(t, os.Chmod(d, os.ModeSticky|0o777))
			return filepath.Join(d, "ttyVSP0"), ""
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.Chmod(dir, 0o755))
			link, bad := tt.setup(t, dir)
			p, err := Open(Config{Link: link, LockDir: filepath.Join(dir, "run")}, nil)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				p.Close()
				return
			}
			if err == nil {
				p.Close()
				t.Fatal("Open used an untrusted directory")
			}
			var se *safepath.Error
			if !errors.As(err, &se) || se.Path != bad || !strings.Contains(err.Error(), bad) {
				t.Fatalf("error %q: want a safepath.Error naming %s", err, bad)
			}
			t.Log(err)
			if _, err := os.Lstat(filepath.Join(filepath.Dir(link), "ttyVSP0")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("something was made at the link path: %v", err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "victim", "ttyVSP0")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("link made through the symlink: %v", err)
			}
		})
	}
}

// FuzzParseRecord: a lock record's parser takes any bytes, and a record
// written by String reads back the same.
func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(record{PID: 42, Port: "VSP0", Link: "/dev/ttyVSP0", TTY: "/dev/pts/3"}.String()))
	f.Add([]byte("pid=x\nport\n=\n\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := parseRecord(b)
		if strings.ContainsAny(r.Port+r.Link+r.TTY, "\n\r") {
			return // not writable by String: no round trip
		}
		if got := parseRecord([]byte(r.String())); got != r {
			t.Fatalf("round trip %+v -> %+v", r, got)
		}
	})
}

// holdPts opens ptys until one is name (the kernel gives the lowest free
// number, but other processes, such as test packages running in
// parallel, open and close ptys too), keeps that one open for the test and
// closes the others. If another process holds name meanwhile, that is as
// good: the pty is not the caller's. It returns who holds name.
func holdPts(t *testing.T, name string) string {
	t.Helper()
	var extra []*os.File
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	for range 256 {
		m, s, err := cpty.Open()
		if err != nil {
			t.Fatal(err)
		}
		if s.Name() == name {
			t.Cleanup(func() { s.Close(); m.Close() })
			return "the test"
		}
		extra = append(extra, m, s)
		if _, err := os.Stat(name); err == nil {
			return "another process"
		}
	}
	t.Fatalf("256 ptys opened, none is %s, and nobody holds it", name)
	return ""
}
