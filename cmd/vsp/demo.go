package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/device"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
)

func demoCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run a simulated ezTCP device and one port bridged to it over TLS",
		Description: "Starts the bundled ezTCP simulator in-process (SSL on, TLS 1.0 AES256-SHA as the\n" +
			"real device, echo plug on its serial side) and a vsp port pinned to its\n" +
			"certificate. Open the port with any serial program; what you type comes back.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "link", Usage: "tty symlink `PATH` (a bare name goes into --link-dir)", Value: "ttyVSP0"},
			linkDirFlag(),
			&cli.IntFlag{Name: "key-bits", Usage: "RSA key size of the simulated device: 512, 768 or 1024", Value: 1024},
			&cli.BoolFlag{Name: "check", Usage: "send a line through the port, verify the echo, and exit"},
			&cli.BoolFlag{Name: "debug", Usage: "verbose logs"},
		},
		Action: func(c *cli.Context) error {
			level := slog.LevelWarn
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
			return runDemo(c.Context, e, log, c.String("link"), c.String("link-dir"), c.Int("key-bits"), c.Bool("check"))
		},
	}
}

func runDemo(ctx context.Context, e *env, log *slog.Logger, link, linkDir string, bits int, check bool) error {
	dev, err := device.New(device.Config{
		Listen: "127.0.0.1:0",
		SSL:    true,
		// Exactly the real device's TLS: 1.0 with AES256-SHA only.
		ServerTLS: "device",
		KeyBits:   bits,
		Serial:    "echo",
		Console:   "off",
	}, log.With("side", "ezsim"))
	if err != nil {
		return err
	}
	defer dev.Close()
	if err := dev.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ezsim: simulated ezTCP on %s, SSL on, certificate %s\n", dev.Addr(), dev.Fingerprint())

	// The port a file with these keys would give, by the same path.
	p := &config.Port{Name: "demo", File: "vsp demo", Link: link, Device: dev.Addr().String(),
		TLS: config.TLSLegacy, Trust: config.Trust{Pin: dev.Fingerprint()}}
	if err := p.Validate(); err != nil {
		return usageError{fmt.Errorf("demo: %w", err)}
	}
	spec, err := service.SpecFromConfig(p, service.Paths{LinkDir: linkDir})
	if err != nil {
		return err
	}
	link = spec.PTY.Link // a bare name, resolved
	port, err := bridge.StartPort(spec, log.With("side", "vsp"))
	if err != nil {
		return err
	}
	defer port.Close()

	// Wait for the link, so what we print is true.
	deadline := time.Now().Add(10 * time.Second)
	for port.Status().State != bridge.StateUp {
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: link did not come up: %s", port.Status().LastError)
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return nil
		}
	}
	st := port.Status()
	fmt.Fprintf(e.stdout, "vsp:   %s -> %s, link up: %s %s, pinned %s\n",
		st.Link, st.TTY, st.Session.Version, st.Session.Cipher, st.Pin)
	if check {
		return demoCheck(ctx, e, st.Link)
	}
	fmt.Fprintf(e.stdout, "\nOpen the port and type; the simulated device echoes it back:\n"+
		"    picocom -b 115200 %s        (quit with Ctrl-A Ctrl-X)\n"+
		"Ctrl-C stops the demo.\n", st.Link)
	<-ctx.Done()
	return nil
}

// demoCheck is what a user would do by hand: open the tty, type a line,
// see it come back.
func demoCheck(ctx context.Context, e *env, link string) error {
	f, err := openTTY(link)
	if err != nil {
		return fmt.Errorf("demo: open %s: %w", link, err)
	}
	defer f.Close()
	if err := makeRaw(f); err != nil {
		return fmt.Errorf("demo: %s: %w", link, err)
	}
	msg := []byte("hello from vsp demo\r\n")
	if _, err := f.Write(msg); err != nil {
		return fmt.Errorf("demo: write %s: %w", link, err)
	}
	_ = f.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(f, got); err != nil {
		return fmt.Errorf("demo: read %s: %w", link, err)
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("demo: sent %q, the device echoed %q", msg, got)
	}
	fmt.Fprintf(e.stdout, "check: wrote %q to %s and read it back through TLS and the simulated device: OK\n", bytes.TrimSpace(msg), link)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}
