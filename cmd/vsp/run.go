package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
)

// portFlags are the flags that describe one port on the command line.
func portFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "device", Usage: "device address `HOST:PORT` (device in TCP-server mode); repeat for backups", EnvVars: []string{"VSP_DEVICE"}},
		&cli.StringFlag{Name: "listen", Usage: "listen on `[HOST]:PORT` for a device in TCP-client (COD) mode instead of dialing --device"},
		&cli.StringFlag{Name: "listen-cert", Usage: "with --listen and TLS: the host's key and certificate `FILE` (PEM, created 0600 on first start; default next to --known-devices)"},
		&cli.StringFlag{Name: "device-mac", Usage: "with --listen: the `MAC` the device must send first (ezTCP Send MAC Address); others are refused"},
		&cli.StringSliceFlag{Name: "allow-from", Usage: "with --listen: `ADDR` (IP or CIDR) a device may connect from; repeat for more (default: any, with a warning)"},
		&cli.BoolFlag{Name: "replace-session", Usage: "with --listen: a new device session replaces the current one (default: refused unless it comes from the same --device-mac)"},
		&cli.StringFlag{Name: "link", Usage: "tty symlink `PATH` the application opens (a bare name goes into --link-dir)", Value: "ttyVSP0", EnvVars: []string{"VSP_LINK"}},
		&cli.StringFlag{Name: "tls", Usage: "TLS profile: off, legacy (TLS 1.0-1.2, AES256-SHA, small RSA keys: ezTCP) or modern (TLS 1.2+)", Value: config.DefaultTLS, DefaultText: config.DefaultTLS + "; off with --transport udp", EnvVars: []string{"VSP_TLS"}},
		&cli.StringFlag{Name: "pin", Usage: "device certificate fingerprint `sha256:HEX` (see `vsp trust`)", EnvVars: []string{"VSP_PIN"}},
		&cli.BoolFlag{Name: "insecure-no-verify", Usage: "accept any device certificate (DANGEROUS: anyone on the path can read and inject serial data)"},
		&cli.StringFlag{Name: "trust", Usage: "certificate trust `MODE`: pin (with --pin), tofu (first certificate seen is recorded in --known-devices; a change is refused until `vsp trust --accept`), ca (with --ca-file) or insecure"},
		&cli.StringFlag{Name: "ca-file", Usage: "PEM bundle of CA certificates for --trust ca"},
		&cli.StringFlag{Name: "server-name", Usage: "name (or IP) the device certificate must carry with --trust ca; also sent as SNI"},
		&cli.StringFlag{Name: "dial-timeout", Usage: "TCP connect + TLS handshake timeout", Value: config.DefaultDialTimeout.String()},
		&cli.StringFlag{Name: "keepalive-idle", Usage: "idle time before the first TCP keep-alive probe", Value: config.DefaultKeepAliveIdle.String()},
		&cli.StringFlag{Name: "keepalive-interval", Usage: "time between TCP keep-alive probes", Value: config.DefaultKeepAliveInterval.String()},
		&cli.IntFlag{Name: "keepalive-count", Usage: "unanswered keep-alive probes before the link is dropped", Value: config.DefaultKeepAliveCount},
		&cli.StringFlag{Name: "user-timeout", Usage: "TCP_USER_TIMEOUT: drop the link when sent data stays unacknowledged this long", Value: config.DefaultUserTimeout.String()},
		&cli.StringFlag{Name: "backoff-min", Usage: "first redial delay after an outage", Value: config.DefaultBackoffMin.String()},
		&cli.StringFlag{Name: "backoff-max", Usage: "longest redial delay", Value: config.DefaultBackoffMax.String()},
		&cli.StringFlag{Name: "buffer", Usage: "outage buffer `SIZE` held while the link is down (e.g. 64KiB)", Value: config.DefaultBuffer.String()},
		&cli.StringFlag{Name: "stale-data", Usage: "device bytes arriving while no application has the port open: discard or keep", Value: config.DefaultStaleData},
		&cli.StringFlag{Name: "connect", Usage: "when to hold a session to the device: always, or on-open (only while an application has the tty open, so other hosts can use the device meanwhile)", Value: config.DefaultConnect},
		&cli.StringFlag{Name: "release-after", Usage: "with --connect on-open: keep the session this `DURATION` after the last application closes the tty", DefaultText: "release at once"},
		&cli.StringFlag{Name: "transport", Usage: "tcp (device in TCP-server mode, T2S) or udp (device in UDP mode, U2S; no TLS)", Value: config.DefaultTransport},
		&cli.IntFlag{Name: "datagram-size", Usage: "with --transport udp: the largest datagram sent to the device, in bytes", Value: config.DefaultDatagramSize},
		&cli.StringFlag{Name: "owner", Usage: "owner `USER` of the tty"},
		&cli.StringFlag{Name: "group", Usage: "group `GROUP` of the tty (e.g. dialout)"},
		&cli.StringFlag{Name: "mode", Usage: "permission `MODE` of the tty, octal (e.g. 0660)"},
		&cli.UintFlag{Name: "baud", Usage: "the device's configured serial speed; the port warns when the application sets another", DefaultText: "not set: nothing is checked"},
		&cli.BoolFlag{Name: "strict-serial", Usage: "hold data while the application's baud rate differs from --baud"},
		&cli.StringFlag{Name: "trace", Usage: "write the port's bytes and events, as `vsp monitor` shows them, to `FILE` (created 0600; see [trace] in docs/configuration.md)"},
		&cli.BoolFlag{Name: "rfc2217", Usage: "negotiate RFC 2217 (Telnet COM Port Control) and forward the application's baud rate, stop bits and flow control to the device (plain TCP devices; not with SSL on an ezTCP)"},
	}
}

