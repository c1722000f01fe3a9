//go:build linux

package main

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRestrictPlatform runs the commands as they are set up on darwin and
// windows, where ptys do not exist, and checks the error they give.
func TestRestrictPlatform(t *testing.T) {
	link := tempLink(t)
	tests := []struct {
		goos string
		args []string
		want string // "" means the command must succeed
	}{
		{"darwin", []string{"run", "--device", "127.0.0.1:1", "--link", link}, "run: not supported on this platform (darwin/arm64)"},
		{"darwin", []string{"run"}, "run: not supported on this platform (darwin/arm64)"},
		{"windows", []string{"demo", "--link", link}, "demo: not supported on this platform (windows/arm64)"},
		{"windows", []string{"service", "install"}, "service install: not supported on this platform (windows/arm64)"},
		{"darwin", []string{"service", "start"}, "service start: not supported on this platform (darwin/arm64)"},
		{"darwin", []string{"version"}, ""},
		{"windows", []string{"completion", "bash"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.goos+"/"+strings.Join(tt.args[:1], "_"), func(t *testing.T) {
			var out strings.Builder
			e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &out}
			app := newApp(e)
			restrictFor(app.Commands, tt.goos, "arm64")
			err := app.RunContext(context.Background(), append([]string{"vsp"}, tt.args...))
			if tt.want == "" {
				if err != nil || out.Len() == 0 {
					t.Fatalf("err %v, output %q", err, out.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errors.ErrUnsupported) {
				t.Fatalf("err = %v, want one containing %q and wrapping errors.ErrUnsupported", err, tt.want)
			}
		})
	}
}
