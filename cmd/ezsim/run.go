package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/device"
	"github.com/vsp-dev/vsp/internal/buildinfo"
)

// usageError marks command-line mistakes (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// run is ezsim's whole program; main only wires signals and exit codes.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	app := &cli.App{
		Name:            "ezsim",
		Usage:           "simulate an ezTCP serial-to-Ethernet device (T2S, COD, ATC, U2S modes, SSL, telnet console)",
		Writer:          stdout,
		ErrWriter:       stderr,
		Flags:           flags(),
		HideHelpCommand: true,
		HideVersion:     true, // --version below prints more than urfave/cli's line
		ExitErrHandler:  func(*cli.Context, error) {},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return &usageError{err}
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return &usageError{fmt.Errorf("unexpected argument %q", c.Args().First())}
			}
			if c.Bool("version") {
				fmt.Fprint(stdout, buildinfo.String("ezsim", version, commit))
				return nil
			}
			return serve(c, stdout, stderr)
		},
		Commands: []*cli.Command{{
			Name:  "status",
			Usage: "print the status of a running ezsim as JSON (needs its --status-socket)",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "status-socket", Usage: "Unix socket of the running ezsim", Required: true},
				&cli.BoolFlag{Name: "text", Usage: "print the status screen text instead of JSON"},
			},
			OnUsageError: func(_ *cli.Context, err error, _ bool) error { return &usageError{err} },
			Action: func(c *cli.Context) error {
				return statusCmd(c.Context, c.String("status-socket"), c.Bool("text"), stdout)
			},
		}, completionCommand(stdout), genDocsCommand()}, // gen-docs is hidden: make docs
	}
	err := app.RunContext(ctx, args)
	if err != nil && strings.Contains(err.Error(), "Required flag") {
		return &usageError{err}
	}
	if err != nil && strings.HasPrefix(err.Error(), "flag provided but not defined") {
		return &usageError{err}
	}
	return err
}