func runCommand(e *env) *cli.Command {
	flags := append(portFlags(),
		configDirFlag(), socketFlag(), knownDevicesFlag(), linkDirFlag(), settingFlag("metrics"))
	flags = append(flags, logFlags()...)
	return &cli.Command{
		Name:  "run",
		Usage: "run the daemon (every port file) or, with --device, one port in the foreground",
		UsageText: "vsp run [--config-dir DIR] [--socket PATH]\n" +
			"vsp run --device HOST:PORT [--link PATH] [--tls legacy|modern|off] [--pin sha256:HEX] ...",
		Description: "Without --device, runs the daemon: one port per file in --config-dir, reloaded\n" +
			"live when files change, with live state on the control socket (vsp list, vsp status).\n" +
			"With --device, runs just that port until interrupted.\n" +
			"Either way the tty stays up while the link is redialed with backoff after every outage.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			log, err := e.settings.logger(e.stderr)
			if err != nil {
				return err
			}
			defer e.settings.dedup.Flush() // the counts of warnings left out, at exit
			if len(c.StringSlice("device")) == 0 && c.String("listen") == "" {
				return runDaemon(c, e, log)
			}
			spec, err := runSpec(c)
			if err != nil {
				return err
			}
			p, err := bridge.StartPort(spec, log)
			if err != nil {
				return err
			}
			st := p.Status()
			target := "listen " + spec.Listen.Addr
			if len(st.Devices) > 0 {
				target = "device " + st.Devices[0]
			}
			fmt.Fprintf(e.stdout, "port %s: %s -> %s, %s\n", st.Name, st.Link, st.TTY, target)
			<-c.Context.Done()
			return p.Close()
		},
	}
}

// runSpec is the port `vsp run --device/--listen` runs: the port file the
// flags describe (portFromFlags, as `vsp create` writes it), made into a
// spec by service.SpecFromConfig exactly as the daemon does for a file. The
// port is named after the link's base name.
//
// --listen-cert is the one run-only setting, applied after SpecFromConfig:
// the daemon keeps a listening port's key and certificate in its state
// directory (next to the known-devices file, NAME-listen.pem), where run
// puts it too by default; a foreground run may need it elsewhere (a
// read-only state directory, a certificate shared with another tool), a
// daemon port has no such need, so it is not a port-file key.
func runSpec(c *cli.Context) (bridge.PortSpec, error) {
	link := c.String("link")
	p, err := portFromFlags(c, "run", filepath.Base(link), link)
	if err != nil {
		return bridge.PortSpec{}, err
	}
	// Socket: its directory holds the link locks, shared with the daemon.
	spec, err := service.SpecFromConfig(p, config.Paths{LinkDir: c.String("link-dir"), KnownDevices: c.String("known-devices"), Socket: c.String("socket")})
	if err != nil {
		return bridge.PortSpec{}, usageError{err}
	}
	if c.IsSet("listen-cert") {
		if p.Listen == "" {
			return bridge.PortSpec{}, usagef("--listen-cert: only with --listen")
		}
		spec.Listen.CertFile = c.String("listen-cert")
	}
	return spec, nil
}

