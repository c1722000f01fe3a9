package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// `make build` stamps ezsim's version and commit as it does vsp's, and
// `ezsim --version` prints them.
func TestVersionStampedByMakeBuild(t *testing.T) {
	makePath := testenv.Tool(t, "make")
	bin := t.TempDir()
	cmd := exec.Command(makePath, "-s", "build", "BIN="+bin, "VERSION=1.2.3-test", "COMMIT=feedbeef")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	for _, c := range [][]string{{"ezsim", "--version"}, {"vsp", "version"}} {
		out, err := exec.Command(filepath.Join(bin, c[0]), c[1:]...).CombinedOutput()
		if err != nil || !strings.HasPrefix(string(out), c[0]+" 1.2.3-test\ncommit feedbeef\n") {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}
