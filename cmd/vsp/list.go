package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
)

func listCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "list",
		Usage: "list the daemon's ports and their state",
		Flags: []cli.Flag{
			socketFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print JSON (every field of every port)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "first say which daemon answers: its socket, and why that one"},
		},
		Description: "As a non-root user, vsp talks to the system daemon (" + config.SystemPaths().Socket + ") when\n" +
			"its socket is open to you (members of the vsp group), else to your own daemon.\n\n" +
			"Exit status: 0 the list was printed; 1 no daemon answers; 2 a usage error.",
		Action: func(c *cli.Context) error {
			if c.Bool("verbose") {
				fmt.Fprintf(e.stderr, "daemon: %s (%s)\n", c.String("socket"), whichDaemon(e.settings.source("socket")))
			}
			states, err := newControl(c.String("socket")).ports(c.Context)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(e.stdout, states)
			}
			printTable(e.stdout, states, time.Now())
			return nil
		},
	}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printTable(w io.Writer, states []service.PortState, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTTY\tDEVICE\tSTATE\tTLS\tTX\tRX\tUPTIME")
	for _, s := range states {
		state := s.State
		if s.ConfigError != "" {
			state += " (file error)"
		}
		tls := s.TLSProfile
		if s.Session.Version != "" {
			tls = s.Session.Version
		}
		up := "-"
		if s.State == bridge.StateUp && !s.LastConnect.IsZero() {
			up = now.Sub(s.LastConnect).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, or(s.Link, "-"), or(strings.Join(s.Devices, ","), "-"),
			state, or(tls, "-"), bytesHuman(s.ToDevice), bytesHuman(s.ToApp), up)
	}
	tw.Flush()
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func bytesHuman(n uint64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%dMiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// whichDaemon says whose daemon a socket setting's source leads to.
func whichDaemon(source string) string {
	switch {
	case source == systemSource:
		return "the system daemon: its socket is open to your group"
	case source == "default" && os.Geteuid() == 0:
		return "the system daemon"
	case source == "default":
		return "your own daemon; the system daemon's socket is missing or not open to you"
	}
	return "set by " + source
}
