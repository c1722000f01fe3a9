package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"
)

// Default locations: system-wide as root, per user otherwise.
type defaultPaths struct {
	configDir, socket, knownDevices string
}

func defaults() defaultPaths {
	if os.Geteuid() == 0 {
		return defaultPaths{
			configDir:    "/etc/vsp/ports.d",
			socket:       "/run/vsp/vsp.sock",
			knownDevices: "/var/lib/vsp/known_devices",
		}
	}
	home, _ := os.UserHomeDir()
	cfg := os.Getenv("XDG_CONFIG_HOME")
	if cfg == "" {
		cfg = filepath.Join(home, ".config")
	}
	run := os.Getenv("XDG_RUNTIME_DIR")
	if run == "" {
		run = filepath.Join(os.TempDir(), fmt.Sprintf("vsp-%d", os.Geteuid()))
	} else {
		run = filepath.Join(run, "vsp")
	}
	state := os.Getenv("XDG_STATE_HOME")
	if state == "" {
		state = filepath.Join(home, ".local", "state")
	}
	return defaultPaths{
		configDir:    filepath.Join(cfg, "vsp", "ports.d"),
		socket:       filepath.Join(run, "vsp.sock"),
		knownDevices: filepath.Join(state, "vsp", "known_devices"),
	}
}

func configDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "config-dir", Usage: "directory of port files (`DIR`/NAME.toml)", Value: defaults().configDir, EnvVars: []string{"VSP_CONFIG_DIR"}}
}

func socketFlag() cli.Flag {
	return &cli.StringFlag{Name: "socket", Usage: "daemon control socket `PATH`", Value: defaults().socket, EnvVars: []string{"VSP_SOCKET"}}
}

func knownDevicesFlag() cli.Flag {
	return &cli.StringFlag{Name: "known-devices", Usage: "trust-on-first-use `FILE` of device fingerprints", Value: defaults().knownDevices, EnvVars: []string{"VSP_KNOWN_DEVICES"}}
}
