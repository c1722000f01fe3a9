package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/internal/logging"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/config"
)

// The daemon settings (the keys of the settings file) are resolved once per
// command, the same way for every subcommand that takes them:
//
//	flag > environment > settings file > built-in default (config.DefaultPaths)
//
// The settings file is --config FILE, else $VSP_CONFIG, else the default
// place (config.DefaultPaths().DaemonFile), which may be missing.

// settingDef ties a settings-file key to its flag and environment variable.
type settingDef struct {
	key, flag, env, usage string
}

func settingDefs() []settingDef {
	return []settingDef{
		{"config_dir", "config-dir", "VSP_CONFIG_DIR", "directory of port files (`DIR`/NAME.toml)"},
		{"socket", "socket", "VSP_SOCKET", "daemon control socket `PATH`"},
		{"link_dir", "link-dir", "VSP_LINK_DIR", "`DIR` for bare link names"},
		{"known_devices", "known-devices", "VSP_KNOWN_DEVICES", "trust-on-first-use `FILE` of device fingerprints"},
		{"log_format", "log-format", "VSP_LOG_FORMAT", "log `FORMAT`: text or json (auto: text; on the systemd journal each line carries its priority)"},
		{"log_level", "log-level", "VSP_LOG_LEVEL", "log `LEVEL`: debug, info, warn or error"},
		{"metrics", "metrics", "VSP_METRICS", "serve Prometheus /metrics over TCP on `[HOST]:PORT`"},
	}
}

func settingDefOf(key string) settingDef {
	for _, d := range settingDefs() {
		if d.key == key {
			return d
		}
	}
	panic("vsp: no setting " + key)
}

// builtinDefault is the default of a setting, as the settings file fills it.
func builtinDefault(key string) string {
	d, err := config.ParseDaemon("", nil, config.DefaultPaths())
	if err != nil {
		panic(err) // an empty file is valid
	}
	return d.Value(key)
}

// settingFlag is the flag of a setting; its help names the whole chain of
// places the value can come from.
func settingFlag(key string) cli.Flag {
	d := settingDefOf(key)
	def := builtinDefault(key)
	if def == "" {
		def = "off"
	}
	return &cli.StringFlag{Name: d.flag, Usage: fmt.Sprintf("%s (else $%s, else %s in the settings file, else %s)", d.usage, d.env, d.key, def)}
}

func configDirFlag() cli.Flag    { return settingFlag("config_dir") }
func socketFlag() cli.Flag       { return settingFlag("socket") }
func knownDevicesFlag() cli.Flag { return settingFlag("known_devices") }
func linkDirFlag() cli.Flag      { return settingFlag("link_dir") }

// logFlags are the logging flags of the commands that run ports.
func logFlags() []cli.Flag {
	return []cli.Flag{settingFlag("log_format"), settingFlag("log_level"),
		&cli.BoolFlag{Name: "debug", Usage: "verbose logs: the same as --log-level debug"}}
}

const configFlagName = "config"

func configFileFlag() cli.Flag {
	return &cli.StringFlag{Name: configFlagName, Usage: "daemon settings `FILE` (else $VSP_CONFIG, else " +
		config.DefaultPaths().DaemonFile + " when it exists)"}
}

// settings are the daemon settings in effect for this command.
type settings struct {
	file       string // the settings file
	fileSource string // "flag --config", "env VSP_CONFIG" or "default"
	mustExist  bool   // the file was named explicitly
	explicit   map[string]service.Setting
	list       []service.Setting // settings_file, then config.DaemonKeys()
	level      *slog.LevelVar    // the running log level, changed by reload
	dedup      *logging.Dedup    // the logger's rate limit (logger); nil before
}

// hasFlag reports whether the command defines flag name.
func hasFlag(c *cli.Context, name string) bool {
	if c.Command == nil {
		return false
	}
	for _, f := range c.Command.Flags {
		for _, n := range f.Names() {
			if n == name {
				return true
			}
		}
	}
	return false
}

