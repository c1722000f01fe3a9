package clidocs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func testApp() *cli.App {
	return &cli.App{
		Name:        "tool",
		Usage:       "does things",
		Description: "keeps state in /home/u/.config/tool",
		Commands: []*cli.Command{{
			Name:  "serve",
			Usage: "serve",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "dir", Usage: "state `DIR` (not root: under /home/u/.config/tool)", Value: "/home/u/.config/tool/state", EnvVars: []string{"TOOL_DIR"}},
				&cli.BoolFlag{Name: "fast", Usage: "go fast"},
			},
		}},
	}
}

func TestRender(t *testing.T) {
	subst := map[string]string{
		"/home/u/.config/tool":       "/etc/tool",
		"/home/u/.config/tool/state": "/var/lib/tool",
	}
	files, err := Render(testApp(), Options{MarkdownPath: "tool.md", ManPath: "man/tool.1", Subst: subst})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].Path != "tool.md" || files[1].Path != "man/tool.1" {
		t.Fatalf("files: %+v", files)
	}
	md, man := string(files[0].Data), string(files[1].Data)
	tests := []struct {
		name, text, want string
	}{
		{"notice", md, "DO NOT EDIT"},
		{"longest substitution wins", md, `(default: "/var/lib/tool")`},
		{"usage substituted", md, "(not root: under /etc/tool)"},
		{"description substituted", md, "keeps state in /etc/tool"},
		{"env var shown", md, "(env: $TOOL_DIR)"},
		{"bool flag", md, "**--fast**: go fast"},
		{"man title", man, ".TH tool 1"},
		{"man flag", man, "--fast"},
	}
	for _, tt := range tests {
		if !strings.Contains(tt.text, tt.want) {
			t.Errorf("%s: output lacks %q", tt.name, tt.want)
		}
	}
	if strings.Contains(md+man, "/home/u") {
		t.Errorf("per-user path left in output:\n%s", md)
	}
}

func TestRenderNeedsPaths(t *testing.T) {
	if _, err := Render(testApp(), Options{ManPath: "x.1"}); err == nil || !strings.HasPrefix(err.Error(), "clidocs: ") {
		t.Errorf("missing MarkdownPath: err = %v", err)
	}
}

func TestWriteAndDiff(t *testing.T) {
	dir := t.TempDir()
	files := []File{{Path: "a.md", Data: []byte("one\ntwo\n")}, {Path: "man/a.1", Data: []byte("x\n")}}
	if d := Diff(dir, files); len(d) != 2 {
		t.Errorf("before Write: %d differences, want 2 (missing files): %q", len(d), d)
	}
	if err := Write(dir, files); err != nil {
		t.Fatal(err)
	}
	if d := Diff(dir, files); d != nil {
		t.Errorf("after Write: %q", d)
	}
	if err := os.WriteFile(filepath.Join(dir, "a.md"), []byte("one\nTWO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := Diff(dir, files)
	if len(d) != 1 || !strings.Contains(d[0], "line 2") || !strings.Contains(d[0], `"two"`) {
		t.Errorf("after edit: %q", d)
	}
}
