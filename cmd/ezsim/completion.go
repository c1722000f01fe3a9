package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// completionCommand prints a static completion script: ezsim's flags and
// commands, file names after the flags that take one. Nothing is run to
// complete.
func completionCommand(stdout io.Writer) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err}
		},
		Action: func(c *cli.Context) error {
			// The flags that take a file name: the scripts complete one.
			fileFlags := []string{"flash", "serial", "status-socket"}
			words := []string{"status", "completion"}
			for _, f := range flags() {
				words = append(words, "--"+f.Names()[0])
			}
			files := "--" + strings.Join(fileFlags, "|--")
			var s string
			switch c.Args().First() {
			case "bash":
				s = "# bash completion for ezsim\n_ezsim_complete() {\n" +
					"  local cur=\"${COMP_WORDS[COMP_CWORD]}\" prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n" +
					"  case \"$prev\" in " + files + ") compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- \"$cur\")); return 0;; esac\n" +
					"  COMPREPLY=($(compgen -W \"" + strings.Join(words, " ") + "\" -- \"$cur\"))\n}\n" +
					"complete -F _ezsim_complete ezsim\n"
			case "zsh":
				s = "#compdef ezsim\n_ezsim() {\n" +
					"  case \"${words[CURRENT-1]}\" in " + files + ") _files; return;; esac\n" +
					"  compadd -- " + strings.Join(words, " ") + "\n}\n" +
					"if [[ \"${funcstack[1]}\" == \"_ezsim\" ]]; then\n  _ezsim \"$@\"\nelse\n  compdef _ezsim ezsim\nfi\n"
			case "fish":
				var b strings.Builder
				b.WriteString("# fish completion for ezsim\ncomplete -c ezsim -f -a 'status completion'\n")
				for _, f := range flags() {
					name := f.Names()[0]
					r := ""
					for _, ff := range fileFlags {
						if ff == name {
							r = " -r -F"
						}
					}
					fmt.Fprintf(&b, "complete -c ezsim -l %s%s\n", name, r)
				}
				s = b.String()
			default:
				return &usageError{fmt.Errorf("completion: want bash, zsh or fish")}
			}
			_, err := io.WriteString(stdout, s)
			return err
		},
	}
}