// resolveSettings reads the flags, the environment and the settings file.
func resolveSettings(c *cli.Context, lookupEnv func(string) (string, bool)) (*settings, error) {
	s := &settings{file: config.DefaultPaths().DaemonFile, fileSource: "default", explicit: map[string]service.Setting{}}
	if hasFlag(c, configFlagName) && c.IsSet(configFlagName) {
		s.file, s.fileSource, s.mustExist = c.String(configFlagName), "flag --"+configFlagName, true
	} else if v, ok := lookupEnv("VSP_CONFIG"); ok && v != "" {
		s.file, s.fileSource, s.mustExist = v, "env VSP_CONFIG", true
	}
	if s.mustExist {
		if abs, err := filepath.Abs(s.file); err == nil {
			s.file = abs // the daemon reloads it later from wherever it is
		}
	}
	for _, d := range settingDefs() {
		var val, src string
		switch {
		case hasFlag(c, d.flag) && c.IsSet(d.flag):
			val, src = c.String(d.flag), "flag --"+d.flag
		case d.key == "log_level" && hasFlag(c, "debug") && c.Bool("debug"):
			val, src = "debug", "flag --debug"
		default:
			v, ok := lookupEnv(d.env)
			if !ok || v == "" {
				continue
			}
			val, src = v, "env "+d.env
		}
		if err := config.CheckDaemonValue(d.key, val); err != nil {
			if strings.HasPrefix(src, "flag") {
				return nil, usageError{fmt.Errorf("%s: %w", strings.TrimPrefix(src, "flag "), err)}
			}
			return nil, fmt.Errorf("%s: %w", strings.TrimPrefix(src, "env "), err)
		}
		if strings.HasSuffix(d.key, "_dir") || d.key == "socket" || d.key == "known_devices" {
			if abs, err := filepath.Abs(val); err == nil {
				val = abs
			}
		}
		s.explicit[d.key] = service.Setting{Key: d.key, Value: val, Source: src}
	}
	list, err := s.load()
	if err != nil {
		return nil, err
	}
	s.list = list
	if c.Command != nil && clientCommands[c.Command.Name] && os.Geteuid() != 0 {
		s.preferSystemDaemon()
	}
	// Every setting flag of the command now holds the value in effect, so
	// the commands read c.String(flag) whatever the value's source.
	for _, d := range settingDefs() {
		if hasFlag(c, d.flag) && !c.IsSet(d.flag) {
			if err := c.Set(d.flag, s.get(d.key)); err != nil {
				return nil, fmt.Errorf("--%s: %w", d.flag, err)
			}
		}
	}
	return s, nil
}

// load reads the settings file and combines it with the flags and the
// environment.
func (s *settings) load() ([]service.Setting, error) {
	d, err := config.LoadDaemon(s.file, s.mustExist)
	if err != nil {
		return nil, fmt.Errorf("settings file (%s): %w", s.fileSource, err)
	}
	fileSrc := s.fileSource
	if !d.Exists {
		fileSrc += " (no such file)"
	}
	list := []service.Setting{{Key: "settings_file", Value: s.file, Source: fileSrc}}
	for _, k := range config.DaemonKeys() {
		if e, ok := s.explicit[k]; ok {
			list = append(list, e)
			continue
		}
		src := "default"
		if line, ok := d.Lines[k]; ok {
			src = fmt.Sprintf("file %s:%d", s.file, line)
		}
		list = append(list, service.Setting{Key: k, Value: d.Value(k), Source: src})
	}
	return list, nil
}

// clientCommands talk to a running daemon (or act on its files) rather than
// being one: as non-root they use the system daemon when they may.
var clientCommands = map[string]bool{"list": true, "status": true, "create": true, "delete": true,
	"trust": true, "config": true, completeCommand: true}

// systemSource is the source of a setting taken from the system daemon's
// defaults by a non-root member of its group.
const systemSource = "default (the system daemon's: its socket is accessible)"

