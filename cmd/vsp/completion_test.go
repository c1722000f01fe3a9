//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service/config"
)

// completionEnv is an environment for a shell that completes vsp: `vsp`
// on PATH, HOME and the XDG directories in an empty directory, and the
// settings in extra.
func completionEnv(t *testing.T, extra ...string) (env []string, home string) {
	t.Helper()
	bin := t.TempDir()
	if err := os.Symlink(bins.Build(t, "vsp"), filepath.Join(bin, "vsp")); err != nil {
		t.Fatal(err)
	}
	home = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VSP_") && !strings.HasPrefix(kv, "XDG_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+bin+":"+os.Getenv("PATH"), "HOME="+home,
		"XDG_RUNTIME_DIR="+home, "XDG_CONFIG_HOME="+home, "XDG_STATE_HOME="+home, "XDG_DATA_HOME="+home)
	return append(env, extra...), home
}

// completeIn runs a shell script in its own process group and returns its
// output; it checks that the script left no process behind.
func completeIn(t *testing.T, env []string, shell string, args ...string) (string, time.Duration) {
	t.Helper()
	cmd := exec.Command(shell, args...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\n%s%s", shell, args, err, out.String(), errOut.String())
	}
	took := time.Since(start)
	if err := syscall.Kill(-cmd.Process.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Errorf("completing left processes behind (kill -0 -%d: %v)", cmd.Process.Pid, err)
	}
	return out.String(), took
}

// completionWords splits a command line as a shell does for completion:
// the last word is the one under the cursor (empty after a space).
func completionWords(line string) []string {
	w := strings.Fields(line)
	if strings.HasSuffix(line, " ") {
		w = append(w, "")
	}
	return w
}

func bashComplete(t *testing.T, env []string, line string) ([]string, time.Duration) {
	t.Helper()
	words := completionWords(line)
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+w+"'")
	}
	script := "source <(vsp completion bash) || exit 1\n" +
		"COMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
		"COMP_CWORD=" + itoa(len(words)-1) + "\nCOMP_LINE='" + line + "'\nCOMP_POINT=${#COMP_LINE}\n" +
		"_vsp_complete\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
	out, took := completeIn(t, env, testenv.Tool(t, "bash"), "-c", script)
	return lines(out), took
}

func zshComplete(t *testing.T, env []string, line string) []string {
	t.Helper()
	words := completionWords(line)
	var quoted []string
	for _, w := range words {
		quoted = append(quoted, "'"+w+"'")
	}
	// compadd and _files are zsh's completion system's; stand-ins print
	// what the script hands them.
	script := "compdef() { :; }\ncompadd() { [[ $1 == -a ]] && print -l -- ${(P)2} }\n_files() { print -- ':files' }\n" +
		"source <(vsp completion zsh) || exit 1\n" +
		"words=(" + strings.Join(quoted, " ") + ")\nCURRENT=" + itoa(len(words)) + "\n_vsp; :\n"
	out, _ := completeIn(t, env, testenv.Tool(t, "zsh"), "-f", "-c", script)
	return lines(out)
}

