package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/cmd/internal/clidocs"
)

// docsDir is the repository's docs directory, seen from this package.
const docsDir = "../../docs"

func quietEnv() *env {
	return &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard}
}

// TestCLIDocsUpToDate fails when docs/cli.md or docs/man/vsp.1 differ from
// what the CLI definition generates.
func TestCLIDocsUpToDate(t *testing.T) {
	files, err := cliDocs(quietEnv())
	if err != nil {
		t.Fatal(err)
	}
	if d := clidocs.Diff(docsDir, files); len(d) > 0 {
		t.Errorf("the CLI reference in docs/ is out of date with the CLI definition;\n"+
			"run `make docs` and commit the result:\n  %s", strings.Join(d, "\n  "))
	}
}

// TestCLIDocsSeeNewFlag shows that the check above catches a flag added
// without regenerating: against a reference generated from the CLI as it
// is, both files must differ, at the new flag.
func TestCLIDocsSeeNewFlag(t *testing.T) {
	ref := t.TempDir()
	current, err := cliDocs(quietEnv())
	if err != nil {
		t.Fatal(err)
	}
	if err := clidocs.Write(ref, current); err != nil {
		t.Fatal(err)
	}
	app := newApp(quietEnv())
	found := false
	for _, c := range app.Commands {
		if c.Name == "run" {
			c.Flags = append(c.Flags, &cli.BoolFlag{Name: "docs-test-new-flag", Usage: "added by the test"})
			found = true
		}
	}
	if !found {
		t.Fatal("no run command")
	}
	files, err := renderDocs(app)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("the CLI generated no documentation files")
	}
	d := clidocs.Diff(ref, files)
	if len(d) != len(files) {
		t.Fatalf("a new flag changed %d of %d files: %q", len(d), len(files), d)
	}
	for _, s := range d {
		if !strings.Contains(s, "docs-test-new-flag") {
			t.Errorf("difference does not point at the new flag: %s", s)
		}
	}
}

// TestGenDocsCommand runs `vsp gen-docs DIR`, what `make docs` runs, and
// checks it writes exactly what the up-to-date test compares against.
func TestGenDocsCommand(t *testing.T) {
	dir := t.TempDir()
	var stderr strings.Builder
	if code := run(context.Background(), []string{"vsp", "gen-docs", dir}, strings.NewReader(""), io.Discard, &stderr); code != exitOK {
		t.Fatalf("gen-docs: exit %d: %s", code, stderr.String())
	}
	files, err := cliDocs(quietEnv())
	if err != nil {
		t.Fatal(err)
	}
	if d := clidocs.Diff(dir, files); len(d) > 0 {
		t.Errorf("gen-docs wrote other files than the test expects: %q", d)
	}
	man, err := os.ReadFile(filepath.Join(dir, "man", "vsp.1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(man), ".nh\n.TH vsp 1") && !strings.Contains(string(man), ".TH vsp 1") {
		t.Errorf("man page has no section-1 title line:\n%.200s", man)
	}
	if code := run(context.Background(), []string{"vsp", "gen-docs"}, strings.NewReader(""), io.Discard, io.Discard); code != exitUsage {
		t.Errorf("gen-docs without DIR: exit %d, want %d", code, exitUsage)
	}
}