// preferSystemDaemon makes a non-root client use the system daemon when
// nothing names a socket (flag, environment, settings file) and the system
// daemon's socket exists and this user may connect to it (the vsp group):
// the socket, and the port directory, link directory and known-devices
// file that go with it, unless those are set.
func (s *settings) preferSystemDaemon() {
	sys := config.SystemPaths()
	if s.source("socket") != "default" || !socketAccessible(sys.Socket) {
		return
	}
	for i, st := range s.list {
		if st.Source != "default" {
			continue
		}
		switch st.Key {
		case "socket":
			s.list[i].Value = sys.Socket
		case "config_dir":
			s.list[i].Value = sys.ConfigDir
		case "link_dir":
			s.list[i].Value = sys.LinkDir
		case "known_devices":
			s.list[i].Value = sys.KnownDevices
		default:
			continue
		}
		s.list[i].Source = systemSource
	}
}

// source returns where a setting's value comes from.
func (s *settings) source(key string) string {
	for _, st := range s.list {
		if st.Key == key {
			return st.Source
		}
	}
	return ""
}

// get returns a setting's value in effect.
func (s *settings) get(key string) string {
	for _, st := range s.list {
		if st.Key == key {
			return st.Value
		}
	}
	return ""
}

// logger returns the command's logger, at the settings' level and format.
func (s *settings) logger(w io.Writer) (*slog.Logger, error) {
	s.level = new(slog.LevelVar)
	if err := s.level.UnmarshalText([]byte(s.get("log_level"))); err != nil {
		return nil, fmt.Errorf("log_level: %w", err)
	}
	log, d, err := newLogger(w, s.get("log_format"), s.level)
	s.dedup = d
	return log, err
}

// reload re-reads the settings file (the daemon's SIGHUP): the log level
// and the metrics address change live; any other change waits for the next
// start, and until then the running value is what the daemon reports.
func (s *settings) reload(log *slog.Logger) (string, []service.Setting, error) {
	list, err := s.load()
	if err != nil {
		return "", nil, err
	}
	for i, n := range list {
		old := s.list[i]
		if n.Value == old.Value {
			continue
		}
		switch n.Key {
		case "log_level":
			var lv slog.Level
			if err := lv.UnmarshalText([]byte(n.Value)); err != nil {
				return "", nil, fmt.Errorf("log_level: %w", err)
			}
			s.level.Set(lv)
			log.Info("log level changed", "from", old.Value, "to", n.Value, "source", n.Source)
		case "metrics":
			// the daemon moves the listener
		default:
			log.Warn("setting changed; it takes effect at the next start of the daemon",
				"key", n.Key, "running", old.Value, "new", n.Value, "source", n.Source)
			list[i] = old
		}
	}
	s.list = list
	return s.get("metrics"), list, nil
}

// explicitValue is a setting's value when a flag or the environment gave it.
func (s *settings) explicitValue(key string) (string, bool) {
	e, ok := s.explicit[key]
	return e.Value, ok
}

// explicitArgs are the command-line arguments that give a daemon the
// settings this command got from flags and the environment (for a service
// unit, which has neither the flags nor the environment).
func (s *settings) explicitArgs() []string {
	var args []string
	if s.mustExist {
		args = append(args, "--"+configFlagName, s.file)
	}
	for _, d := range settingDefs() {
		if e, ok := s.explicit[d.key]; ok {
			args = append(args, "--"+d.flag, e.Value)
		}
	}
	return args
}

// wireSettings gives every command that takes a setting the --config flag
// and resolves the settings before its action runs.
func wireSettings(e *env, cmds []*cli.Command) {
	for _, cmd := range cmds {
		wireSettings(e, cmd.Subcommands)
		takes := false
		for _, f := range cmd.Flags {
			for _, d := range settingDefs() {
				if f.Names()[0] == d.flag {
					takes = true
				}
			}
		}
		if !takes {
			continue
		}
		cmd.Flags = append(cmd.Flags, configFileFlag())
		before := cmd.Before
		cmd.Before = func(c *cli.Context) error {
			s, err := resolveSettings(c, os.LookupEnv)
			if err != nil {
				return err
			}
			e.settings = s
			if before != nil {
				return before(c)
			}
			return nil
		}
	}
}
