package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vsp-dev/vsp/internal/safepath"
	"github.com/vsp-dev/vsp/service/bridge"
)

// The control API, served over HTTP on a Unix socket:
//
//	GET /v1/ports         every port's PortState, as a JSON array
//	GET /v1/ports/{name}  one port's PortState (404 if unknown)
//	GET /v1/daemon        the daemon's own facts and settings
//	GET /v1/monitor       live records of every port, or of ?port=NAME (repeatable): JSON lines (monitor.go)
//	GET /metrics          Prometheus metrics for every port
//
// The same GET /metrics, and nothing else, is served over TCP on the
// metrics address when one is set.
type controlServer struct {
	ln   net.Listener
	srv  *http.Server
	path string
	done chan struct{}
}

// DaemonInfo is what GET /v1/daemon returns.
type DaemonInfo struct {
	ConfigDir string    `json:"config_dir"`
	Socket    string    `json:"socket"`
	Started   time.Time `json:"started"`
	PID       int       `json:"pid"`
	Metrics   string    `json:"metrics,omitempty"` // the TCP address /metrics is served on

	Settings       []Setting `json:"settings"`               // in effect, with their sources
	SettingsLoaded time.Time `json:"settings_loaded"`        // when they were last read
	ReloadError    string    `json:"reload_error,omitempty"` // the last reload's error, if it failed
	ReloadErrorAt  time.Time `json:"reload_error_at,omitzero"`
}

// Info returns what GET /v1/daemon reports.
func (d *Daemon) Info() DaemonInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	info := DaemonInfo{ConfigDir: d.cfg.ConfigDir, Socket: d.cfg.Socket, Started: d.start, PID: os.Getpid(),
		Settings: d.settings, SettingsLoaded: d.loaded, ReloadError: d.reloadErr, ReloadErrorAt: d.reloadErrAt}
	if d.metricsSrv != nil {
		info.Metrics = d.metricsSrv.ln.Addr().String()
	}
	return info
}

// maxControlHeader bounds a request's line and headers, on the control
// socket and the metrics address. Both take GETs and read no body
// (net/http discards at most 256 KiB of an unread one, then closes the
// connection).
const maxControlHeader = 8 << 10

// boundedServer serves h with what a client can make the server hold
// bounded: a client of the control socket or the metrics address is a peer
// too (TestControlBounds). No ReadTimeout or WriteTimeout: they would cut
// GET /v1/monitor's long-lived streams (which bound what a slow reader
// costs themselves: monitor.go); requests have no body to read.
func boundedServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    maxControlHeader,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
}

func startControl(d *Daemon, path, group string, log *slog.Logger) (*controlServer, error) {
	// The socket's directory is the runtime directory (it holds the
	// link locks too): created 0700, refused if another user controls it.
	dir, err := safepath.StateDir(filepath.Dir(path), os.Geteuid())
	if err != nil {
		return nil, fmt.Errorf("service: control socket: %w", err)
	}
	dir.Close()
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("service: control socket: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("service: control socket: %w", err)
	}
	if gid, ok := lookupGroup(group); ok {
		if err := os.Chown(path, -1, gid); err != nil {
			log.Warn("control socket: cannot set group", "group", group, "err", err)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ports", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.States())
	})
	mux.HandleFunc("GET /v1/ports/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, ok := d.State(r.PathValue("name"))
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no port " + strconv.Quote(r.PathValue("name"))})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /v1/daemon", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, d.Info())
	})
	mux.Handle("GET /metrics", d.metricsHandle)
	streams, endStreams := context.WithCancel(context.Background())
	mux.HandleFunc("GET /v1/monitor", d.serveMonitor(streams)) // monitor.go

	c := &controlServer{ln: ln, path: path, done: make(chan struct{}),
		srv: boundedServer(mux)}
	c.srv.RegisterOnShutdown(endStreams)
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("control socket", "err", err)
		}
	}()
	return c, nil
}

// Close stops serving, waits for the server and removes the socket.
func (c *controlServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := c.srv.Shutdown(ctx)
	if err != nil {
		_ = c.srv.Close() // a monitor stream blocked on a client that does not read
	}
	<-c.done
	_ = os.Remove(c.path)
	return err
}

// newMetricsHandler serves every port's metrics in the Prometheus format.
func newMetricsHandler(d *Daemon) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(d))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// metricsServer serves GET /metrics, read-only and alone, on a TCP address.
type metricsServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	once sync.Once
	err  error
}

func startMetrics(addr string, h http.Handler, log *slog.Logger) (*metricsServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("service: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	m := &metricsServer{ln: ln, done: make(chan struct{}),
		srv: boundedServer(mux)}
	go func() {
		defer close(m.done)
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics", "addr", addr, "err", err)
		}
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	return m, nil
}

