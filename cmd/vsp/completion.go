package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service/config"
)

// Shell completion. The scripts ask the binary for the candidates of the
// word under the cursor: `vsp __complete WORD... CURRENT` prints one
// candidate per line, or the single line ":files" for "complete a file
// name". Completing never runs a command: run() answers __complete before
// the commands (and their Before hooks) are even parsed, and the only
// outside contact is a short query of the daemon for port names.

// completeCommand is the hidden first argument the scripts call.
const completeCommand = "__complete"

// completeFiles is the answer that asks the shell to complete file names.
const completeFiles = ":files"

// legacyCompletionFlag is urfave/cli's completion flag, which scripts from
// earlier versions append; it is answered like __complete, never run.
const legacyCompletionFlag = "--generate-bash-completion"

// portNamesTimeout bounds the daemon query for port names; past it the
// names come from the port directory.
const portNamesTimeout = 200 * time.Millisecond

const bashCompletion = `# bash completion for vsp
_vsp_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" out
  out=$("${COMP_WORDS[0]}" __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null)
  if [[ "$out" == ":files" ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=($(compgen -f -- "$cur"))
    return 0
  fi
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$out" -- "$cur"))
  return 0
}
complete -F _vsp_complete vsp
`

const zshCompletion = `#compdef vsp
_vsp() {
  local out
  local -a opts
  out="$(${words[1]} __complete "${(@)words[2,CURRENT]}" 2>/dev/null)"
  if [[ "$out" == ":files" ]]; then
    _files
    return
  fi
  [[ -n "$out" ]] || return 1
  opts=("${(@f)out}")
  compadd -a opts
}
# Autoloaded from $fpath (as the Debian package installs it): complete now;
# sourced (source <(vsp completion zsh)): register.
if [[ "${funcstack[1]}" == "_vsp" ]]; then
  _vsp "$@"
else
  compdef _vsp vsp
fi
`

const fishCompletion = `# fish completion for vsp
function __vsp_complete
    set -l args (commandline -opc)
    set -l cur (commandline -ct)
    set -l bin $args[1]
    set -e args[1]
    set -l out ($bin __complete $args "$cur" 2>/dev/null)
    if test "$out" = ":files"
        __fish_complete_path "$cur"
        return
    end
    printf '%s\n' $out
end
complete -c vsp -f -a '(__vsp_complete)'
`

func completionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Load it in the current shell, e.g.  source <(vsp completion bash)\n" +
			"or install it where your shell looks (the Debian package does this).\n" +
			"The scripts complete subcommands, flags, the values of --tls, --trust,\n" +
			"--log-format and similar flags, port names (from the daemon, else from the\n" +
			"port directory) and file names. Completing never runs a command.",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				_, _ = io.WriteString(e.stdout, bashCompletion)
			case "zsh":
				_, _ = io.WriteString(e.stdout, zshCompletion)
			case "fish":
				_, _ = io.WriteString(e.stdout, fishCompletion)
			default:
				return usagef("completion: want bash, zsh or fish")
			}
			return nil
		},
	}
}

// completionArgs reports whether args (without the program name) ask for
// completion, and the words to complete: the words before the cursor and
// the word under it.
func completionArgs(args []string) ([]string, bool) {
	switch {
	case len(args) > 0 && args[0] == completeCommand:
		return args[1:], true
	case len(args) > 0 && args[len(args)-1] == legacyCompletionFlag:
		return append(slices.Clone(args[:len(args)-1]), ""), true
	}
	return nil, false
}

// complete writes the candidates for the last of words (the word under the
// cursor, possibly empty) to w.
func complete(ctx context.Context, app *cli.App, words []string, w io.Writer) {
	if len(words) == 0 {
		words = []string{""}
	}
	cur, before := words[len(words)-1], words[:len(words)-1]
	cmds, flags := app.Commands, app.Flags
	var cmd *cli.Command
	var positional []string
	given := map[string]string{} // flag values given before the cursor
	var pending cli.Flag         // a flag whose value is the next word
	for _, word := range before {
		if pending != nil {
			given[pending.Names()[0]] = word
			pending = nil
			continue
		}
		if strings.HasPrefix(word, "-") && len(word) > 1 {
			name, val, hasVal := strings.Cut(strings.TrimLeft(word, "-"), "=")
			f := findFlag(flags, name)
			if f == nil && flagValueSets[name] != nil {
				// A closed-set flag out of place (vsp --tls): its values
				// still help, and the command will say where it goes.
				f = &cli.StringFlag{Name: name}
			}
			switch {
			case f != nil && hasVal:
				given[f.Names()[0]] = val
			case f != nil && takesValue(f):
				pending = f
			}
			continue
		}
		if len(positional) == 0 {
			if next := findCommand(cmds, word); next != nil {
				cmd, cmds, flags = next, next.Subcommands, next.Flags
				continue
			}
		}
		positional = append(positional, word)
	}
	var out []string
	switch {
	case pending != nil:
		out = flagValues(ctx, pending, given)
	case strings.HasPrefix(cur, "-"):
		for _, f := range flags {
			if hidden(f) {
				continue
			}
			for _, n := range f.Names() {
				if len(n) > 1 {
					out = append(out, "--"+n)
				}
			}
		}
		out = append(out, "--help")
	case cmd == nil || len(cmd.Subcommands) > 0:
		for _, c := range cmds {
			if !c.Hidden && c.Name != "help" {
				out = append(out, c.Name)
			}
		}
	default:
		out = argValues(ctx, cmd, len(positional), given)
	}
	var keep []string
	for _, o := range out {
		if o == completeFiles || strings.HasPrefix(o, cur) {
			keep = append(keep, o)
		}
	}
	for _, o := range keep {
		fmt.Fprintln(w, o)
	}
}

func findFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func takesValue(f cli.Flag) bool {
	df, ok := f.(cli.DocGenerationFlag)
	return ok && df.TakesValue()
}

func hidden(f cli.Flag) bool {
	vf, ok := f.(cli.VisibleFlag)
	return ok && !vf.IsVisible()
}

// flagValueSets are the closed sets of values a flag takes.
var flagValueSets = map[string][]string{
	"tls":        {"off", "legacy", "modern"},
	"trust":      {config.TrustPin, config.TrustTOFU, config.TrustCA, config.TrustInsecure},
	"log-format": {config.LogText, config.LogJSON, config.LogAuto},
	"log-level":  {"debug", "info", "warn", "error"},
	"stale-data": {"discard", "keep"},
}

// flagValues are the candidates for flag f's value.
func flagValues(ctx context.Context, f cli.Flag, given map[string]string) []string {
	name := f.Names()[0]
	if vals, ok := flagValueSets[name]; ok {
		return vals
	}
	if name == "write" { // trust --write NAME
		return portNames(ctx, given)
	}
	df, ok := f.(cli.DocGenerationFlag)
	if !ok {
		return nil
	}
	// The placeholder in backquotes in the usage: `FILE`, `DIR`, `PATH`.
	usage := df.GetUsage()
	for _, p := range []string{"`FILE`", "`DIR`", "`PATH`", "`[DIR/]NAME`"} {
		if strings.Contains(usage, p) {
			return []string{completeFiles}
		}
	}
	if strings.HasSuffix(name, "-file") {
		return []string{completeFiles}
	}
	return nil
}

// argValues are the candidates for cmd's positional argument number n: port
// names for a NAME, the alternatives of a closed set (bash|zsh|fish).
func argValues(ctx context.Context, cmd *cli.Command, n int, given map[string]string) []string {
	args := strings.Fields(cmd.ArgsUsage)
	if len(args) == 0 {
		return nil
	}
	if n >= len(args) {
		if !strings.HasSuffix(strings.Trim(args[len(args)-1], "[]"), "...") {
			return nil
		}
		n = len(args) - 1 // "NAME..." repeats
	}
	arg := strings.TrimSuffix(strings.Trim(args[n], "[]"), "...")
	switch {
	case arg == "NAME":
		return portNames(ctx, given)
	case strings.Contains(arg, "|"):
		return strings.Split(arg, "|")
	}
	return nil
}

// portNames are the daemon's ports when it answers within
// portNamesTimeout, else the names of the files in the port directory.
func portNames(ctx context.Context, given map[string]string) []string {
	s, err := quietSettings(given)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, portNamesTimeout)
	defer cancel()
	var names []string
	if states, err := newControl(s.get("socket")).ports(ctx); err == nil {
		for _, st := range states {
			names = append(names, st.Name)
		}
		return names
	}
	files, _ := filepath.Glob(filepath.Join(s.get("config_dir"), "*.toml"))
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".toml"); config.ValidName(name) {
			names = append(names, name)
		}
	}
	return names
}

// quietSettings resolves the settings as a command would (flags given on
// the command line being completed, the environment, the settings file),
// for the socket and the port directory.
func quietSettings(given map[string]string) (*settings, error) {
	cmd := &cli.Command{Name: completeCommand, Flags: []cli.Flag{socketFlag(), configDirFlag(), configFileFlag()}}
	set := flag.NewFlagSet(completeCommand, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range cmd.Flags {
		if err := f.Apply(set); err != nil {
			return nil, err
		}
		if v, ok := given[f.Names()[0]]; ok {
			if err := set.Set(f.Names()[0], v); err != nil {
				return nil, err
			}
		}
	}
	c := cli.NewContext(&cli.App{}, set, nil)
	c.Command = cmd
	return resolveSettings(c, os.LookupEnv)
}
