package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service"
)

// configCommand is `vsp config`: the daemon settings that `vsp run` would
// use with the same flags and environment, and where each comes from. Like
// `sshd -T`, it also checks the settings file: a bad one is an error.
func configCommand(e *env) *cli.Command {
	flags := []cli.Flag{configDirFlag(), socketFlag(), linkDirFlag(), knownDevicesFlag(), settingFlag("metrics")}
	flags = append(flags, logFlags()...)
	flags = append(flags, &cli.BoolFlag{Name: "json", Usage: "print JSON"})
	return &cli.Command{
		Name:  "config",
		Usage: "check the daemon settings file and print the settings in effect and where each comes from",
		Description: "Prints every daemon setting as `vsp run` would use it with the same flags and\n" +
			"environment: from a flag, the environment, the settings file (file:line) or the\n" +
			"built-in default. A bad settings file is reported with file:line (exit 1).\n" +
			"`vsp status --daemon` shows the settings of the running daemon.",
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("config: unexpected argument %q", c.Args().First())
			}
			if c.Bool("json") {
				return printJSON(e.stdout, e.settings.list)
			}
			printSettings(e.stdout, e.settings.list)
			return nil
		},
	}
}

// printSettings prints settings as a table of key, value and source.
func printSettings(w io.Writer, list []service.Setting) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
	for _, s := range list {
		v := s.Value
		if v == "" {
			v = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Key, v, s.Source)
	}
	tw.Flush()
}

// printDaemon prints what the daemon says about itself.
func printDaemon(w io.Writer, d service.DaemonInfo, now time.Time) {
	ago := func(t time.Time) string {
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), now.Sub(t).Round(time.Second))
	}
	fmt.Fprintf(w, "pid:             %d\n", d.PID)
	fmt.Fprintf(w, "started:         %s\n", ago(d.Started))
	fmt.Fprintf(w, "settings loaded: %s\n", ago(d.SettingsLoaded))
	if d.ReloadError != "" {
		fmt.Fprintf(w, "reload error:    %s: %s\n", d.ReloadErrorAt.Format(time.RFC3339), d.ReloadError)
	}
	if d.Metrics != "" {
		fmt.Fprintf(w, "metrics:         http://%s/metrics\n", d.Metrics)
	}
	fmt.Fprintln(w)
	printSettings(w, d.Settings)
}
