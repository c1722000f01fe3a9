package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	ksvc "github.com/kardianos/service"
	"github.com/urfave/cli/v2"
)

// serviceName is the unit name (vsp.service under systemd).
const serviceName = "vsp"

// unitScript is kardianos/service's systemd template with what a serial
// redirector needs: ordering after network-online, restart on failure, and
// the right install target for system and user services.
const unitScript = `[Unit]
Description={{Description}}
Documentation=man:vsp(1)
ConditionFileIsExecutable={{Path | cmdEscape}}
{{range Dependencies}}{{.}}
{{end}}
[Service]
ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}
Restart=on-failure
RestartSec=2
Environment=VSP_LOG_FORMAT=json

[Install]
WantedBy=%s
`

// program satisfies kardianos/service's Interface. The unit runs `vsp run`
// directly, so these are never called for control actions.
type program struct{}

func (program) Start(ksvc.Service) error { return nil }
func (program) Stop(ksvc.Service) error  { return nil }

func serviceCommand(e *env) *cli.Command {
	action := func(name string) *cli.Command {
		return &cli.Command{
			Name:  name,
			Usage: serviceActionUsage(name),
			Flags: []cli.Flag{configDirFlag(), socketFlag(), knownDevicesFlag(),
				&cli.BoolFlag{Name: "user", Usage: "a user-level service (default when not root)", Value: os.Geteuid() != 0}},
			Action: func(c *cli.Context) error { return serviceAction(c, e, name) },
		}
	}
	return &cli.Command{
		Name:  "service",
		Usage: "install, remove and control vsp as an OS service that starts at boot",
		Description: "As root: a system service (systemd unit vsp.service, after network-online,\n" +
			"restarted on failure) running `vsp run` with the given directories. Not root:\n" +
			"a user service (systemctl --user). Where no service manager runs (a container),\n" +
			"it says so: run `vsp run` under your own supervisor there.",
		Subcommands: []*cli.Command{
			action("install"), action("uninstall"), action("start"), action("stop"), action("restart"), action("status"),
		},
	}
}

func serviceAction(c *cli.Context, e *env, action string) error {
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/run/systemd/system"); err != nil {
			return errors.New("service: no service manager found: systemd is not running on this machine " +
				"(/run/systemd/system is missing, as in most containers); run `vsp run` in the foreground " +
				"under your own supervisor instead")
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	exe, _ = filepath.EvalSymlinks(exe)
	user := c.Bool("user")
	target := "multi-user.target"
	if user {
		target = "default.target"
	}
	cfg := &ksvc.Config{
		Name:        serviceName,
		DisplayName: "vsp virtual serial ports",
		Description: "vsp: virtual serial ports bridged to networked serial devices",
		Executable:  exe,
		Arguments:   append([]string{"run"}, e.settings.explicitArgs()...), // the rest from the settings file

		Dependencies: []string{"Wants=network-online.target", "After=network-online.target"},
		Option: ksvc.KeyValue{
			"UserService":   user,
			"SystemdScript": fmt.Sprintf(unitScript, target),
		},
	}
	s, err := ksvc.New(program{}, cfg)
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
