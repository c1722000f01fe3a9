package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Strict reports whether missing tools must fail tests instead of skipping
// them (VSP_TEST_STRICT=1, set by .ci/run).
func Strict() bool { return os.Getenv("VSP_TEST_STRICT") == "1" }

// Tool returns the path of an external program, or skips the test with a
// clear reason (fails it in strict mode) when it is not installed.
func Tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed (apt-get install "+name+")")
	}
	return p
}

// Missing skips the test with reason, or fails it in strict mode.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if Strict() {
		t.Fatalf("VSP_TEST_STRICT=1 and %s", reason)
	}
	t.Skip(reason)
}

// Builder builds the module's commands once per test binary.
type Builder struct {
	once sync.Once
	dir  string
	err  error
}

// Build compiles ./cmd/vsp and ./cmd/ezsim into a temporary directory and
// returns the path of the named binary ("vsp" or "ezsim").
func (b *Builder) Build(t testing.TB, name string) string {
	t.Helper()
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", "vsp-bin-")
		if b.err != nil {
			return
		}
		root, err := moduleRoot()
		if err != nil {
			b.err = err
			return
		}
		cmd := exec.Command("go", "build", "-o", b.dir+string(filepath.Separator), "./cmd/vsp", "./cmd/ezsim")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.err = &buildError{out: string(out), err: err}
		}
	})
	if b.err != nil {
		t.Fatalf("testenv: build: %v", b.err)
	}
	return filepath.Join(b.dir, name)
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + "\n" + e.out }

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(string(out[:len(out)-1])), nil
}