// Close stops serving and waits for the server; it can be called again.
func (m *metricsServer) Close() error {
	m.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		m.err = m.srv.Shutdown(ctx)
		<-m.done
	})
	return m.err
}

// removeStaleSocket removes a socket left by a daemon that died, and
// refuses to start a second daemon on a live one.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: control socket: %w", err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("service: control socket %s exists and is not a socket; refusing to replace it", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("service: another vsp daemon is serving %s", path)
	}
	return os.Remove(path)
}

func lookupGroup(name string) (int, bool) {
	if name == "" {
		name = "vsp"
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		if id, err := strconv.Atoi(name); err == nil {
			return id, true
		}
		return 0, false
	}
	id, err := strconv.Atoi(g.Gid)
	return id, err == nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// collector exposes every port's counters to Prometheus at scrape time.
type collector struct {
	d     *Daemon
	descs []portMetric
}

// portMetric is one per-port series and how to read it from a PortState.
type portMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(PortState) float64
}

func newCollector(d *Daemon) *collector {
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	m := func(name, help string, kind prometheus.ValueType, v func(PortState) float64) portMetric {
		return portMetric{prometheus.NewDesc(name, help, []string{"port"}, nil), kind, v}
	}
	return &collector{d: d, descs: []portMetric{
		m("vsp_port_bytes_to_device_total", "Bytes sent from the application to the device.", prometheus.CounterValue,
			func(s PortState) float64 { return float64(s.ToDevice) }),
		m("vsp_port_bytes_to_app_total", "Bytes delivered from the device to the application.", prometheus.CounterValue,
			func(s PortState) float64 { return float64(s.ToApp) }),
		m("vsp_port_possibly_lost_bytes_total", "Bytes handed to a link that died while sending them.", prometheus.CounterValue,
			func(s PortState) float64 { return float64(s.PossiblyLost) }),
		m("vsp_port_discarded_bytes_total", "Device bytes discarded because no application had the port open.", prometheus.CounterValue,
			func(s PortState) float64 { return float64(s.Discarded) }),
		m("vsp_port_reconnects_total", "Link reconnections after the first connect.", prometheus.CounterValue,
			func(s PortState) float64 { return float64(s.Reconnects) }),
		m("vsp_port_sessions_total", "Device sessions opened (connects).", prometheus.CounterValue,
			func(s PortState) float64 { return float64(s.Connects) }),
		m("vsp_port_sessions_released_total", "Device sessions closed by connect = \"on-open\" after the last application closed the port.", prometheus.CounterValue,
			func(s PortState) float64 { return float64(s.Releases) }),
		m("vsp_port_datagrams_to_device_total", "U2S (transport = \"udp\"): datagrams sent to the device.", prometheus.CounterValue,
			func(s PortState) float64 { return udpCount(s, func(u *bridge.UDPStats) uint64 { return u.ToDevice }) }),
		m("vsp_port_datagrams_from_device_total", "U2S: datagrams from the device written to the tty.", prometheus.CounterValue,
			func(s PortState) float64 { return udpCount(s, func(u *bridge.UDPStats) uint64 { return u.FromDevice }) }),
		m("vsp_port_datagrams_dropped_to_device_total", "U2S: datagrams to the device the host could not send.", prometheus.CounterValue,
			func(s PortState) float64 {
				return udpCount(s, func(u *bridge.UDPStats) uint64 { return u.DroppedToDevice })
			}),
		m("vsp_port_datagrams_dropped_from_device_total", "U2S: datagrams dropped because they came from another address than the device's.", prometheus.CounterValue,
			func(s PortState) float64 {
				return udpCount(s, func(u *bridge.UDPStats) uint64 { return u.DroppedFromDevice })
			}),
		m("vsp_port_link_up", "1 when the port's device link is up.", prometheus.GaugeValue,
			func(s PortState) float64 { return b2f(s.State == bridge.StateUp || s.State == bridge.StateHeld) }),
		m("vsp_port_buffered_bytes", "Application bytes waiting in the outage buffer.", prometheus.GaugeValue,
			func(s PortState) float64 { return float64(s.Buffered) }),
		m("vsp_port_app_open", "1 when an application has the port open.", prometheus.GaugeValue,
			func(s PortState) float64 { return b2f(s.AppOpen) }),
		m("vsp_port_config_error", "1 when the port's file was rejected.", prometheus.GaugeValue,
			func(s PortState) float64 { return b2f(s.ConfigError != "") }),
	}}
}

// udpCount is one of a U2S port's datagram counts; 0 for a TCP port.
func udpCount(s PortState, f func(*bridge.UDPStats) uint64) float64 {
	if s.UDP == nil {
		return 0
	}
	return float64(f(s.UDP))
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.descs {
		ch <- m.desc
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.d.States() {
		for _, m := range c.descs {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(st), st.Name)
		}
	}
}
