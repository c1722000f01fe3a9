package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var testPaths = Paths{
	DaemonFile:   "/etc/vsp/vsp.toml",
	ConfigDir:    "/etc/vsp/ports.d",
	Socket:       "/run/vsp/vsp.sock",
	KnownDevices: "/var/lib/vsp/known_devices",
	LinkDir:      "/dev",
}

func TestParseDaemon(t *testing.T) {
	defaults := Daemon{File: "d.toml", ConfigDir: "/etc/vsp/ports.d", Socket: "/run/vsp/vsp.sock", LinkDir: "/dev",
		KnownDevices: "/var/lib/vsp/known_devices", LogFormat: LogAuto, LogLevel: "info", Lines: map[string]int{}}
	for _, tc := range []struct {
		name string
		doc  string
		want Daemon
		errs []string
	}{
		{name: "empty", doc: "", want: defaults},
		{name: "comments only", doc: "# nothing\n", want: defaults},
		{name: "everything", doc: "config_dir = \"/srv/vsp/ports\"\nsocket = \"/run/v.sock\"\nlink_dir = \"/dev/vsp\"\nknown_devices = \"/srv/vsp/known\"\nlog_format = \"json\"\nlog_level = \"debug\"\nmetrics = \"127.0.0.1:9750\"\n",
			want: Daemon{File: "d.toml", ConfigDir: "/srv/vsp/ports", Socket: "/run/v.sock", LinkDir: "/dev/vsp", KnownDevices: "/srv/vsp/known",
				LogFormat: LogJSON, LogLevel: "debug", Metrics: "127.0.0.1:9750",
				Lines: map[string]int{"config_dir": 1, "socket": 2, "link_dir": 3, "known_devices": 4, "log_format": 5, "log_level": 6, "metrics": 7}}},
		{name: "some keys", doc: "# vsp\n\nlog_level = \"warn\"\nmetrics = \":9750\"\n",
			want: Daemon{File: "d.toml", ConfigDir: "/etc/vsp/ports.d", Socket: "/run/vsp/vsp.sock", LinkDir: "/dev",
				KnownDevices: "/var/lib/vsp/known_devices", LogFormat: LogAuto, LogLevel: "warn", Metrics: ":9750",
				Lines: map[string]int{"log_level": 3, "metrics": 4}}},
		{name: "auto is not a file value", doc: "log_format = \"auto\"\n",
			errs: []string{`d.toml:1:1: log_format: want one of text, json; got "auto"`}},
		{name: "errors", doc: "socket = \"vsp.sock\"\nlog_fromat = \"json\"\nlog_level = \"verbose\"\nmetrics = \"9750\"\nlink_dir = 1\n",
			errs: []string{
				`d.toml:1:1: socket: want a clean absolute path, got "vsp.sock"`,
				`d.toml:2:1: log_fromat: unknown key (did you mean "log_format"?)`,
				`d.toml:3:1: log_level: want one of debug, info, warn, error; got "verbose"`,
				`d.toml:4:1: metrics: missing port: want host:port, e.g. ":1470" or "192.168.0.10:1470", got "9750"`,
				`d.toml:5:1: link_dir: want a string, got integer 1`,
			}},
		{name: "long socket", doc: "socket = \"/" + strings.Repeat("s", 120) + "\"\n",
			errs: []string{`d.toml:1:1: socket: path is 121 bytes; a Unix socket path can have at most 107`}},
		{name: "syntax", doc: "socket = \n", errs: []string{`d.toml:1:10: unexpected character U+000A at start of value`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := ParseDaemon("d.toml", []byte(tc.doc), testPaths)
			if tc.errs != nil {
				if err == nil {
					t.Fatalf("ParseDaemon succeeded: %+v", d)
				}
				if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.errs) {
					t.Errorf("ParseDaemon:\n got %q\nwant %q", got, tc.errs)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*d, tc.want) {
				t.Errorf("ParseDaemon:\n got %+v\nwant %+v", *d, tc.want)
			}
		})
	}
}

func TestLoadDaemon(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "vsp.toml")
	d, err := LoadDaemon(missing, false)
	if err != nil {
		t.Fatalf("LoadDaemon(missing): %v", err)
	}
	def := DefaultPaths()
	if d.ConfigDir != def.ConfigDir || d.Socket != def.Socket || d.LogFormat != LogAuto || d.File != missing || d.Exists {
		t.Errorf("LoadDaemon(missing) = %+v", d)
	}
	if _, err := LoadDaemon(missing, true); !errors.Is(err, ErrRead) || !strings.Contains(err.Error(), missing) {
		t.Errorf("LoadDaemon(missing, mustExist) = %v", err)
	}
	if err := os.WriteFile(missing, []byte("log_format = \"xml\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = LoadDaemon(missing, false)
	var e *Error
	if !errors.As(err, &e) || e.File != missing || e.Line != 1 || e.Key != "log_format" {
		t.Errorf("LoadDaemon(bad) = %v", err)
	}
	if _, err := LoadDaemon(dir, false); !errors.Is(err, ErrRead) {
		t.Errorf("LoadDaemon(dir) = %v", err)
	}
}

func TestDefaultPaths(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		name string
		uid  int
		env  map[string]string
		want Paths
	}{
		{"root ignores XDG", 0, map[string]string{"XDG_CONFIG_HOME": "/home/x/.config"}, testPaths},
		{"user with XDG", 1000, map[string]string{"XDG_CONFIG_HOME": "/h/cfg", "XDG_RUNTIME_DIR": "/run/user/1000", "XDG_STATE_HOME": "/h/state", "HOME": "/h"},
			Paths{"/h/cfg/vsp/vsp.toml", "/h/cfg/vsp/ports.d", "/run/user/1000/vsp/vsp.sock", "/h/state/vsp/known_devices", "/run/user/1000/vsp/dev"}},
		{"user with HOME only", 1000, map[string]string{"HOME": "/h", "XDG_CONFIG_HOME": "relative"},
			Paths{"/h/.config/vsp/vsp.toml", "/h/.config/vsp/ports.d", "/tmp/vsp-1000/vsp.sock", "/h/.local/state/vsp/known_devices", "/tmp/vsp-1000/dev"}},
		{"user with nothing", 1000, map[string]string{"TMPDIR": "/var/tmp"},
			Paths{"/var/tmp/vsp-1000/home/.config/vsp/vsp.toml", "/var/tmp/vsp-1000/home/.config/vsp/ports.d", "/var/tmp/vsp-1000/vsp.sock", "/var/tmp/vsp-1000/home/.local/state/vsp/known_devices", "/var/tmp/vsp-1000/dev"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := defaultPaths(tc.uid, env(tc.env)); got != tc.want {
				t.Errorf("defaultPaths:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestCheckDaemonValue(t *testing.T) {
	for _, tc := range []struct {
		key, val, err string
	}{
		{"log_format", "auto", ""},
		{"log_format", "json", ""},
		{"log_format", "xml", `want one of auto, text, json; got "xml"`},
		{"log_level", "debug", ""},
		{"log_level", "trace", `want one of debug, info, warn, error; got "trace"`},
		{"metrics", "", ""},
		{"metrics", "127.0.0.1:9750", ""},
		{"metrics", ":9750", ""},
		{"metrics", "9750", "missing port"},
		{"socket", "rel/vsp.sock", ""},
		{"socket", "/" + strings.Repeat("s", 107), "at most 107"},
		{"config_dir", "ports.d", ""},
	} {
		err := CheckDaemonValue(tc.key, tc.val)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckDaemonValue(%s, %q) = %v, want %q", tc.key, tc.val, err, tc.err)
		}
	}
}
