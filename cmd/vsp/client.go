package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/config"
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
		return false, c.dialError(err)
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

// dialError says why the daemon could not be reached, in the user's terms
// (no HTTP internals), and what to do.
func (c *control) dialError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // not the request: "Get "http://vsp/v1/ports": …"
	}
	switch {
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return fmt.Errorf("permission denied on the daemon's socket %s: %s", c.socket, joinGroupHint(c.socket))
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		msg := fmt.Sprintf("%v (no daemon on %s; start it with `vsp run` in the foreground or `vsp service install && vsp service start`)", errNoDaemon, c.socket)
		if sys := config.SystemPaths().Socket; c.socket != sys && !socketAccessible(sys) {
			if _, err := os.Stat(sys); err == nil {
				msg += "; the system daemon runs, but its socket " + sys + " is not open to you: " + joinGroupHint(sys)
			}
		}
		return fmt.Errorf("%w%s", errNoDaemon, strings.TrimPrefix(msg, errNoDaemon.Error()))
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("the daemon on %s did not answer in time", c.socket)
	}
	return fmt.Errorf("daemon socket %s: %w", c.socket, err)
}

// joinGroupHint says how to get access to a socket: join its group.
func joinGroupHint(socket string) string {
	group := "vsp"
	if gid, ok := socketGroup(socket); ok {
		if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil && g.Name != "root" {
			group = g.Name
		}
	}
	name := "$USER"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return fmt.Sprintf("add yourself to the %s group (sudo adduser %s %s), then log in again", group, name, group)
}