func fishComplete(t *testing.T, env []string, line string) []string {
	t.Helper()
	script := "vsp completion fish | source; or exit 1\ncomplete -C '" + line + "'\n"
	out, _ := completeIn(t, env, testenv.Tool(t, "fish"), "--no-config", "-c", script)
	var got []string
	for _, l := range lines(out) {
		got = append(got, strings.SplitN(l, "\t", 2)[0])
	}
	return got
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// Acceptance 1: real shells complete subcommands, flags, closed-set flag
// values and the running ports' names.
func TestCompletionShells(t *testing.T) {
	d := startDaemon(t)
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"alpha", "beta"} {
		body := "device = \"" + freeAddr(t) + "\"\ntls = \"off\"\nlink = \"" + filepath.Join(filepath.Dir(d.dir), "tty"+name) + "\"\n"
		if err := os.WriteFile(config.PortFile(d.dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 20*time.Second, "the daemon runs both ports", func() bool {
		return len(d.states(t)) == 2
	})
	// A port file the daemon has not seen: names come from the daemon
	// when it answers.
	env, _ := completionEnv(t, "VSP_SOCKET="+d.socket, "VSP_CONFIG_DIR="+d.dir)
	cases := []struct {
		line string
		want []string // exactly these
		has  []string // at least these
	}{
		{line: "vsp st", want: []string{"status"}},
		{line: "vsp ", has: []string{"run", "create", "status", "list", "completion"}},
		{line: "vsp status ", want: []string{"alpha", "beta"}},
		{line: "vsp delete a", want: []string{"alpha"}},
		{line: "vsp monitor ", want: []string{"alpha", "beta"}},
		{line: "vsp monitor alpha b", want: []string{"beta"}}, // NAME... repeats
		{line: "vsp trust --write ", want: []string{"alpha", "beta"}},
		{line: "vsp run --", has: []string{"--device", "--tls", "--pin", "--log-format", "--help"}},
		{line: "vsp create --", has: []string{"--device", "--wait", "--force"}},
		{line: "vsp run --tls ", want: []string{"off", "legacy", "modern"}},
		{line: "vsp --tls ", want: []string{"off", "legacy", "modern"}},
		{line: "vsp run --trust t", want: []string{"tofu"}},
		{line: "vsp run --log-format ", want: []string{"text", "json", "auto"}},
		{line: "vsp completion ", want: []string{"bash", "zsh", "fish"}},
		{line: "vsp list ", want: nil},
	}
	check := func(t *testing.T, shell, line string, got, want, has []string) {
		t.Helper()
		slices.Sort(got)
		if want != nil || has == nil {
			want = slices.Sorted(slices.Values(want))
			if !slices.Equal(got, want) {
				t.Errorf("%s: %q offers %q, want %q", shell, line, got, want)
			}
		}
		for _, h := range has {
			if !slices.Contains(got, h) {
				t.Errorf("%s: %q offers %q, lacks %q", shell, line, got, h)
			}
		}
	}
	for _, c := range cases {
		got, took := bashComplete(t, env, c.line)
		check(t, "bash", c.line, got, c.want, c.has)
		if took > time.Second {
			t.Errorf("bash: %q took %v", c.line, took)
		}
	}
	t.Run("zsh", func(t *testing.T) {
		for _, c := range cases {
			check(t, "zsh", c.line, zshComplete(t, env, c.line), c.want, c.has)
		}
	})
	t.Run("fish", func(t *testing.T) {
		for _, c := range cases {
			check(t, "fish", c.line, fishComplete(t, env, c.line), c.want, c.has)
		}
	})

	// Without a daemon the names come from the port directory, at once.
	dir := t.TempDir()
	for _, name := range []string{"gamma", "delta"} {
		if err := os.WriteFile(config.PortFile(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env, _ = completionEnv(t, "VSP_SOCKET="+filepath.Join(dir, "none.sock"), "VSP_CONFIG_DIR="+dir)
	got, took := bashComplete(t, env, "vsp status ")
	check(t, "bash (no daemon)", "vsp status ", got, []string{"delta", "gamma"}, nil)
	if took > time.Second {
		t.Errorf("bash (no daemon): took %v", took)
	}
	// Path flags complete file names.
	got, _ = bashComplete(t, env, "vsp run --config-dir "+dir+"/g")
	check(t, "bash", "--config-dir", got, []string{filepath.Join(dir, "gamma.toml")}, nil)
}

// Acceptance 1: completing `vsp run --` (root's default paths, nothing
// set) runs nothing: it answers within a second and creates no socket, file
// or process.
func TestCompletionRunsNothing(t *testing.T) {
	env, home := completionEnv(t)
	defaults := config.DefaultPaths()
	type snap map[string][]string
	snapshot := func() snap {
		s := snap{}
		for _, dir := range []string{filepath.Dir(defaults.Socket), defaults.ConfigDir, filepath.Dir(defaults.KnownDevices), home} {
			entries, err := os.ReadDir(dir)
			if err != nil {
				s[dir] = []string{"(" + err.Error() + ")"}
				continue
			}
			for _, e := range entries {
				if !strings.HasSuffix(e.Name(), ".lock") { // other tests' tty link locks come and go
					s[dir] = append(s[dir], e.Name())
				}
			}
		}
		return s
	}
	before := snapshot()
	for _, line := range []string{"vsp run --", "vsp run -- ", "vsp run ", "vsp service ", "vsp demo --", "vsp status "} {
		got, took := bashComplete(t, env, line)
		if took > time.Second {
			t.Errorf("%q took %v", line, took)
		}
		if strings.HasSuffix(line, "--") && !slices.Contains(got, "--help") {
			t.Errorf("%q offers %q", line, got)
		}
	}
	// The legacy urfave/cli request is answered, not run.
	if out, took := completeIn(t, env, bins.Build(t, "vsp"), "run", "--", "--generate-bash-completion"); took > time.Second || strings.Contains(out, "daemon") {
		t.Errorf("vsp run -- --generate-bash-completion: %q in %v", out, took)
	}
	after := snapshot()
	for dir, names := range after {
		if !slices.Equal(before[dir], names) {
			t.Errorf("completing changed %s: before %q, after %q", dir, before[dir], names)
		}
	}
	if _, err := os.Stat(defaults.Socket); err == nil && !slices.Contains(before[filepath.Dir(defaults.Socket)], filepath.Base(defaults.Socket)) {
		t.Errorf("completing created %s", defaults.Socket)
	}
}
