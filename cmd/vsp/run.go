package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
	"github.com/vsp-dev/vsp/tlsconn"
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
		&cli.StringFlag{Name: "link", Usage: "tty symlink `PATH` the application opens (a bare name goes into " + pty.DefaultLinkDir() + ")", Value: "ttyVSP0", EnvVars: []string{"VSP_LINK"}},
		&cli.StringFlag{Name: "tls", Usage: "TLS profile: off, legacy (TLS 1.0-1.2, AES256-SHA, small RSA keys: ezTCP) or modern (TLS 1.2+)", Value: "modern", EnvVars: []string{"VSP_TLS"}},
		&cli.StringFlag{Name: "pin", Usage: "device certificate fingerprint `sha256:HEX` (see `vsp trust`)", EnvVars: []string{"VSP_PIN"}},
		&cli.BoolFlag{Name: "insecure-no-verify", Usage: "accept any device certificate (DANGEROUS: anyone on the path can read and inject serial data)"},
		&cli.StringFlag{Name: "trust", Usage: "certificate trust `MODE`: pin (with --pin), tofu (first certificate seen is recorded in --known-devices; a change is refused until `vsp trust --accept`), ca (with --ca-file) or insecure"},
		&cli.StringFlag{Name: "ca-file", Usage: "PEM bundle of CA certificates for --trust ca"},
		&cli.StringFlag{Name: "server-name", Usage: "name (or IP) the device certificate must carry with --trust ca; also sent as SNI"},
		&cli.DurationFlag{Name: "dial-timeout", Usage: "TCP connect + TLS handshake timeout", Value: config.DefaultDialTimeout},
		&cli.DurationFlag{Name: "keepalive-idle", Usage: "idle time before the first TCP keep-alive probe", Value: config.DefaultKeepAliveIdle},
		&cli.DurationFlag{Name: "keepalive-interval", Usage: "time between TCP keep-alive probes", Value: config.DefaultKeepAliveInterval},
		&cli.IntFlag{Name: "keepalive-count", Usage: "unanswered keep-alive probes before the link is dropped", Value: config.DefaultKeepAliveCount},
		&cli.DurationFlag{Name: "user-timeout", Usage: "TCP_USER_TIMEOUT: drop the link when sent data stays unacknowledged this long", Value: config.DefaultUserTimeout},
		&cli.DurationFlag{Name: "backoff-min", Usage: "first redial delay after an outage", Value: config.DefaultBackoffMin},
		&cli.DurationFlag{Name: "backoff-max", Usage: "longest redial delay", Value: config.DefaultBackoffMax},
		&cli.StringFlag{Name: "buffer", Usage: "outage buffer `SIZE` held while the link is down (e.g. 64KiB)", Value: "64KiB"},
		&cli.StringFlag{Name: "stale-data", Usage: "device bytes arriving while no application has the port open: discard or keep", Value: "discard"},
		&cli.StringFlag{Name: "owner", Usage: "owner `USER` of the tty"},
		&cli.StringFlag{Name: "group", Usage: "group `GROUP` of the tty (e.g. dialout)"},
		&cli.StringFlag{Name: "mode", Usage: "permission `MODE` of the tty, octal (e.g. 0660)"},
		&cli.UintFlag{Name: "baud", Usage: "the device's configured serial speed; the port warns when the application sets another"},
		&cli.BoolFlag{Name: "strict-serial", Usage: "hold data while the application's baud rate differs from --baud"},
		&cli.BoolFlag{Name: "rfc2217", Usage: "negotiate RFC 2217 (Telnet COM Port Control) and forward the application's baud rate, stop bits and flow control to the device (plain TCP devices; not with SSL on an ezTCP)"},
	}
}

