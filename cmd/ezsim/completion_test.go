package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// The packaged completion scripts complete ezsim's flags and commands in
// real shells, and file names after --flash.
func TestCompletionScripts(t *testing.T) {
	bin := builder.Build(t, "ezsim")
	dir := t.TempDir()
	env := []string{"PATH=" + filepath.Dir(bin) + ":/usr/bin:/bin", "HOME=" + dir}
	shell := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(testenv.Tool(t, name), args...)
		cmd.Env, cmd.Dir = env, dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	if err := exec.Command("touch", filepath.Join(dir, "flash.json")).Run(); err != nil {
		t.Fatal(err)
	}
	bash := func(words ...string) string {
		return shell("bash", "-c", "source <(ezsim completion bash) || exit 1\nCOMP_WORDS=("+strings.Join(words, " ")+")\n"+
			"COMP_CWORD=$((${#COMP_WORDS[@]}-1))\n_ezsim_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"")
	}
	if got := bash("ezsim", "--fla"); strings.TrimSpace(got) != "--flash" {
		t.Errorf("bash: ezsim --fla offers %q", got)
	}
	if got := bash("ezsim", "--flash", "fl"); strings.TrimSpace(got) != "flash.json" {
		t.Errorf("bash: ezsim --flash fl offers %q", got)
	}
	if got := bash("ezsim", "st"); strings.TrimSpace(got) != "status" {
		t.Errorf("bash: ezsim st offers %q", got)
	}
	t.Run("fish", func(t *testing.T) {
		got := shell("fish", "--no-config", "-c", "ezsim completion fish | source; complete -C 'ezsim --ss'")
		got = strings.Join(strings.Fields(got), " ")
		if got != "--ssh --ssl" {
			t.Errorf("fish: ezsim --ss offers %q", got)
		}
	})
	t.Run("zsh", func(t *testing.T) {
		got := shell("zsh", "-f", "-c", "compdef() { :; }\ncompadd() { shift; print -l -- \"$@\" }\n_files() { print -- :files }\n"+
			"source <(ezsim completion zsh) || exit 1\nwords=(ezsim --flash '')\nCURRENT=3\n_ezsim")
		if strings.TrimSpace(got) != ":files" {
			t.Errorf("zsh: ezsim --flash offers %q", got)
		}
	})
}
