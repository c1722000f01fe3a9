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

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
)

func createCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "create",
		Usage:     "create a port: write its file, and wait until the daemon runs it",
		ArgsUsage: "NAME",
		Description: "Writes DIR/NAME.toml atomically (refusing to replace an existing port unless\n" +
			"--force) and waits until the running daemon has the port up: its link to the\n" +
			"device connected. It stops waiting early when the port is in a state that will\n" +
			"not fix itself (the certificate does not match the pin, a key too weak for the\n" +
			"TLS profile, a device that does not answer TLS, a bad file) and says the fix.\n" +
			"The tty link defaults to ttyNAME in the link directory (vsp create VSP0 gives\n" +
			"ttyVSP0).\n\n" +
			"Exit status: 0 the port is up (with --wait 0: the file is written; with\n" +
			"--connect on-open: the port is idle, ready to connect when opened); 1 it is not\n" +
			"(the state and the fix are printed), no daemon runs, or the file could not be\n" +
			"written; 2 a usage error.",
		Flags: append(createPortFlags(), configDirFlag(), socketFlag(),
			&cli.BoolFlag{Name: "force", Usage: "replace an existing port file"},
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for the port to come up (0: don't wait)", Value: 10 * time.Second},
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
			path := config.PortFile(c.String("config-dir"), name)
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

// waitPort waits until the daemon reports the port up, or in a state that
// will not fix itself (a fault, a file error).
func waitPort(ctx context.Context, e *env, socket, dir, name string, timeout time.Duration) error {
	ctl := newControl(socket)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last service.PortState
	var seen bool
	for {
		st, ok, err := ctl.port(ctx, name)
		if errors.Is(err, errNoDaemon) {
			return fmt.Errorf("create: %w; port %s starts when the daemon does (use --wait 0 to only write the file)", err, name)
		}
		if err == nil && ok {
			last, seen = st, true
			switch {
			case st.ConfigError != "":
				return fmt.Errorf("create: the daemon rejected port %s: %s", name, st.ConfigError)
			case st.Running && st.State == bridge.StateUp:
				fmt.Fprintf(e.stdout, "port %s: %s -> %s, %s\n", name, st.Link, st.TTY, st.State)
				return nil
			case st.Running && st.State == bridge.StateIdle: // --connect on-open: ready, dials when opened
				fmt.Fprintf(e.stdout, "port %s: %s -> %s, %s: connects when an application opens the tty\n", name, st.Link, st.TTY, st.State)
				return nil
			case st.Running && st.Fault != "":
				return fmt.Errorf("create: port %s is not up: %s: %s\nfix: %s", name, st.State, st.LastError, or(st.Fix, "see `vsp status "+name+"`"))
			}
		}
		select {
		case <-ctx.Done():
			if !seen {
				return fmt.Errorf("create: the daemon on %s has not reported port %s after %v (is it watching %s?)", socket, name, timeout, dir)
			}
			msg := fmt.Sprintf("create: port %s is not up after %v: %s", name, timeout, last.State)
			if last.LastError != "" {
				msg += ": " + last.LastError
			}
			return errors.New(msg + " (it keeps trying; see `vsp status " + name + "`)")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func deleteCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "delete",
		Usage:     "delete a port: remove its file, and wait until the daemon closed its tty",
		ArgsUsage: "NAME",
		Description: "Exit status: 0 the file is removed and the daemon no longer runs the port (or\n" +
			"no daemon runs); 1 no such port, or the daemon still runs it after --wait; 2 a\n" +
			"usage error.",
		Flags: []cli.Flag{configDirFlag(), socketFlag(),
			&cli.DurationFlag{Name: "wait", Usage: "how long to wait for the daemon to close the port (0: don't wait)", Value: 10 * time.Second},
		},
		Action: func(c *cli.Context) error {
			name := c.Args().First()
			if !config.ValidName(name) {
				return usagef("delete: %q is not a valid port name", name)
			}
			path := config.PortFile(c.String("config-dir"), name)
			if err := os.Remove(path); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("delete: no port %s (%s does not exist)", name, path)
				}
				return fmt.Errorf("delete: %w", err)
			}
			fmt.Fprintf(e.stdout, "removed %s\n", path)
			// Wait until the daemon lets go of it, when one runs.
			if c.Duration("wait") <= 0 {
				return nil
			}
			ctl := newControl(c.String("socket"))
			deadline := time.Now().Add(c.Duration("wait"))
			for {
				_, ok, err := ctl.port(c.Context, name)
				if errors.Is(err, errNoDaemon) || (err == nil && !ok) {
					return nil
				}
				if time.Now().After(deadline) {
					if err != nil {
						return fmt.Errorf("delete: %w", err)
					}
					return fmt.Errorf("delete: the daemon still runs port %s after %v", name, c.Duration("wait"))
				}
				time.Sleep(50 * time.Millisecond)
			}
		},
	}
}
