package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service/config"
)

func createCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a port: write its file, and wait until the daemon runs it",
		ArgsUsage: "NAME",
		Description: "Writes DIR/NAME.toml atomically (refusing to replace an existing port unless\n" +
			"--force) and waits until the running daemon reports the port. The tty link\n" +
			"defaults to ttyNAME in the link directory (vsp create VSP0 gives ttyVSP0).",
		Flags: append(createPortFlags(), configDirFlag(), socketFlag(),
			&cli.BoolFlag{Name: "force", Usage: "replace an existing port file"},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for the daemon to report the port (0: don't wait)", Value: 10 * time.Second},
		),
		Action: func(c *cli.Context) error {
			name := c.Args().First()
			if !config.ValidName(name) {
				return usagef("create: %q is not a valid port name (letters, digits, '_', '.', '-'; at most 64)", name)
			}
			link := "tty" + strings.TrimPrefix(name, "tty")
			if c.IsSet("link") {
				link = c.String("link")
			}
			p, err := portFromFlags(c, "create", name, link)
			if err != nil {
				return err
			}
			path := filepath.Join(c.String("config-dir"), name+".toml")
			if err := writePort(p, path, c.Bool("force")); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "wrote %s\n", path)
			if c.Duration("wait") <= 0 {
				return nil
			}
			return waitPort(c.Context, e, c.String("socket"), c.String("config-dir"), name, c.Duration("wait"))
		},
	}
}

// createPortFlags are `vsp run`'s port flags, with the link defaulting to
// the port's name, and without --listen-cert, which is not a port-file key
// (see runSpec).
func createPortFlags() []cli.Flag {
	flags := slices.DeleteFunc(portFlags(), func(f cli.Flag) bool { return f.Names()[0] == "listen-cert" })
	for i, f := range flags {
		if f.Names()[0] == "link" {
			flags[i] = &cli.StringFlag{Name: "link", Usage: "tty symlink `PATH` the application opens; a bare name goes into " +
				"the daemon's link_dir (see `vsp config`) (default: ttyNAME, e.g. ttyVSP0 for port VSP0)", EnvVars: []string{"VSP_LINK"}}
		}
	}
	return flags
}

// writePort encodes p and writes it atomically to path.
func writePort(p *config.Port, path string, force bool) error {
	if !force {
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("create: port %s exists (%s); use --force to replace it", p.Name, path)
		}
	}
	data, err := p.Encode()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	return config.WriteAtomic(path, data, 0o644)
}

// waitPort waits until the daemon reports the port running, or reports its
// file error.
func waitPort(ctx context.Context, e *env, socket, dir, name string, timeout time.Duration) error {
	ctl := newControl(socket)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		st, ok, err := ctl.port(ctx, name)
		if errors.Is(err, errNoDaemon) {
			fmt.Fprintf(e.stderr, "vsp: note: %v\nThe port will start when the daemon does.\n", err)
			return nil
		}
		if err == nil && ok {
			if st.ConfigError != "" {
				return fmt.Errorf("the daemon rejected the port: %s", st.ConfigError)
			}
			if st.Running {
				fmt.Fprintf(e.stdout, "port %s: %s -> %s, %s\n", name, st.Link, st.TTY, st.State)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the daemon on %s has not reported port %s after %v (is it watching %s?)", socket, name, timeout, dir)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func deleteCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a port: remove its file; the daemon closes its tty",
		ArgsUsage: "NAME",
		Flags:     []cli.Flag{configDirFlag(), socketFlag()},
		Action: func(c *cli.Context) error {
			name := c.Args().First()
			if !config.ValidName(name) {
				return usagef("delete: %q is not a valid port name", name)
			}
			path := filepath.Join(c.String("config-dir"), name+".toml")
			if err := os.Remove(path); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("delete: no port %s (%s does not exist)", name, path)
				}
				return fmt.Errorf("delete: %w", err)
			}
			fmt.Fprintf(e.stdout, "removed %s\n", path)
			// Wait until the daemon lets go of it, when one runs.
			ctl := newControl(c.String("socket"))
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) {
				_, ok, err := ctl.port(c.Context, name)
				if err != nil || !ok {
					return nil
				}
				time.Sleep(50 * time.Millisecond)
			}
			return fmt.Errorf("delete: the daemon still reports port %s after 10s", name)
		},
	}
}