// portFromFlags builds a port file's structure from the port flags: the one
// path from flags to a port. `vsp create` encodes it into a file, `vsp run`
// makes it a spec as the daemon does a loaded file (runSpec). Only the flags
// given are set: the rest stay zero, which config reads as its defaults.
// Every value goes through config's parser and Validate, so a flag and the
// key it stands for take the same values with the same error, which names
// the flag (keyFlags).
func portFromFlags(c *cli.Context, cmd, name, link string) (*config.Port, error) {
	p := &config.Port{Name: name, File: service.FromFlags}
	var bad []error // values config's parsers refused; then Validate's findings
	devs := c.StringSlice("device")
	switch len(devs) {
	case 0:
		if c.String("listen") == "" {
			return nil, usagef("%s: --device HOST:PORT (or --listen [HOST]:PORT) is required", cmd)
		}
	case 1:
		p.Device = devs[0]
	default:
		p.Devices = devs
	}
	p.Listen = c.String("listen")
	p.DeviceMAC = c.String("device-mac")
	p.AllowFrom = c.StringSlice("allow-from")
	p.ReplaceSession = c.Bool("replace-session")
	p.Link = link
	if link != "" && !filepath.IsAbs(link) && strings.ContainsRune(link, '/') {
		// On the command line a relative path is relative to the
		// current directory; a port file takes absolute paths only.
		abs, err := filepath.Abs(link)
		if err != nil {
			return nil, usagef("--link: %v", err)
		}
		p.Link = abs
	}
	if c.IsSet("tls") { // else config's default, which depends on --transport
		p.TLS = c.String("tls")
	}
	p.Trust.Pin = c.String("pin")
	if c.Bool("insecure-no-verify") {
		p.Trust.Mode = config.TrustInsecure
	}
	if c.IsSet("trust") {
		p.Trust.Mode = c.String("trust")
	}
	p.Trust.CAFile = c.String("ca-file")
	p.Trust.ServerName = c.String("server-name")
	for _, d := range []struct {
		flag string
		dst  *time.Duration
	}{
		{"dial-timeout", &p.Net.DialTimeout},
		{"keepalive-idle", &p.Net.KeepAliveIdle},
		{"keepalive-interval", &p.Net.KeepAliveInterval},
		{"user-timeout", &p.Net.UserTimeout},
		{"backoff-min", &p.Net.BackoffMin},
		{"backoff-max", &p.Net.BackoffMax},
	} {
		if c.IsSet(d.flag) {
			v, err := config.ParseDuration(c.String(d.flag))
			if err != nil {
				bad = append(bad, flagError(d.flag, err))
			}
			*d.dst = v
		}
	}
	if c.IsSet("keepalive-count") {
		p.Net.KeepAliveCount = c.Int("keepalive-count")
	}
	if c.IsSet("buffer") {
		n, err := config.ParseByteSize(c.String("buffer"))
		if err != nil {
			bad = append(bad, flagError("buffer", err))
		}
		p.Buffer = n
	}
	p.StaleData = c.String("stale-data")
	p.Connect = c.String("connect")
	if c.IsSet("release-after") {
		v, err := config.ParseDuration(c.String("release-after"))
		if err != nil {
			bad = append(bad, flagError("release-after", err))
		}
		p.ReleaseAfter = v
	}
	p.Transport = c.String("transport")
	if c.IsSet("datagram-size") {
		p.DatagramSize = c.Int("datagram-size")
	}
	p.TTY.Owner = c.String("owner")
	p.TTY.Group = c.String("group")
	if c.IsSet("mode") {
		m, err := config.ParseMode(c.String("mode"))
		if err != nil {
			bad = append(bad, flagError("mode", err))
		}
		p.TTY.Mode = m
	}
	p.Serial.Baud = int(min(c.Uint("baud"), 1<<31-1)) // 0: not set
	p.StrictSerial = c.Bool("strict-serial")
	p.RFC2217 = c.Bool("rfc2217")
	if f := c.String("trace"); f != "" {
		abs, err := filepath.Abs(f) // relative to the current directory
		if err != nil {
			bad = append(bad, flagError("trace", err))
		}
		p.Trace.File = abs
	}
	if err := p.Validate(); err != nil {
		bad = append(bad, flagErrors(err))
	}
	if len(bad) > 0 {
		return nil, usageError{errors.Join(bad...)}
	}
	return p, nil
}