func runCommand(e *env) *cli.Command {
	flags := append(portFlags(),
		configDirFlag(), socketFlag(), knownDevicesFlag(),
		&cli.StringFlag{Name: "log-format", Usage: "log format: auto, text or json", Value: "auto", EnvVars: []string{"VSP_LOG_FORMAT"}},
		&cli.BoolFlag{Name: "debug", Usage: "verbose logs"},
	)
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
			level := slog.LevelInfo
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			log, err := newLogger(e.stderr, c.String("log-format"), level)
			if err != nil {
				return err
			}
			if len(c.StringSlice("device")) == 0 && c.String("listen") == "" {
				return runDaemon(c, log)
			}
			spec, err := specFromFlags(c, "command line")
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

// specFromFlags builds a port from the command line flags.
func specFromFlags(c *cli.Context, source string) (bridge.PortSpec, error) {
	var s bridge.PortSpec
	s.Devices = c.StringSlice("device")
	s.Listen = bridge.ListenSpec{
		Addr:      c.String("listen"),
		CertFile:  c.String("listen-cert"),
		DeviceMAC: c.String("device-mac"),
		AllowFrom: c.StringSlice("allow-from"),
		Replace:   c.Bool("replace-session"),
	}
	if len(s.Devices) == 0 && s.Listen.Addr == "" {
		return s, usagef("--device HOST:PORT (or --listen [HOST]:PORT) is required")
	}
	if s.Listen.Addr != "" && s.Listen.CertFile == "" {
		s.Listen.CertFile = filepath.Join(filepath.Dir(c.String("known-devices")), filepath.Base(c.String("link"))+"-listen.pem")
	}
	s.Source = source
	s.Name = filepath.Base(c.String("link"))
	s.PTY.Link = linkPath(c.String("link"))
	s.PTY.Owner = c.String("owner")
	s.PTY.Group = c.String("group")
	if m := c.String("mode"); m != "" {
		v, err := parseMode(m)
		if err != nil {
			return s, usageError{fmt.Errorf("--mode: %w", err)}
		}
		s.PTY.Mode = v
	}
	prof, err := tlsconn.ParseProfile(c.String("tls"))
	if err != nil {
		return s, usageError{fmt.Errorf("--tls: %w", err)}
	}
	s.Link.Profile = prof
	if pin := c.String("pin"); pin != "" {
		p, err := tlsconn.ParsePin(pin)
		if err != nil {
			return s, usageError{fmt.Errorf("--pin: %w", err)}
		}
		s.Link.Pin = p
	}
	s.Link.InsecureSkipVerify = c.Bool("insecure-no-verify")
	s.Link.Trust = c.String("trust")
	if s.Link.Trust == tlsconn.TrustInsecure {
		s.Link.InsecureSkipVerify = true
	}
	if s.Link.Trust == tlsconn.TrustTOFU {
		s.Link.KnownDevices = c.String("known-devices")
	}
	s.Link.CAFile = c.String("ca-file")
	s.Link.ServerName = c.String("server-name")
	s.Link.DialTimeout = c.Duration("dial-timeout")
	s.Link.KeepAlive = tlsconn.KeepAlive{
		Idle:        c.Duration("keepalive-idle"),
		Interval:    c.Duration("keepalive-interval"),
		Count:       c.Int("keepalive-count"),
		UserTimeout: c.Duration("user-timeout"),
	}
	s.Bridge.Backoff = tlsconn.Backoff{Min: c.Duration("backoff-min"), Max: c.Duration("backoff-max")}
	n, err := config.ParseByteSize(c.String("buffer"))
	if err != nil {
		return s, usageError{fmt.Errorf("--buffer: %w", err)}
	}
	s.Bridge.Buffer = int(n)
	switch pol := bridge.StalePolicy(c.String("stale-data")); pol {
	case bridge.StaleDiscard, bridge.StaleKeep:
		s.Bridge.StaleData = pol
	default:
		return s, usagef("--stale-data: want discard or keep, got %q", pol)
	}
	s.Serial.Baud = uint32(c.Uint("baud"))
	s.StrictSerial = c.Bool("strict-serial")
	if s.StrictSerial && s.Serial.Baud == 0 {
		return s, usagef("--strict-serial needs --baud (the device's configured speed)")
	}
	s.RFC2217 = c.Bool("rfc2217")
	if s.RFC2217 && s.StrictSerial {
		return s, usagef("--strict-serial has no effect with --rfc2217: the application's settings are forwarded to the device")
	}
	if err := s.Validate(); err != nil {
		return s, usageError{err}
	}
	return s, nil
}

// linkPath puts a bare link name into the default link directory.
func linkPath(l string) string {
	if l == "" || filepath.IsAbs(l) || filepath.Base(l) != l {
		return l
	}
	return filepath.Join(pty.DefaultLinkDir(), l)
}

// parseMode reads an octal permission such as 0660.
func parseMode(m string) (os.FileMode, error) {
	v, err := strconv.ParseUint(m, 8, 32)
	if err != nil || v > 0o777 {
		return 0, fmt.Errorf("want an octal permission like 0660, got %q", m)
	}
	return os.FileMode(v), nil
}

func runDaemon(c *cli.Context, log *slog.Logger) error {
	paths := service.Paths{KnownDevices: c.String("known-devices")}
	d, err := service.NewDaemon(service.DaemonConfig{
		ConfigDir: c.String("config-dir"),
		Socket:    c.String("socket"),
		Load:      service.FileLoader(paths),
	}, log)
	if err != nil {
		return err
	}
	return runService(c.Context, d.Run)
}
