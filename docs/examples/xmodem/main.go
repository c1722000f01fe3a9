package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/vsp-dev/vsp/docs/examples/internal/serialport"
)

const usage = `usage:
  xmodem send    [flags] PORT FILE   send FILE through PORT
  xmodem receive [flags] PORT FILE   receive into FILE from PORT

Start the receiver first (it asks the sender to begin, for up to a minute).
`

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "send" && os.Args[1] != "receive") {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	fs := flag.NewFlagSet("xmodem "+os.Args[1], flag.ExitOnError)
	baud := fs.Int("baud", 19200, "serial speed (ezsim's default is 19200)")
	timeout := fs.Duration("timeout", 10*time.Second, "time to wait for each answer")
	checksum := fs.Bool("checksum", false, "receive: ask for the original 8-bit checksum instead of CRC-16")
	quiet := fs.Bool("q", false, "no progress messages")
	fs.Parse(os.Args[2:])
	if fs.NArg() != 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	logf := func(format string, a ...any) {
		if !*quiet {
			fmt.Fprintf(os.Stderr, "xmodem: "+format+"\n", a...)
		}
	}
	if err := run(os.Args[1], fs.Arg(0), fs.Arg(1), *baud, *timeout, !*checksum, logf); err != nil {
		fmt.Fprintln(os.Stderr, "xmodem:", err)
		os.Exit(1)
	}
}

func run(mode, path, file string, baud int, timeout time.Duration, useCRC bool, logf func(string, ...any)) error {
	p, err := serialport.Open(path, baud)
	if err != nil {
		return err
	}
	defer p.Close()
	t0 := time.Now()
	if mode == "send" {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		if err := send(p, data, timeout, logf); err != nil {
			return err
		}
		fmt.Printf("sent %d bytes from %s in %v\n", len(data), file, time.Since(t0).Round(time.Millisecond))
		return nil
	}
	data, err := receive(p, useCRC, timeout, logf)
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return err
	}
	fmt.Printf("received %d bytes into %s in %v\n", len(data), file, time.Since(t0).Round(time.Millisecond))
	return nil
}
