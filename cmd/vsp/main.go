//go:debug rsa1024min=0

// The debug setting above lets the legacy TLS profile talk to devices with
// 512- and 768-bit RSA keys, as ezTCP devices generate; package tlsconn
// refuses such keys in every other profile and warns when legacy meets one.

package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
