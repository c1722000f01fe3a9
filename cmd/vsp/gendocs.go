package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/cmd/internal/clidocs"
	"github.com/vsp-dev/vsp/service/config"
)

// docsNote is appended to the description in the generated reference only:
// the defaults it shows are root's, whoever runs the generator.
const docsNote = "\n\nDefault paths shown here are those used as root. As another user, vsp uses\n" +
	"per-user paths: port files in $XDG_CONFIG_HOME/vsp/ports.d (~/.config/vsp/ports.d),\n" +
	"the control socket $XDG_RUNTIME_DIR/vsp/vsp.sock, trusted devices in\n" +
	"$XDG_STATE_HOME/vsp/known_devices, tty links in $XDG_RUNTIME_DIR/vsp/dev and the\n" +
	"settings file $XDG_CONFIG_HOME/vsp/vsp.toml (see `vsp config`)."

// genDocsCommand is the hidden `vsp gen-docs DIR` that `make docs` runs: it
// writes the CLI reference DIR/cli.md and the man page DIR/man/vsp.1. With
// --check (`make docs-check`, in CI) it writes nothing and fails when the
// files in DIR are not what it would write.
func genDocsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "gen-docs",
		Hidden:    true,
		Usage:     "write the CLI reference (DIR/cli.md, DIR/man/vsp.1)",
		ArgsUsage: "DIR",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "check", Usage: "write nothing; fail when DIR's files differ from what would be written"}},
		Action: func(c *cli.Context) error {
			files, err := cliDocs(e)
			if err != nil {
				return err
			}
			return clidocs.WriteOrCheck(c.Args().First(), files, c.Bool("check"))
		},
	}
}

// cliDocs renders the reference from a fresh app, with the defaults that
// depend on the user replaced by root's.
func cliDocs(e *env) ([]clidocs.File, error) {
	return renderDocs(newApp(e))
}

func renderDocs(app *cli.App) ([]clidocs.File, error) {
	app.Description += docsNote
	subst := map[string]string{}
	if os.Geteuid() != 0 {
		d := config.DefaultPaths()
		subst[d.DaemonFile] = "/etc/vsp/vsp.toml"
		subst[d.ConfigDir] = "/etc/vsp/ports.d"
		subst[d.Socket] = "/run/vsp/vsp.sock"
		subst[d.KnownDevices] = "/var/lib/vsp/known_devices"
		subst[d.LinkDir] = "/dev"
	}
	return clidocs.Render(app, clidocs.Options{
		MarkdownPath: "cli.md",
		ManPath:      "man/vsp.1",
		Section:      1,
		Subst:        subst,
	})
}
