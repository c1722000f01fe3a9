package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/cmd/internal/clidocs"
)

// TestCLIDocsUpToDate fails when docs/cli-ezsim.md or docs/man/ezsim.1
// differ from what `ezsim gen-docs` (run by `make docs`) generates.
func TestCLIDocsUpToDate(t *testing.T) {
	dir := t.TempDir()
	if err := run(context.Background(), []string{"ezsim", "gen-docs", dir}, io.Discard, io.Discard); err != nil {
		t.Fatalf("gen-docs: %v", err)
	}
	var files []clidocs.File
	for _, name := range []string{"cli-ezsim.md", "man/ezsim.1"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "--listen") {
			t.Errorf("%s: generated reference lacks the --listen flag", name)
		}
		files = append(files, clidocs.File{Path: name, Data: data})
	}
	if d := clidocs.Diff("../../docs", files); len(d) > 0 {
		t.Errorf("the ezsim CLI reference in docs/ is out of date with its CLI definition;\n"+
			"run `make docs` and commit the result:\n  %s", strings.Join(d, "\n  "))
	}
}