func flags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "version", Usage: "print version, commit and Go version, and exit"},
		&cli.StringFlag{Name: "listen", Value: ":1470", Usage: "COM1 local address: T2S listen, ATC ATA listen, U2S UDP bind (host:port; port 0 picks a free one)"},
		&cli.BoolFlag{Name: "ssl", Usage: "enable SSL (TLS 1.0 RSA_AES_256_CBC_SHA like the device; see --server-tls, --client-tls)"},
		&cli.StringFlag{Name: "serial", Value: "echo", Usage: "COM1 serial backend: echo, pty:PATH, or a serial device such as /dev/ttyUSB0"},
		&cli.IntFlag{Name: "key-bits", Value: 1024, Usage: "RSA key length generated when flash holds no key: 512, 768 or 1024"},
		&cli.StringFlag{Name: "ip", Value: "10.1.0.1", Usage: "device IP address (status and certificate CN)"},
		&cli.StringFlag{Name: "mask", Value: "255.0.0.0", Usage: "subnet mask shown in status"},
		&cli.StringFlag{Name: "gateway", Value: "0.0.0.0", Usage: "gateway shown in status"},
		&cli.StringFlag{Name: "dns", Value: "0.0.0.0", Usage: "name server shown in status"},
		&cli.StringFlag{Name: "mac", Value: "00:30:f9:00:00:01", Usage: "MAC address (incremented per device with --count)"},
		&cli.StringFlag{Name: "model", Value: "CSE-H25", Usage: "product: " + strings.Join(device.Models(), ", ")},
		&cli.StringFlag{Name: "firmware", Value: "2.0 Rev.A", Usage: "firmware version shown in status (before 2.0 an unset console password is not asked)"},
		&cli.StringFlag{Name: "flash", Usage: "flash file (settings, key and certificate); empty = no persistence"},
		&cli.StringFlag{Name: "console", Value: ":23", Usage: `telnet console address; "" or "off" disables it`},
		&cli.StringFlag{Name: "password", Usage: `console password (none set: firmware 2.0A still asks for "sollae")`},
		&cli.DurationFlag{Name: "login-delay", Value: 5 * time.Second, Usage: "console: delay imposed on logins after 3 wrong passwords"},
		&cli.StringFlag{Name: "mode", Value: "T2S", Usage: "communication mode: T2S (TCP server), COD (TCP client), ATC (AT commands), U2S (UDP)"},
		&cli.StringFlag{Name: "peer", Usage: "peer address host:port (COD: where to connect; ATC: ATD default; U2S: where datagrams go, 0.0.0.0:0 = last sender)"},
		&cli.IntFlag{Name: "byte-count", Usage: "COD: connect when this many serial bytes arrived and send them (0 = connect at once, earlier serial data discarded)"},
		&cli.IntFlag{Name: "guard-time", Usage: "COD: group serial bytes until this much silence, 10 ms units (0 = send at once; minimum 4)"},
		&cli.IntFlag{Name: "data-frame", Usage: "U2S: end a datagram after this much serial silence, 10 ms units (0 = 10 ms)"},
		&cli.DurationFlag{Name: "reconnect-delay", Value: 10 * time.Second, Usage: "COD: wait after a dropped or failed connection before the next one (the device waits 10s)"},
		&cli.StringFlag{Name: "server-tls", Value: "any", Usage: "T2S/ATA TLS server profile: any (TLS 1.0 RSA_AES_256_CBC_SHA like the device, and TLS 1.1 to 1.3 when the client asks) or device (TLS 1.0 RSA_AES_256_CBC_SHA only, exactly like the real device)"},
		&cli.StringFlag{Name: "client-tls", Value: "device", Usage: "COD/ATD TLS client profile: device (TLS 1.0 RSA_AES_256_CBC_SHA only) or modern (TLS 1.2+)"},
		&cli.IntFlag{Name: "baud", Value: 19200, Usage: "COM1 baud rate"},
		&cli.IntFlag{Name: "data-bits", Value: 8, Usage: "COM1 data bits (7, 8)"},
		&cli.StringFlag{Name: "parity", Value: "none", Usage: "COM1 parity (none, even, odd)"},
		&cli.IntFlag{Name: "stop-bits", Value: 1, Usage: "COM1 stop bits (1, 2)"},
		&cli.StringFlag{Name: "flow", Value: "none", Usage: "COM1 flow control (none, rtscts, xonxoff)"},
		&cli.BoolFlag{Name: "dtr-dsr", Usage: "COM1 DTR/DSR"},
		&cli.IntFlag{Name: "tx-interval", Usage: "COM1 delay between bytes sent to the serial line, ms"},
		&cli.BoolFlag{Name: "com2", Usage: "enable COM2 (two-port models; refused with SSL)"},
		&cli.StringFlag{Name: "com2-listen", Usage: "COM2 listen address (default: COM1 port + 1)"},
		&cli.StringFlag{Name: "com2-serial", Value: "echo", Usage: "COM2 serial backend"},
		&cli.StringFlag{Name: "second-client", Value: "refuse", Usage: "a second TCP client while one is up: refuse or replace"},
		&cli.DurationFlag{Name: "timeout", Usage: "T2S timeout: close an idle session after this long (0 = never; whole seconds)"},
		&cli.IntFlag{Name: "event-byte", Usage: "T2S Event Byte: buffer up to N serial bytes received while disconnected (0 = drop)"},
		&cli.BoolFlag{Name: "send-mac", Usage: "send the MAC address (12 hex digits + CR LF) when a connection is made"},
		&cli.DurationFlag{Name: "keepalive", Value: 10 * time.Second, Usage: "device TCP keep-alive interval when timeout is 0 (negative = off)"},
		&cli.IntFlag{Name: "keepalive-probes", Value: 4, Usage: "unanswered keep-alive probes before the session is dropped"},
		&cli.BoolFlag{Name: "pacing", Usage: "pace serial bytes at the configured baud rate"},
		&cli.BoolFlag{Name: "multi-monitoring", Usage: "enable Multi Monitoring (CSE-M73, CSE-H25; refused with SSL)"},
		&cli.BoolFlag{Name: "rfc2217", Usage: "request Telnet COM Port Control (refused with SSL)"},
		&cli.BoolFlag{Name: "ssh", Usage: "request SSH (refused with SSL)"},
		&cli.IntFlag{Name: "count", Value: 1, Usage: "number of devices, on consecutive ports, IPs and MACs"},
		&cli.BoolFlag{Name: "share-key", Usage: "with --count: all devices share one RSA key (each still has its own certificate)"},
		&cli.StringFlag{Name: "status-socket", Usage: "serve status JSON over HTTP on this Unix socket (read with: ezsim status --status-socket PATH)"},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn, error"},
	}
}

