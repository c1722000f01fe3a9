package main

import (
	"errors"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/cmd/internal/clidocs"
)

// genDocsCommand is the hidden `ezsim gen-docs DIR` that `make docs` runs:
// it writes the CLI reference DIR/cli-ezsim.md and the man page
// DIR/man/ezsim.1 from the running app's definition; with --check (`make
// docs-check`, in CI) it writes nothing and fails when they differ.
func genDocsCommand() *cli.Command {
	return &cli.Command{
		Name:      "gen-docs",
		Hidden:    true,
		Usage:     "write the CLI reference (DIR/cli-ezsim.md, DIR/man/ezsim.1)",
		ArgsUsage: "DIR",
		Flags:     []cli.Flag{&cli.BoolFlag{Name: "check", Usage: "write nothing; fail when DIR's files differ from what would be written"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return &usageError{errors.New("gen-docs: want one argument, the docs directory")}
			}
			files, err := renderDocs(c.App)
			if err != nil {
				return err
			}
			return clidocs.WriteOrCheck(c.Args().First(), files, c.Bool("check"))
		},
	}
}

// docsNote is appended to the description in the generated reference only.
const docsNote = "ezsim plays the device side of an ezTCP: it listens like the device's T2S\n" +
	"server (optionally with SSL), runs the telnet console, and connects COM1 to an\n" +
	"echo loop, a pty (pty:PATH, which equipment simulators open) or a real serial\n" +
	"device. It prints \"listen: ADDR\" (COD mode: \"connect: PEER\") and, with --ssl,\n" +
	"\"fingerprint: sha256:HEX\". COD, ATC and U2S modes: see docs/simulator.md.\n\n" +
	"Exit status: 0 success, 1 error, 2 usage error (bad command line)."

func renderDocs(app *cli.App) ([]clidocs.File, error) {
	if app.Description == "" {
		app.Description = docsNote
	} else {
		app.Description += "\n\n" + docsNote
	}
	return clidocs.Render(app, clidocs.Options{
		MarkdownPath: "cli-ezsim.md",
		ManPath:      "man/ezsim.1",
		Section:      1,
	})
}
