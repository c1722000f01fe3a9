package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
)

func statusCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show everything known about one port, or with --daemon about the daemon and its settings",
		ArgsUsage: "[NAME]", // NAME, or none with --daemon (checked below)
		Description: "Exit status: 0 the port (or the daemon) was shown, whatever its state; 1 no\n" +
			"such port, or no daemon answers; 2 a usage error.",
		Flags: []cli.Flag{
			socketFlag(),
			&cli.BoolFlag{Name: "daemon", Usage: "show the daemon: its settings in effect, where each comes from, when they were loaded and the last reload error"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.Bool("daemon") {
				if c.NArg() > 0 {
					return usagef("status --daemon: unexpected argument %q", c.Args().First())
				}
				info, err := newControl(c.String("socket")).daemon(c.Context)
				if err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(e.stdout, info)
				}
				printDaemon(e.stdout, info, time.Now())
				return nil
			}
			if c.NArg() != 1 {
				return usagef("status: want one port NAME, or --daemon")
			}
			name := c.Args().First()
			st, ok, err := newControl(c.String("socket")).port(c.Context, name)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("status: no port %q (see `vsp list`)", name)
			}
			if c.Bool("json") {
				return printJSON(e.stdout, st)
			}
			printStatus(e.stdout, st, time.Now())
			return nil
		},
	}
}

func printStatus(w io.Writer, s service.PortState, now time.Time) {
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-16s %s\n", k+":", v)
		}
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), now.Sub(t).Round(time.Second))
	}
	row("port", s.Name)
	row("file", s.File)
	row("config error", s.ConfigError)
	row("state", s.State)
	row("link", s.Link)
	row("tty", s.TTY)
	row("devices", strings.Join(s.Devices, ", "))
	row("tls profile", s.TLSProfile)
	row("pin", s.Pin)
	if s.Session.Addr != "" {
		row("connected to", s.Session.Addr)
		row("tls", strings.TrimSpace(s.Session.Version+" "+s.Session.Cipher))
		row("certificate", s.Session.Fingerprint)
		if s.Session.KeyBits > 0 {
			row("device key", fmt.Sprintf("RSA %d bits", s.Session.KeyBits))
		}
	}
	row("last connect", when(s.LastConnect))
	row("connects", fmt.Sprint(s.Connects))
	row("bytes to device", fmt.Sprint(s.ToDevice))
	row("bytes to app", fmt.Sprint(s.ToApp))
	row("buffered", fmt.Sprintf("%d of %d", s.Buffered, s.BufferSize))
	if s.PossiblyLost > 0 {
		row("possibly lost", fmt.Sprintf("%d bytes (handed to links that died)", s.PossiblyLost))
	}
	if s.Discarded > 0 {
		row("discarded", fmt.Sprintf("%d bytes (arrived while no application had the port open)", s.Discarded))
	}
	row("app open", fmt.Sprint(s.AppOpen))
	row("app settings", s.AppSettings)
	row("device serial", deviceSerial(s.DeviceSerial))
	printShare(row, s)
	if r := s.RFC2217; r != nil {
		row("rfc2217", r.State)
		row("  requested", r.Requested)
		row("  acked", r.Acked)
		row("  pending", strings.Join(r.Pending, ", "))
		row("  device", r.Signature)
		row("  last error", r.LastError)
	}
	row("serial mismatch", s.Mismatch)
	row("held", s.Held)
	row("trace", s.Trace)
	row("trace error", s.TraceError)
	if s.LastError != "" {
		row("last error", s.LastError+" at "+s.LastErrorAt.Format(time.RFC3339))
	}
	row("error", s.Error)
	row("fix", s.Fix)
}

// deviceSerial shows the device line's settings as configured ([serial],
// --baud): only what was set; vsp cannot know the rest.
func deviceSerial(s bridge.SerialSettings) string {
	if s == (bridge.SerialSettings{}) {
		return "not set"
	}
	parts := []string{"speed not set"}
	if s.Baud != 0 {
		parts[0] = fmt.Sprintf("%d bit/s", s.Baud)
	}
	if s.DataBits != 0 {
		parts = append(parts, fmt.Sprintf("%d data bits", s.DataBits))
	}
	if s.Parity != "" {
		parts = append(parts, "parity "+s.Parity)
	}
	if s.StopBits != 0 {
		parts = append(parts, fmt.Sprintf("%d stop bits", s.StopBits))
	}
	if s.Flow != "" {
		parts = append(parts, "flow "+s.Flow)
	}
	return strings.Join(parts, ", ")
}

// printShare prints the connection policy's and U2S's rows (issue 17).
func printShare(row func(k, v string), s service.PortState) {
	if s.Releases > 0 {
		row("released", fmt.Sprintf("%d sessions (connect on-open: no application had the port open)", s.Releases))
	}
	if u := s.UDP; u != nil {
		row("transport", "udp (U2S), local "+u.Local)
		row("datagrams out", fmt.Sprintf("%d to the device, %d not sent (max %d bytes each)", u.ToDevice, u.DroppedToDevice, u.MaxDatagram))
		in := fmt.Sprintf("%d from the device, %d dropped from other addresses", u.FromDevice, u.DroppedFromDevice)
		if u.LastDroppedFrom != "" {
			in += " (last " + u.LastDroppedFrom + ")"
		}
		row("datagrams in", in)
	}
}
