package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// Paths are the default locations of the daemon's files, which depend on
// whether it runs as root (a system service) or as a user.
type Paths struct {
	DaemonFile   string // the daemon-wide settings file (Daemon)
	ConfigDir    string // the port directory, one <name>.toml per port
	Socket       string // the control socket
	KnownDevices string // pins learned by trust.mode = "tofu"
	LinkDir      string // where a bare `link` name is placed
}

// DefaultPaths returns the default paths for the current user:
//
//	           root                      other users
//	DaemonFile   /etc/vsp/vsp.toml         $XDG_CONFIG_HOME/vsp/vsp.toml
//	ConfigDir    /etc/vsp/ports.d          $XDG_CONFIG_HOME/vsp/ports.d
//	Socket       /run/vsp/vsp.sock         $XDG_RUNTIME_DIR/vsp/vsp.sock
//	KnownDevices /var/lib/vsp/known_devices $XDG_STATE_HOME/vsp/known_devices
//	LinkDir      /dev                      $XDG_RUNTIME_DIR/vsp/dev
//
// An unset or relative XDG variable falls back to its XDG default
// ($HOME/.config, $HOME/.local/state); an unusable $XDG_RUNTIME_DIR falls
// back to $TMPDIR/vsp-<uid>. Creating links in /dev needs root, hence the
// per-user link directory.
func DefaultPaths() Paths {
	return defaultPaths(os.Geteuid(), os.Getenv)
}

// DefaultDirs returns the default port directory and control socket path
// (see DefaultPaths).
func DefaultDirs() (configDir, socketPath string) {
	p := DefaultPaths()
	return p.ConfigDir, p.Socket
}

func defaultPaths(uid int, getenv func(string) string) Paths {
	if uid == 0 {
		return Paths{
			DaemonFile:   "/etc/vsp/vsp.toml",
			ConfigDir:    "/etc/vsp/ports.d",
			Socket:       "/run/vsp/vsp.sock",
			KnownDevices: "/var/lib/vsp/known_devices",
			LinkDir:      "/dev",
		}
	}
	xdg := func(name, fallback string) string {
		if v := getenv(name); filepath.IsAbs(v) {
			return v
		}
		home := getenv("HOME")
		if !filepath.IsAbs(home) {
			home = filepath.Join(tmpDir(getenv), "vsp-"+strconv.Itoa(uid), "home")
		}
		return filepath.Join(home, fallback)
	}
	cfg := filepath.Join(xdg("XDG_CONFIG_HOME", ".config"), "vsp")
	run := getenv("XDG_RUNTIME_DIR")
	if !filepath.IsAbs(run) {
		run = filepath.Join(tmpDir(getenv), "vsp-"+strconv.Itoa(uid))
	} else {
		run = filepath.Join(run, "vsp")
	}
	return Paths{
		DaemonFile:   filepath.Join(cfg, "vsp.toml"),
		ConfigDir:    filepath.Join(cfg, "ports.d"),
		Socket:       filepath.Join(run, "vsp.sock"),
		KnownDevices: filepath.Join(xdg("XDG_STATE_HOME", ".local/state"), "vsp", "known_devices"),
		LinkDir:      filepath.Join(run, "dev"),
	}
}

func tmpDir(getenv func(string) string) string {
	if t := getenv("TMPDIR"); filepath.IsAbs(t) {
		return t
	}
	return "/tmp"
}

// Log formats and levels for Daemon.
const (
	LogText = "text"
	LogJSON = "json"
)

// Daemon holds the daemon-wide settings from the optional file
// /etc/vsp/vsp.toml (see DefaultPaths), with defaults applied:
//
//	config_dir    = "/etc/vsp/ports.d"
//	socket        = "/run/vsp/vsp.sock"
//	link_dir      = "/dev"
//	known_devices = "/var/lib/vsp/known_devices"
//	log_format    = "text"       # text | json
//	log_level     = "info"       # debug | info | warn | error
//	metrics       = ""           # host:port for Prometheus /metrics; "" = off
//
// Paths must be absolute.
type Daemon struct {
	File         string // the file read, for messages
	ConfigDir    string // config_dir
	Socket       string // socket
	LinkDir      string // link_dir
	KnownDevices string // known_devices
	LogFormat    string // log_format: LogText or LogJSON
	LogLevel     string // log_level: debug, info, warn or error
	Metrics      string // metrics: listen address, "" = off
}

var daemonSpecs = []spec{
	{key: "config_dir", kind: kString},
	{key: "socket", kind: kString},
	{key: "link_dir", kind: kString},
	{key: "known_devices", kind: kString},
	{key: "log_format", kind: kString},
	{key: "log_level", kind: kString},
	{key: "metrics", kind: kString},
}

// maxSocketPath is the longest path a Unix socket address can hold on
// Linux (sun_path is 108 bytes including the terminating NUL).
const maxSocketPath = 107

// LoadDaemon reads the daemon-wide settings file at path. A missing file
// is not an error: it yields the defaults. Errors are *Error values with
// file:line, joined when there are several.
func LoadDaemon(path string) (*Daemon, error) {
	data, err := readFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			data = nil
		} else {
			return nil, err
		}
	}
	return ParseDaemon(path, data, DefaultPaths())
}

// ParseDaemon decodes a daemon settings file, filling unset keys from def.
func ParseDaemon(file string, data []byte, def Paths) (*Daemon, error) {
	d, terr := parseDocument(file, data, daemonSpecs)
	if terr != nil {
		return nil, terr
	}
	c := &Daemon{
		File:         file,
		ConfigDir:    d.str("config_dir"),
		Socket:       d.str("socket"),
		LinkDir:      d.str("link_dir"),
		KnownDevices: d.str("known_devices"),
		LogFormat:    d.str("log_format"),
		LogLevel:     d.str("log_level"),
		Metrics:      d.str("metrics"),
	}
	v := validator{file: file, ix: d.ix, skip: d.bad}
	for _, f := range []struct {
		key string
		val *string
		def string
	}{
		{"config_dir", &c.ConfigDir, def.ConfigDir},
		{"socket", &c.Socket, def.Socket},
		{"link_dir", &c.LinkDir, def.LinkDir},
		{"known_devices", &c.KnownDevices, def.KnownDevices},
	} {
		if !d.has(f.key) {
			*f.val = f.def
			continue
		}
		if !filepath.IsAbs(*f.val) || filepath.Clean(*f.val) != *f.val {
			v.errorf(f.key, ErrInvalid, "want a clean absolute path, got %q", *f.val)
		}
	}
	if len(c.Socket) > maxSocketPath {
		v.errorf("socket", ErrInvalid, "path is %d bytes; a Unix socket path can have at most %d", len(c.Socket), maxSocketPath)
	}
	if c.LogFormat == "" && !d.has("log_format") {
		c.LogFormat = LogText
	}
	v.enum("log_format", c.LogFormat, LogText, LogJSON)
	if c.LogLevel == "" && !d.has("log_level") {
		c.LogLevel = "info"
	}
	v.enum("log_level", c.LogLevel, "debug", "info", "warn", "error")
	if c.Metrics != "" {
		if err := checkHostPort(c.Metrics, true); err != nil {
			v.errorf("metrics", ErrInvalid, "%v", err)
		}
	}
	if errs := append(d.errs, v.errs...); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}