// buildConfig turns the flags into device i's configuration: flag defaults,
// then settings saved in the flash file, then flags given explicitly.
func buildConfig(c *cli.Context, i int, log *slog.Logger) (device.Config, error) {
	cfg := device.Config{
		Model:    c.String("model"),
		Firmware: c.String("firmware"),
		Listen:   offsetPort(c.String("listen"), i),
		Serial:   c.String("serial"),
		Console:  c.String("console"),
		Flash:    c.String("flash"),
		Pacing:   c.Bool("pacing"),

		ReconnectDelay:  c.Duration("reconnect-delay"),
		ClientTLS:       c.String("client-tls"),
		ServerTLS:       c.String("server-tls"),
		LoginDelay:      c.Duration("login-delay"),
		KeepAliveProbes: c.Int("keepalive-probes"),
	}
	if cfg.ReconnectDelay <= 0 {
		return cfg, &usageError{errors.New("--reconnect-delay must be positive")}
	}
	if d := c.Duration("timeout"); c.IsSet("timeout") && d%time.Second != 0 {
		return cfg, &usageError{fmt.Errorf("--timeout %v: the device counts whole seconds (e.g. 30s; 0 = never)", d)}
	}
	if cfg.KeepAliveProbes < 1 {
		return cfg, &usageError{errors.New("--keepalive-probes must be at least 1")}
	}
	ka := c.Duration("keepalive")
	if ka == 0 {
		ka = -1
	}
	cfg.KeepAlive = ka
	mac, err := offsetMAC(c.String("mac"), i)
	if err != nil {
		return cfg, &usageError{err}
	}
	cfg.MAC = mac
	if cfg.Console == "off" {
		cfg.Console = ""
	}
	if cfg.Console != "" {
		cfg.Console = offsetPort(cfg.Console, i)
	}
	if i > 0 {
		if cfg.Flash != "" {
			cfg.Flash += "." + strconv.Itoa(i)
		}
		if p, ok := strings.CutPrefix(cfg.Serial, "pty:"); ok {
			cfg.Serial = "pty:" + p + "." + strconv.Itoa(i)
		}
	}
	apply := func(all bool) {
		set := func(name string) bool { return all || c.IsSet(name) }
		if set("ssl") {
			cfg.SSL = c.Bool("ssl")
		}
		if set("key-bits") {
			cfg.KeyBits = c.Int("key-bits")
		}
		if set("ip") {
			ip, err := offsetIP(c.String("ip"), i)
			if err != nil {
				ip = c.String("ip")
			}
			cfg.IP = ip
		}
		if set("mask") {
			cfg.Mask = c.String("mask")
		}
		if set("gateway") {
			cfg.Gateway = c.String("gateway")
		}
		if set("dns") {
			cfg.DNS = c.String("dns")
		}
		if set("password") {
			cfg.Password = c.String("password")
		}
		if set("mode") {
			cfg.Mode = c.String("mode")
		}
		if set("peer") {
			cfg.Peer = c.String("peer")
		}
		if set("byte-count") {
			cfg.ByteCount = c.Int("byte-count")
		}
		if set("guard-time") {
			cfg.GuardTime = c.Int("guard-time")
		}
		if set("data-frame") {
			cfg.DataFrame = c.Int("data-frame")
		}
		if set("baud") {
			cfg.Line.Baud = c.Int("baud")
		}
		if set("data-bits") {
			cfg.Line.DataBits = c.Int("data-bits")
		}
		if set("parity") {
			cfg.Line.Parity = c.String("parity")
		}
		if set("stop-bits") {
			cfg.Line.StopBits = c.Int("stop-bits")
		}
		if set("flow") {
			cfg.Line.Flow = c.String("flow")
		}
		if set("dtr-dsr") {
			cfg.Line.DTRDSR = c.Bool("dtr-dsr")
		}
		if set("tx-interval") {
			cfg.Line.TXInterval = c.Int("tx-interval")
		}
		if set("com2") {
			if c.Bool("com2") {
				if cfg.COM2 == nil {
					cfg.COM2 = &device.PortConfig{}
				}
			} else {
				cfg.COM2 = nil
			}
		}
		if set("second-client") {
			cfg.SecondClient = c.String("second-client")
		}
		if set("timeout") {
			cfg.Timeout = c.Duration("timeout")
		}
		if set("event-byte") {
			cfg.EventByte = c.Int("event-byte")
		}
		if set("send-mac") {
			cfg.SendMAC = c.Bool("send-mac")
		}
		if set("multi-monitoring") {
			cfg.MultiMonitoring = c.Bool("multi-monitoring")
		}
		if set("rfc2217") {
			cfg.RFC2217 = c.Bool("rfc2217")
		}
		if set("ssh") {
			cfg.SSH = c.Bool("ssh")
		}
	}
	apply(true)
	if cfg.Flash != "" {
		if err := device.ApplyFlashSettings(&cfg, cfg.Flash); err != nil {
			if !errors.Is(err, device.ErrFlashCorrupt) {
				return cfg, err
			}
			log.Error("flash settings ignored", "err", err)
		}
		apply(false)
	}
	if cfg.COM2 != nil {
		cfg.COM2.Serial = c.String("com2-serial")
		if p, ok := strings.CutPrefix(cfg.COM2.Serial, "pty:"); ok && i > 0 {
			cfg.COM2.Serial = "pty:" + p + "." + strconv.Itoa(i)
		}
		switch n := c.Int("count"); {
		case c.IsSet("com2-listen"):
			cfg.COM2.Listen = offsetPort(c.String("com2-listen"), i)
		case n > 1:
			// COM1s take the N ports from --listen on; the COM2s the N
			// after them (COM1 + 1, the single-device default, is the
			// next device's COM1).
			cfg.COM2.Listen = offsetPort(c.String("listen"), n+i)
		}
	}
	return cfg, nil
}

