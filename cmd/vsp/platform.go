package main

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

// restrictPlatform makes the commands that need what only Linux has (ptys
// for virtual serial ports) fail at once with a clear error on other
// systems, instead of failing deep inside with an obscure one. The module
// builds everywhere (make cross); list, status, trust, create, delete,
// version and completion work on every platform.
func restrictPlatform(cmds []*cli.Command) { restrictFor(cmds, runtime.GOOS, runtime.GOARCH) }

func restrictFor(cmds []*cli.Command, goos, goarch string) {
	if goos == "linux" {
		return
	}
	for _, c := range cmds {
		switch c.Name {
		case "run", "demo":
			unsupported(c, c.Name, goos, goarch)
		case "service":
			// A service would only run `vsp run`; stopping, removing and
			// asking for status still work.
			for _, s := range c.Subcommands {
				switch s.Name {
				case "install", "start", "restart":
					unsupported(s, "service "+s.Name, goos, goarch)
				}
			}
		}
	}
}

func unsupported(c *cli.Command, name, goos, goarch string) {
	c.Action = func(*cli.Context) error {
		return fmt.Errorf("%s: not supported on this platform (%s/%s): virtual serial ports need Linux ptys; "+
			"vsp list, status, trust and version work here: %w", name, goos, goarch, errors.ErrUnsupported)
	}
}
