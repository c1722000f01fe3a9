package config

import (
	"errors"
	"fmt"
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

// SystemPaths are the system daemon's paths (root's DefaultPaths), which
// a non-root member of the daemon's group uses to reach it.
func SystemPaths() Paths {
	return defaultPaths(0, os.Getenv)
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
	LogAuto = "auto" // the default: text (with journal priorities under systemd); not a file value
	LogText = "text"
	LogJSON = "json"
)

// DaemonKeys returns the keys of the daemon settings file, in the order the
// documentation lists them.
func DaemonKeys() []string {
	return []string{"config_dir", "socket", "link_dir", "known_devices", "log_format", "log_level", "metrics"}
}

// Daemon holds the daemon-wide settings from the optional file
// /etc/vsp/vsp.toml (see DefaultPaths), with defaults applied:
//
//	config_dir    = "/etc/vsp/ports.d"
//	socket        = "/run/vsp/vsp.sock"
//	link_dir      = "/dev"
//	known_devices = "/var/lib/vsp/known_devices"
//	log_format    = "auto"       # text | json; auto (unset) = text
//	log_level     = "info"       # debug | info | warn | error
//	metrics       = ""           # host:port for Prometheus /metrics; "" = off
//
// Paths must be absolute.
type Daemon struct {
	File         string         // the file read, for messages
	Exists       bool           // the file was there; false: every value is a default
	Lines        map[string]int // the line of each key the file sets
	ConfigDir    string         // config_dir
	Socket       string         // socket
	LinkDir      string         // link_dir
	KnownDevices string         // known_devices
	LogFormat    string         // log_format: LogAuto, LogText or LogJSON
	LogLevel     string         // log_level: debug, info, warn or error
	Metrics      string         // metrics: listen address, "" = off
}

// Value returns the value of one of DaemonKeys().
func (c *Daemon) Value(key string) string {
	switch key {
	case "config_dir":
		return c.ConfigDir
	case "socket":
		return c.Socket
	case "link_dir":
		return c.LinkDir
	case "known_devices":
		return c.KnownDevices
	case "log_format":
		return c.LogFormat
	case "log_level":
		return c.LogLevel
	case "metrics":
		return c.Metrics
	}
	return ""
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

// LoadDaemon reads the daemon-wide settings file at path, with defaults
// for the current user (DefaultPaths). A missing file is an error only
// when mustExist is set (a file named explicitly); otherwise it yields the
// defaults. Errors are *Error values with file:line, joined when there are
// several.
func LoadDaemon(path string, mustExist bool) (*Daemon, error) {
	data, err := readFile(path)
	exists := err == nil
	if err != nil {
		if mustExist || !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		data = nil
	}
	d, err := ParseDaemon(path, data, DefaultPaths())
	if d != nil {
		d.Exists = exists
	}
	return d, err
}

// ParseDaemon decodes a daemon settings file, filling unset keys from def.
func ParseDaemon(file string, data []byte, def Paths) (*Daemon, error) {
	d, terr := parseDocument(file, data, daemonSpecs)
	if terr != nil {
		return nil, terr
	}
	c := &Daemon{
		File:         file,
		Lines:        map[string]int{},
		ConfigDir:    d.str("config_dir"),
		Socket:       d.str("socket"),
		LinkDir:      d.str("link_dir"),
		KnownDevices: d.str("known_devices"),
		LogFormat:    d.str("log_format"),
		LogLevel:     d.str("log_level"),
		Metrics:      d.str("metrics"),
	}
	for _, k := range DaemonKeys() {
		if d.has(k) {
			c.Lines[k] = d.ix.lookup(k).line
		}
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
	if !d.has("log_format") {
		c.LogFormat = LogAuto
	} else {
		v.enum("log_format", c.LogFormat, LogText, LogJSON)
	}
	if !d.has("log_level") {
		c.LogLevel = "info"
	}
	for _, k := range []string{"socket", "log_level", "metrics"} {
		if d.has(k) {
			if err := CheckDaemonValue(k, c.Value(k)); err != nil {
				v.errorf(k, ErrInvalid, "%v", err)
			}
		}
	}
	if errs := append(d.errs, v.errs...); len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return c, nil
}

// CheckDaemonValue checks a value of a daemon setting given on the command
// line or in the environment, with the rules of the settings file except
// that paths may be relative and log_format may be "auto".
func CheckDaemonValue(key, val string) error {
	switch key {
	case "socket":
		if len(val) > maxSocketPath {
			return fmt.Errorf("path is %d bytes; a Unix socket path can have at most %d", len(val), maxSocketPath)
		}
	case "log_format":
		if val != LogAuto && val != LogText && val != LogJSON {
			return fmt.Errorf("want one of %s, %s, %s; got %q", LogAuto, LogText, LogJSON, val)
		}
	case "log_level":
		if val != "debug" && val != "info" && val != "warn" && val != "error" {
			return fmt.Errorf("want one of debug, info, warn, error; got %q", val)
		}
	case "metrics":
		if val != "" {
			return checkHostPort(val, true)
		}
	}
	return nil
}
