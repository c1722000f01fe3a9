//go:debug rsa1024min=0

// Command ezsim simulates the device side of Sollae ezTCP serial-to-Ethernet
// converters (CSE-H25, CSE-M73, CSE-M32, CSE-H20, CSE-H21): T2S, COD, ATC and
// U2S communication modes with optional SSL, telnet console, flash
// persistence and status.
// See docs/simulator.md.
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
