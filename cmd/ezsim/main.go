//go:debug rsa1024min=0

// The debug setting lets ezsim generate and serve the 512- and 768-bit RSA
// keys real ezTCP devices use (Go refuses keys under 1024 bits by default).

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ezsim:", err)
		var u *usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// version and commit are stamped by `make build`, as vsp's are:
//
//	go build -ldflags "-X main.version=1.2.3 -X main.commit=abc123" ./cmd/ezsim
//
// Nothing assigns them at run time.
var (
	version = ""
	commit  = ""
)
