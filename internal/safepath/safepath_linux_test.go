//go:build linux

package safepath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStateDir: the per-user runtime directory is used only when it is the
// user's own with mode 0700; one another user made first is refused,
// naming it, and nothing is made in it. The checks take the uid as a
// parameter, so root plays the user (uid 65534) here; the binary test
// (cmd/vsp TestHostileUnprivileged) does it with a real setuid.
func TestStateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make directories owned by other users")
	}
	const user, other = 65534, 65533
	tests := []struct {
		name   string
		setup  func(t *testing.T, d string)
		uid    int
		reason string // "" = accepted
	}{
		{"missing: created 0755 for root (the vsp group reaches the socket)", func(*testing.T, string) {}, 0, ""},
		{"user's own 0700", func(t *testing.T, d string) { mkdir(t, d, 0o700, user) }, user, ""},
		{"user's own 0755", func(t *testing.T, d string) { mkdir(t, d, 0o755, user) }, user, "mode 0755"},
		{"another user's 0777", func(t *testing.T, d string) { mkdir(t, d, 0o777, other) }, user, "owned by uid 65533"},
		{"another user's 0700", func(t *testing.T, d string) { mkdir(t, d, 0o700, other) }, user, "owned by uid 65533"},
		{"root's 0755 for root", func(t *testing.T, d string) { mkdir(t, d, 0o755, 0) }, 0, ""},
		{"root's 0775 for root", func(t *testing.T, d string) { mkdir(t, d, 0o775, 0) }, 0, "writable by group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			top := t.TempDir()
			must(t, os.Chmod(top, os.ModeSticky|0o777)) // like /tmp
			d := filepath.Join(top, "vsp-65534")
			tt.setup(t, d)
			dir, err := StateDir(d, tt.uid)
			if tt.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer dir.Close()
				st, _ := dir.Stat()
				if strings.HasPrefix(tt.name, "missing") && st.Mode&0o777 != 0o755 {
					t.Fatalf("created with mode %04o", st.Mode&0o777)
				}
				return
			}
			var se *Error
			if err == nil || !errors.As(err, &se) || se.Path != d || !strings.Contains(err.Error(), tt.reason) ||
				!errors.Is(err, ErrUntrusted) {
				t.Fatalf("StateDir = %v; want a refusal naming %s and %q", err, d, tt.reason)
			}
			t.Log(err)
		})
	}
}

// TestOpenDirSymlinks: symlinks of root or the user are followed (also
// relative ones, with ..), another user's are refused; loops end.
func TestOpenDirSymlinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown symlinks")
	}
	top := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(top, "a", "b"), 0o755))
	must(t, os.Symlink("../a/b", filepath.Join(top, "a", "rel")))
	must(t, os.Symlink(filepath.Join(top, "a"), filepath.Join(top, "abs")))
	must(t, os.Symlink("loop", filepath.Join(top, "loop")))
	must(t, os.Symlink(filepath.Join(top, "a"), filepath.Join(top, "theirs")))
	must(t, os.Lchown(filepath.Join(top, "theirs"), 65534, 65534))
	for _, tt := range []struct {
		path string
		ok   bool
	}{
		{filepath.Join(top, "a", "rel"), true},
		{filepath.Join(top, "abs", "rel"), true},
		{filepath.Join(top, "abs", "b", "new", "deeper"), true},
		{filepath.Join(top, "loop"), false},
		{filepath.Join(top, "theirs", "b"), false},
	} {
		d, err := OpenDir(tt.path, 0, true, 0o755)
		if (err == nil) != tt.ok {
			t.Errorf("OpenDir(%s) = %v, want ok=%v", tt.path, err, tt.ok)
		}
		d.Close()
	}
	if _, err := os.Stat(filepath.Join(top, "a", "b", "new", "deeper")); err != nil {
		t.Fatalf("missing directories not created: %v", err)
	}
}

func mkdir(t *testing.T, d string, mode os.FileMode, uid int) {
	t.Helper()
	must(t, os.Mkdir(d, mode))
	must(t, os.Chmod(d, mode))
	must(t, os.Chown(d, uid, uid))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
