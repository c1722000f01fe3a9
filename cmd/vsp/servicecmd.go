package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	ksvc "github.com/kardianos/service"
	"github.com/urfave/cli/v2"
)

// serviceName is the unit name (vsp.service under systemd).
const serviceName = "vsp"

// program is vsp's kardianos/service Interface: Start runs the daemon (what
// `vsp run` does) until Stop, or until it fails on its own. The service
// manager starts `vsp run`, which runs the daemon through it (runService).
type program struct {
	parent context.Context
	run    func(context.Context) error

	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Start launches the daemon and returns at once, as the Interface asks.
func (p *program) Start(ksvc.Service) error {
	ctx, cancel := context.WithCancel(p.parent)
	p.cancel = cancel
	p.done = make(chan struct{})
	go func() {
		defer close(p.done)
		p.err = p.run(ctx)
	}()
	return nil
}

// Stop cancels the daemon and waits for it; it returns the daemon's error.
func (p *program) Stop(ksvc.Service) error {
	p.cancel()
	<-p.done
	return p.err
}

// wait is the service's RunWait: until the parent context ends (SIGTERM,
// SIGINT: see main) or the daemon returns by itself (e.g. a bad socket).
func (p *program) wait() {
	select {
	case <-p.parent.Done():
	case <-p.done:
	}
}

// runService runs the daemon through kardianos/service, as a service
// manager (systemd, or Windows's) expects of the program it starts.
func runService(ctx context.Context, run func(context.Context) error) error {
	p := &program{parent: ctx, run: run}
	s, err := ksvc.New(p, &ksvc.Config{Name: serviceName, Option: ksvc.KeyValue{"RunWait": p.wait}})
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	return s.Run()
}

func serviceCommand(e *env) *cli.Command {
	unitFlags := func() []cli.Flag {
		return []cli.Flag{configDirFlag(), socketFlag(), knownDevicesFlag(),
			&cli.BoolFlag{Name: "user", Usage: "a user-level service (default when not root)", Value: os.Geteuid() != 0}}
	}
	action := func(name string) *cli.Command {
		return &cli.Command{
			Name:   name,
			Usage:  serviceActionUsage(name),
			Flags:  unitFlags(),
			Action: func(c *cli.Context) error { return serviceAction(c, e, name) },
		}
	}
	return &cli.Command{
		Name:  "service",
		Usage: "install, remove and control vsp as an OS service that starts at boot",
		Description: "As root: a system service (systemd unit vsp.service, the same unit the Debian\n" +
			"package installs: Type=notify with a watchdog, restarted on failure, the ports'\n" +
			"ttys kept in systemd's file-descriptor store across restarts, sandboxed) running\n" +
			"`vsp run`. Not root: a user service (systemctl --user). Where no service manager\n" +
			"runs (a container), it says so: run `vsp run` under your own supervisor there.",
		Subcommands: []*cli.Command{
			action("install"), action("uninstall"), action("start"), action("stop"), action("restart"), action("status"),
			{
				Name:  "unit",
				Usage: "print the systemd unit that install writes (and the package ships)",
				Description: "Prints vsp.service for this binary and the given flags; only the flags you set\n" +
					"are passed to `vsp run`. Compare it with `systemctl cat vsp` to see local changes.",
				Flags: append(unitFlags(), &cli.StringFlag{Name: "executable", Usage: "the vsp binary `PATH` in ExecStart (default: this binary)"}),
				Action: func(c *cli.Context) error {
					if p := c.String("executable"); p != "" && !filepath.IsAbs(p) {
						return usagef("--executable: want an absolute path, got %q", p)
					}
					u, err := unitFromFlags(c, e)
					if err != nil {
						return err
					}
					_, err = io.WriteString(e.stdout, systemdUnit(u))
					return err
				},
			},
		},
	}
}

// unitFromFlags is the unit for this binary and the settings given by flag
// or environment; the daemon reads the others from the settings file.
// (--executable, where the command has it, replaces this binary's path).
func unitFromFlags(c *cli.Context, e *env) (unitConfig, error) {
	exe := c.String("executable")
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return unitConfig{}, fmt.Errorf("service: %w", err)
		}
		if p, err := filepath.EvalSymlinks(exe); err == nil {
			exe = p
		}
	}
	return unitConfig{
		Exe:       exe,
		Args:      e.settings.explicitArgs(), // the rest from the settings file
		ReadWrite: writablePaths(e.settings.explicitValue),
		User:      c.Bool("user"),
	}, nil
}

func serviceAction(c *cli.Context, e *env, action string) error {
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return errors.New("service: no service manager found: systemd is not running on this machine " +
				"(/run/systemd/system is missing, as in most containers); run `vsp run` in the foreground " +
				"under your own supervisor instead")
		}
	}
	u, err := unitFromFlags(c, e)
	if err != nil {
		return err
	}
	cfg := &ksvc.Config{
		Name:        serviceName,
		DisplayName: "vsp virtual serial ports",
		Description: "vsp: virtual serial ports bridged to networked serial devices",
		Executable:  u.Exe,
		Arguments:   append([]string{"run"}, u.Args...),
		Option: ksvc.KeyValue{
			"UserService": u.User,
			// The rendered unit contains no template actions, so
			// kardianos/service writes it as it is.
			"SystemdScript": systemdUnit(u),
		},
	}
	s, err := ksvc.New(&program{}, cfg)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if action == "status" {
		st, err := s.Status()
		if err != nil {
			if errors.Is(err, ksvc.ErrNotInstalled) {
				fmt.Fprintln(e.stdout, "not installed")
				return nil
			}
			return fmt.Errorf("service: status: %w", err)
		}
		state := "unknown"
		switch st {
		case ksvc.StatusRunning:
			state = "running"
		case ksvc.StatusStopped:
			state = "stopped"
		}
		fmt.Fprintln(e.stdout, state)
		return nil
	}
	if err := ksvc.Control(s, action); err != nil {
		return fmt.Errorf("service: %s: %w", action, err)
	}
	fmt.Fprintf(e.stdout, "service %s: %s done (%s)\n", serviceName, action, s.Platform())
	return nil
}

// serviceActionUsage is the one-line help of `vsp service ACTION`.
func serviceActionUsage(action string) string {
	switch action {
	case "install":
		return "install vsp as a service that starts at boot, with these settings"
	case "uninstall":
		return "stop and remove the vsp service (port files stay)"
	case "status":
		return "show whether the vsp service is installed and running"
	}
	return action + " the vsp service"
}