// keyFlags maps each port-file key to the flag that sets it, so that
// config's errors about a port built from flags name the flag. [serial]
// keys other than baud have no flag.
var keyFlags = map[string]string{
	"":                       "link", // the port name: run names the port after the link
	"link":                   "link",
	"device":                 "device",
	"devices":                "device",
	"listen":                 "listen",
	"device_mac":             "device-mac",
	"allow_from":             "allow-from",
	"replace_session":        "replace-session",
	"tls":                    "tls",
	"buffer":                 "buffer",
	"stale_data":             "stale-data",
	"rfc2217":                "rfc2217",
	"strict_serial":          "strict-serial",
	"connect":                "connect",
	"release_after":          "release-after",
	"transport":              "transport",
	"datagram_size":          "datagram-size",
	"trust.mode":             "trust",
	"trust.pin":              "pin",
	"trust.ca_file":          "ca-file",
	"trust.server_name":      "server-name",
	"net.dial_timeout":       "dial-timeout",
	"net.keepalive_idle":     "keepalive-idle",
	"net.keepalive_interval": "keepalive-interval",
	"net.keepalive_count":    "keepalive-count",
	"net.user_timeout":       "user-timeout",
	"net.backoff_min":        "backoff-min",
	"net.backoff_max":        "backoff-max",
	"tty.owner":              "owner",
	"tty.group":              "group",
	"tty.mode":               "mode",
	"serial.baud":            "baud",
	"trace.file":             "trace",
}

// flagErrors restates config's errors about a port built from flags with
// the flag in place of the key: "--pin: invalid pin ...", the same reason a
// port file gets after "file:line: trust.pin: ".
func flagErrors(err error) error {
	errs := config.Errors(err)
	if len(errs) == 0 {
		return err
	}
	out := make([]error, len(errs))
	for i, e := range errs {
		key := e.Key
		if j := strings.IndexByte(key, '['); j >= 0 {
			key = key[:j] // devices[1]
		}
		flag, ok := keyFlags[key]
		if !ok {
			flag = key
		}
		out[i] = fmt.Errorf("--%s: %s", flag, keysAsFlags.Replace(e.Err.Error()))
	}
	return errors.Join(out...)
}

// keysAsFlags rewrites the settings a reason mentions (`with tls = "off"`)
// as flags (`with --tls "off"`).
var keysAsFlags = func() *strings.Replacer {
	keys := make([]string, 0, len(keyFlags))
	for k := range keyFlags {
		if k != "" {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return len(b) - len(a) }) // longest first
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, k+" = ", "--"+keyFlags[k]+" ")
	}
	return strings.NewReplacer(pairs...)
}()

// flagError reports a flag value that config's parser refused, worded as
// for the key in a file.
func flagError(flag string, err error) error {
	return fmt.Errorf("--%s: %s", flag, strings.TrimPrefix(err.Error(), "config: "))
}

// runDaemon runs the daemon with the settings in effect; SIGHUP re-reads
// the settings file.
func runDaemon(c *cli.Context, e *env, log *slog.Logger) error {
	s := e.settings
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d, err := service.NewDaemon(service.DaemonConfig{
		ConfigDir:      s.get("config_dir"),
		Socket:         s.get("socket"),
		Load:           service.FileLoader(config.Paths{LinkDir: s.get("link_dir"), KnownDevices: s.get("known_devices"), Socket: s.get("socket")}),
		Metrics:        s.get("metrics"),
		Settings:       s.list,
		Reload:         hup,
		ReloadSettings: func() (string, []service.Setting, error) { return s.reload(log) },
	}, log)
	if err != nil {
		return err
	}
	return runService(c.Context, d.Run)
}
