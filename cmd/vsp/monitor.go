package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/monitor"
)

func monitorCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "monitor",
		Usage:     "show the bytes and events of running ports, live, until interrupted",
		ArgsUsage: "[NAME...]",
		Description: "Streams what the daemon's ports see, as it happens: every chunk of bytes with its\n" +
			"direction (app>dev: written by the application; dev>app: from the device), a\n" +
			"timestamp to the microsecond and a hexdump (16 bytes a line, ASCII column), and\n" +
			"the port's events in order with them: open, close, settings, link-up, link-down\n" +
			"(with the reason), held/released (outage buffer, serial mismatch guard), lost,\n" +
			"discarded, flush (the application's tcflush). With no NAME, every port is shown,\n" +
			"those running and those created while the monitor runs; with several, each\n" +
			"named one; each line then names its\n" +
			"port. Several monitors may watch one port. A port deleted meanwhile ends with a\n" +
			"\"gone\" record; when all the named ports are gone, so is the monitor. The daemon\n" +
			"serves at most " + strconv.Itoa(service.MaxMonitors) + " monitors at once. A monitor that\n" +
			"reads too slowly never slows the port: it loses records and says how many\n" +
			"(\"-- dropped N bytes not shown\"). Same access as `vsp status` (the control socket).",
		Flags: []cli.Flag{
			socketFlag(),
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per record (bytes as lowercase hex), for tools"},
			&cli.BoolFlag{Name: "ascii", Usage: "print the bytes as text: printable ASCII as is, \\r \\n \\t \\\\ and \\xHH for the rest"},
		},
		Action: func(c *cli.Context) error {
			enc := monitor.Encoder{Format: monitor.FormatHexdump, ShowPort: c.NArg() != 1}
			switch {
			case c.Bool("json") && c.Bool("ascii"):
				return usagef("monitor: --json and --ascii exclude each other")
			case c.Bool("json"):
				enc.Format = monitor.FormatJSON
			case c.Bool("ascii"):
				enc.Format = monitor.FormatASCII
			}
			q := url.Values{}
			for _, n := range c.Args().Slice() {
				q.Add("port", n)
			}
			path := "/v1/monitor"
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			body, err := newControl(c.String("socket")).stream(c, path)
			if err != nil {
				return err
			}
			defer body.Close()
			in := bufio.NewReader(body)
			out := bufio.NewWriter(e.stdout)
			var buf []byte
			watching, gone := 0, 0
			for {
				line, err := in.ReadBytes('\n')
				if err != nil {
					if c.Context.Err() != nil {
						return nil // interrupted: the normal end
					}
					if watching > 0 && gone == watching {
						return out.Flush() // every port watched was deleted
					}
					return fmt.Errorf("monitor: the daemon ended the stream (stopped?): %w", err)
				}
				var r monitor.Record
				if err := json.Unmarshal(line, &r); err != nil {
					return fmt.Errorf("monitor: bad record from the daemon: %w", err)
				}
				switch r.Kind {
				case monitor.KindWatching:
					watching++
				case monitor.KindGone:
					gone++
				}
				buf = enc.Append(buf[:0], r)
				if _, err := out.Write(buf); err != nil {
					return err
				}
				if in.Buffered() == 0 { // nothing more waiting: show it now
					if err := out.Flush(); err != nil {
						if errors.Is(err, syscall.EPIPE) {
							return nil
						}
						return err
					}
				}
			}
		},
	}
}

// stream opens a streaming GET on the control socket: the body is read
// for as long as the caller wants, so no overall timeout applies.
func (ctl *control) stream(c *cli.Context, path string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(c.Context, http.MethodGet, "http://vsp"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: ctl.hc.Transport}).Do(req)
	if err != nil {
		return nil, ctl.dialError(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		var msg struct{ Error string }
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if json.Unmarshal(b, &msg) == nil && msg.Error != "" {
			return nil, fmt.Errorf("monitor: %s (see `vsp list`)", msg.Error)
		}
		return nil, fmt.Errorf("control socket %s: %s: %s", ctl.socket, resp.Status, b)
	}
	return resp.Body, nil
}
