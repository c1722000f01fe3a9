//go:build unix

package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUntrustedFiles: a port file or settings file another user could have
// written is refused with its path and the reason; root's or the reader's
// own, not writable by others, is read.
func TestUntrustedFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to another user")
	}
	tests := []struct {
		name   string
		mode   os.FileMode
		owner  int
		reason string // "" = accepted
	}{
		{"root 0644", 0o644, 0, ""},
		{"root 0600", 0o600, 0, ""},
		{"world-writable", 0o666, 0, "writable by group or others (mode 0666)"},
		{"group-writable", 0o664, 0, "writable by group or others (mode 0664)"},
		{"another user's", 0o644, 65534, "owned by uid 65534, another user"},
	}
	port := "link = \"/dev/ttyVSP0\"\ndevice = \"10.0.0.1:1470\"\ntls = \"off\"\n"
	for _, tt := range tests {
		for _, kind := range []string{"port file", "settings file"} {
			t.Run(tt.name+"/"+kind, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "p0.toml")
				if err := os.WriteFile(path, []byte(port), 0o600); err != nil {
					t.Fatal(err)
				}
				if kind == "settings file" {
					if err := os.WriteFile(path, []byte("log_level = \"info\"\n"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(path, tt.owner, tt.owner); err != nil {
					t.Fatal(err)
				}
				var err error
				if kind == "port file" {
					_, err = Load(path)
				} else {
					_, err = LoadDaemon(path, true)
				}
				if tt.reason == "" {
					if err != nil {
						t.Fatal(err)
					}
					return
				}
				var ce *Error
				if err == nil || !errors.As(err, &ce) || ce.File != path || !strings.Contains(err.Error(), tt.reason) {
					t.Fatalf("got %v; want an *Error for %s saying %q", err, path, tt.reason)
				}
				t.Log(err)
			})
		}
	}
}
