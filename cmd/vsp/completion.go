package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// Shell completion scripts. bash and zsh ask the binary itself for
// candidates (urfave/cli's --generate-bash-completion); fish gets a static
// script generated from the command definitions.
const bashCompletion = `# bash completion for vsp
_vsp_complete() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  if [[ "$cur" == "-"* ]]; then
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[@]:0:$COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
  return 0
}
complete -o bashdefault -o default -F _vsp_complete vsp
`

const zshCompletion = `#compdef vsp
_vsp() {
  local -a opts
  local cur="${words[-1]}"
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
# Autoloaded from $fpath (as the Debian package installs it): complete now;
# sourced (source <(vsp completion zsh)): register.
if [[ "${funcstack[1]}" == "_vsp" ]]; then
  _vsp "$@"
else
  compdef _vsp vsp
fi
`

func completionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Load it in the current shell, e.g.  source <(vsp completion bash)\n" +
			"or install it where your shell looks (the Debian package does this).",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				fmt.Fprint(e.stdout, bashCompletion)
			case "zsh":
				fmt.Fprint(e.stdout, zshCompletion)
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				fmt.Fprint(e.stdout, s)
			default:
				return usagef("completion: want bash, zsh or fish")
			}
			return nil
		},
	}
}
