package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/vsp-dev/vsp/service"
)

// errNoDaemon says the control socket has no daemon behind it.
var errNoDaemon = errors.New("the vsp daemon is not running")

// control is a client of the daemon's control socket.
type control struct {
	socket string
	hc     *http.Client
}

func newControl(socket string) *control {
	return &control{socket: socket, hc: &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		}},
	}}
}

// get fetches path and decodes the JSON answer into v. It returns
// (false, nil) for 404.
func (c *control) get(ctx context.Context, path string, v any) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://vsp"+path, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, c.connError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return false, nil
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return false, fmt.Errorf("control socket %s: %s: %s", c.socket, resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return false, fmt.Errorf("control socket %s: bad answer: %w", c.socket, err)
	}
	return true, nil
}

// connError explains a failed request to the control socket.
func (c *control) connError(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w (no daemon on %s; start it with `vsp run` in the foreground or `vsp service install && vsp service start`)", errNoDaemon, c.socket)
	}
	return fmt.Errorf("control socket %s: %w", c.socket, err)
}

func (c *control) ports(ctx context.Context) ([]service.PortState, error) {
	var out []service.PortState
	_, err := c.get(ctx, "/v1/ports", &out)
	return out, err
}

func (c *control) port(ctx context.Context, name string) (service.PortState, bool, error) {
	var out service.PortState
	ok, err := c.get(ctx, "/v1/ports/"+name, &out)
	return out, ok, err
}

func (c *control) daemon(ctx context.Context) (service.DaemonInfo, error) {
	var out service.DaemonInfo
	_, err := c.get(ctx, "/v1/daemon", &out)
	return out, err
}
