package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/urfave/cli/v2"
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

// buildVersion returns the version and commit, falling back to what the Go
// toolchain recorded (module version for `go install`, VCS revision).
func buildVersion() (v, c string) {
	v, c = version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

func versionCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print version, commit and Go version",
		Action: func(*cli.Context) error {
			v, c := buildVersion()
			fmt.Fprintf(e.stdout, "vsp %s\ncommit %s\n%s %s/%s\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
