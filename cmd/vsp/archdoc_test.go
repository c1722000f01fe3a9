package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// TestPackageMapMatchesPackages fails when the package map in
// docs/architecture.md and the module's packages disagree: every package
// (the examples under docs/ aside, which the `docs` row covers) has a row,
// every row names a package that exists, and each package states its one
// job in a doc.go.
func TestPackageMapMatchesPackages(t *testing.T) {
	goTool := testenv.Tool(t, "go")
	out, err := exec.Command(goTool, "list", "-f", "{{.ImportPath}} {{.Dir}}", "github.com/vsp-dev/vsp/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		imp, dir, _ := strings.Cut(line, " ")
		rel := strings.TrimPrefix(strings.TrimPrefix(imp, "github.com/vsp-dev/vsp"), "/")
		if rel == "" || strings.HasPrefix(rel, "docs/") {
			continue
		}
		pkgs = append(pkgs, rel)
		if _, err := os.Stat(filepath.Join(dir, "doc.go")); err != nil {
			t.Errorf("package %s has no doc.go stating its one job", rel)
		}
	}
	f, err := os.Open(filepath.Join(docsDir, "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `([a-z0-9/]+)` \\|")
	var rows []string
	inMap := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## ") {
			inMap = line == "## Package map"
			continue
		}
		if m := row.FindStringSubmatch(line); inMap && m != nil && m[1] != "docs" {
			rows = append(rows, m[1])
		}
	}
	if len(rows) == 0 {
		t.Fatal("docs/architecture.md has no package map rows under \"## Package map\"")
	}
	for _, p := range pkgs {
		if !slices.Contains(rows, p) {
			t.Errorf("package %s is missing from the package map in docs/architecture.md", p)
		}
	}
	for _, r := range rows {
		if !slices.Contains(pkgs, r) {
			t.Errorf("docs/architecture.md's package map lists %s, which is not a package of the module", r)
		}
	}
}