func serve(c *cli.Context, stdout, stderr io.Writer) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return &usageError{fmt.Errorf("--log-level: %w", err)}
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	n := c.Int("count")
	if n < 1 {
		return &usageError{errors.New("--count must be at least 1")}
	}
	var shared *device.Config
	var devs []*device.Device
	defer func() {
		for _, d := range devs {
			d.Close()
		}
	}()
	ctx := c.Context
	for i := range n {
		cfg, err := buildConfig(c, i, log)
		if err != nil {
			return err
		}
		if c.Bool("share-key") && cfg.SSL {
			if shared == nil {
				key, err := device.GenerateKey(cfg.KeyBits, nil)
				if err != nil {
					return err
				}
				shared = &device.Config{Key: key}
			}
			cfg.Key = shared.Key
		}
		d, err := device.New(cfg, log)
		if err != nil {
			return fmt.Errorf("flags: %w", err)
		}
		devs = append(devs, d)
		if err := d.Start(ctx); err != nil {
			return err
		}
	}
	for _, d := range devs {
		switch a := d.Addr(); {
		case d.Mode() == "COD":
			fmt.Fprintf(stdout, "connect: %s\n", d.Peer())
		case a != nil:
			fmt.Fprintf(stdout, "listen: %s\n", a)
		default: // ATC: ATA listens here later
			fmt.Fprintf(stdout, "listen: %s\n", d.LocalAddr())
		}
		if fp := d.Fingerprint(); fp != "" {
			fmt.Fprintf(stdout, "fingerprint: %s\n", fp)
		}
		if a := d.ConsoleAddr(); a != nil {
			fmt.Fprintf(stdout, "console: %s\n", a)
		}
	}
	var wg sync.WaitGroup
	if path := c.String("status-socket"); path != "" {
		srv, err := serveStatus(path, devs, &wg)
		if err != nil {
			return err
		}
		defer func() {
			srv.Close()
			wg.Wait()
			os.Remove(path)
		}()
		fmt.Fprintf(stdout, "status: %s\n", path)
	}
	if f, ok := stdout.(interface{ Sync() error }); ok {
		f.Sync()
	}
	<-ctx.Done()
	log.Info("shutting down")
	var errs []error
	for _, d := range devs {
		errs = append(errs, d.Close())
	}
	return errors.Join(errs...)
}

// serveStatus serves GET /status (a JSON array, one entry per device) on a
// Unix socket.
func serveStatus(path string, devs []*device.Device, wg *sync.WaitGroup) (*http.Server, error) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("status socket: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		out := make([]device.Status, len(devs))
		for i, d := range devs {
			out[i] = d.Status()
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	wg.Add(1)
	go func() {
		defer wg.Done()
		srv.Serve(ln)
	}()
	return srv, nil
}

func statusCmd(ctx context.Context, path string, text bool, stdout io.Writer) error {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}, Timeout: 10 * time.Second}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://ezsim/status", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status: %s", resp.Status)
	}
	if !text {
		_, err = stdout.Write(body)
		return err
	}
	var sts []device.Status
	if err := json.Unmarshal(body, &sts); err != nil {
		return fmt.Errorf("status: %w", err)
	}
	for _, st := range sts {
		io.WriteString(stdout, strings.ReplaceAll(st.Text(), "\r\n", "\n")+"\n")
	}
	return nil
}

// offsetPort adds i to the port of addr (port 0 stays 0).
func offsetPort(addr string, i int) string {
	if i == 0 {
		return addr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		return addr
	}
	return net.JoinHostPort(host, strconv.Itoa(n+i))
}

// offsetIP adds i to an IPv4 address.
func offsetIP(s string, i int) (string, error) {
	ip := net.ParseIP(s).To4()
	if ip == nil {
		return "", fmt.Errorf("--ip %q is not an IPv4 address", s)
	}
	v := uint32(ip[0])<<24 | uint32(ip[1])<<16 | uint32(ip[2])<<8 | uint32(ip[3])
	v += uint32(i)
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).String(), nil
}

// offsetMAC adds i to a MAC address.
func offsetMAC(s string, i int) (string, error) {
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return "", fmt.Errorf("--mac %q is not a MAC address", s)
	}
	var v uint64
	for _, b := range hw {
		v = v<<8 | uint64(b)
	}
	v += uint64(i)
	for j := 5; j >= 0; j-- {
		hw[j] = byte(v)
		v >>= 8
	}
	return hw.String(), nil
}
