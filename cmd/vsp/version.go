package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
	"github.com/vsp-dev/vsp/internal/buildinfo"
)

// version and commit are stamped at build time:
//
//	go build -ldflags "-X main.version=1.2.3 -X main.commit=abc123" ./cmd/vsp
//
// They are the only package-level variables, and nothing assigns them at
// run time.
var (
	version = ""
	commit  = ""
)

func versionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print version, commit and Go version",
		Action: func(*cli.Context) error {
			fmt.Fprint(e.stdout, buildinfo.String("vsp", version, commit))
			return nil
		},
	}
}
