package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version returns the stamped version and commit (either may be ""),
// falling back to the module version (`go install`) and the VCS revision,
// then to "devel" and "unknown".
func Version(stamped, stampedCommit string) (v, c string) {
	v, c = stamped, stampedCommit
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

// String is the version report of the program name: version, commit, Go
// version and platform, one per line.
func String(name, stamped, stampedCommit string) string {
	v, c := Version(stamped, stampedCommit)
	return fmt.Sprintf("%s %s\ncommit %s\n%s %s/%s\n", name, v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
