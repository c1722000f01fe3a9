//go:build !linux

package main

import (
	"fmt"
	"os"
	"runtime"
)

func main() {
	fmt.Fprintf(os.Stderr, "vspbench: not supported on this platform (%s/%s): it measures Linux ptys\n", runtime.GOOS, runtime.GOARCH)
	os.Exit(1)
}
