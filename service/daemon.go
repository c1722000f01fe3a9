package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vsp-dev/vsp/internal/safepath"
	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
)

// LoadFunc reads one port file (with config.Load, the one port-file
// loader): the file as decoded, for the conflict check, whose errors name
// file:line, and the spec that runs from it. Errors should say file:line.
type LoadFunc func(path string) (*config.Port, bridge.PortSpec, error)

// DaemonConfig configures the daemon. Zero values are defaults except
// ConfigDir and Load, which are required.
type DaemonConfig struct {
	ConfigDir string        // directory of <name>.toml port files
	Socket    string        // control socket path; "" = no control socket
	Group     string        // group owning the control socket; "" = "vsp" if it exists
	Debounce  time.Duration // quiet time after file events before reloading; 0 = 200 ms
	Load      LoadFunc

	Metrics  string    // TCP listen address serving only GET /metrics; "" = none
	Settings []Setting // the settings in effect and their sources, for /v1/daemon
	// Reload asks the daemon to call ReloadSettings (the CLI feeds it
	// SIGHUP). ReloadSettings re-reads the settings file and applies what it
	// can itself (the log level); it returns the new metrics address and
	// settings, or an error that leaves the running settings in place.
	Reload         <-chan os.Signal
	ReloadSettings func() (metrics string, settings []Setting, err error)
}

// Setting is one daemon setting in effect and where its value came from:
// "flag --socket", "env VSP_SOCKET", "file /etc/vsp/vsp.toml:3" or "default".
type Setting struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Source string `json:"source"`
}

// entry is one port file and what runs from it.
type entry struct {
	file    string
	port    *bridge.Port // nil when nothing runs (file invalid from the start)
	fileErr error        // the file's last problem; the port keeps its last good spec
	errAt   time.Time
	// holds is what port holds: its file as loaded, with the link as the
	// tty has it (bare names resolved); nil when port is nil.
	holds *config.Port
	// wants is what the file claims when fileErr is a conflict with
	// another port's link or listen address (nil otherwise): such a file is
	// tried again when a port goes away or changes.
	wants *config.Port
}

// Daemon runs one port per configuration file and reloads the directory
// live: a new file creates a port, a removed file deletes it, a changed file
// restarts only that port, and an invalid file leaves the running port on
// its last good configuration. Conflicts never move a tty: a running port
// keeps its link and listen address, a file that claims either is refused,
// and files that claim what no running port holds (at start-up, say) are
// all refused; refused files are tried again whenever a port is deleted or
// changes.
type Daemon struct {
	cfg DaemonConfig
	log *slog.Logger

	mu    sync.Mutex
	ports map[string]*entry
	start time.Time

	// The settings in effect (guarded by mu): what /v1/daemon reports.
	settings      []Setting
	loaded        time.Time // when the settings were last read
	reloadErr     string    // the last reload's error; "" after a good one
	reloadErrAt   time.Time
	metricsAddr   string         // the metrics address asked for
	metricsSrv    *metricsServer // nil when off
	metricsHandle http.Handler   // GET /metrics, on the control socket and metricsSrv

	// opens tracks application opens for every port with one inotify
	// instance (the kernel allows 128 per user by default); nil when it
	// could not be set up, and then each port tries its own.
	opens *pty.OpenWatcher

	fds *fdStore // systemd: notifications and the ptys in its fd store (fdstore.go)

	// started is closed (and replaced, under mu) each time a port starts
	// running: monitors of every port (monitor.go) pick up new ports.
	started chan struct{}
	// monitors counts the open monitor streams (maxMonitors).
	monitors atomic.Int32
}

// NewDaemon returns a daemon; Run starts it.
func NewDaemon(cfg DaemonConfig, log *slog.Logger) (*Daemon, error) {
	if cfg.ConfigDir == "" {
		return nil, errors.New("service: daemon needs a configuration directory")
	}
	if cfg.Load == nil {
		return nil, errors.New("service: daemon needs a port file loader")
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 200 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{cfg: cfg, log: log, ports: map[string]*entry{}, settings: cfg.Settings, metricsAddr: cfg.Metrics, started: make(chan struct{})}
	d.metricsHandle = newMetricsHandler(d)
	return d, nil
}

// Run loads every port file, watches the directory and serves the control
// socket until ctx ends; then it closes every port. Cancellation is a normal
// end.
func (d *Daemon) Run(ctx context.Context) error {
	d.mu.Lock()
	d.start = time.Now()
	d.loaded = d.start
	d.mu.Unlock()
	d.fds = newFDStore(d.log)
	// The port directory decides what runs as the daemon's user: it and
	// every directory above it must be nobody else's (created if missing).
	abs, err := filepath.Abs(d.cfg.ConfigDir)
	if err != nil {
		return fmt.Errorf("service: configuration directory: %w", err)
	}
	cd, err := safepath.OpenDir(abs, os.Geteuid(), true, 0o755)
	if err != nil {
		return fmt.Errorf("service: configuration directory: %w", err)
	}
	cd.Close()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("service: watch %s: %w", d.cfg.ConfigDir, err)
	}
	defer w.Close()
	if d.opens, err = pty.NewOpenWatcher(d.log); err != nil {
		d.log.Warn("cannot share one open/close watch among ports; each port will use its own", "err", err)
	} else {
		defer d.opens.Close() // after closeAll, deferred below
	}
	// Watch the directory, not the files: editors replace files by rename.
	if err := w.Add(d.cfg.ConfigDir); err != nil {
		return fmt.Errorf("service: watch %s: %w", d.cfg.ConfigDir, err)
	}
	var ctl *controlServer
	if d.cfg.Socket != "" {
		ctl, err = startControl(d, d.cfg.Socket, d.cfg.Group, d.log)
		if err != nil {
			return err
		}
	}
	defer d.closeAll()
	if ctl != nil {
		defer ctl.Close()
	}
	if d.metricsAddr != "" {
		m, err := startMetrics(d.metricsAddr, d.metricsHandle, d.log)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.metricsSrv = m
		d.mu.Unlock()
	}
	defer func() {
		d.mu.Lock()
		m := d.metricsSrv
		d.metricsSrv = nil
		d.mu.Unlock()
		if m != nil {
			_ = m.Close()
		}
	}()
	d.rescan()
	d.fds.ready(d)
	d.log.Info("daemon running", "config_dir", d.cfg.ConfigDir, "socket", d.cfg.Socket, "metrics", d.metricsAddr, "ports", len(d.ports))

	pending := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			// Every way the daemon ends is logged: here a signal (SIGTERM,
			// SIGINT) or the service manager's stop; the ports close (or are
			// handed over to systemd's store) in the deferred calls.
			d.log.Info("daemon stopping", "reason", context.Cause(ctx).Error())
			return nil
		case <-d.fds.tick():
			d.fds.beat(d)
		case <-d.cfg.Reload:
			// SIGHUP: the settings file, then every port file (as after a
			// lost file event); unchanged ports are left alone.
			d.reloadSettings()
			d.rescan()
		case <-d.fds.reexecRequests(): // SIGUSR2: an upgrade without a service manager
			if d.fds.prepareReexec() {
				return nil // closeAll re-executes instead of closing the ports
			}
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name, ok := portName(ev.Name)
			if !ok {
				continue
			}
			pending[name] = true
			timer.Reset(d.cfg.Debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflowed queue loses events: reconcile everything.
			d.log.Warn("file watch", "err", err)
			d.rescan()
		case <-timer.C:
			names := slices.Sorted(maps.Keys(pending))
			clear(pending)
			d.apply(names)
		}
	}
}

// reloadSettings re-reads the settings (SIGHUP): a bad file leaves the
// running settings in place; a good one changes the metrics address live.
func (d *Daemon) reloadSettings() {
	if d.cfg.ReloadSettings == nil {
		return
	}
	addr, settings, err := d.cfg.ReloadSettings()
	now := time.Now()
	if err == nil && addr != d.metricsAddr {
		err = d.moveMetrics(addr)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.log.Error("settings not reloaded; the daemon keeps its running settings", "err", err)
		d.reloadErr, d.reloadErrAt = err.Error(), now
		return
	}
	d.settings, d.loaded, d.reloadErr, d.reloadErrAt = settings, now, "", time.Time{}
	d.log.Info("settings reloaded")
}

// moveMetrics serves /metrics on addr instead of the current address; when
// addr cannot be served, the old address is served again.
func (d *Daemon) moveMetrics(addr string) error {
	d.mu.Lock()
	old, oldAddr := d.metricsSrv, d.metricsAddr
	d.metricsSrv = nil
	d.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	var srv *metricsServer
	var err error
	if addr != "" {
		srv, err = startMetrics(addr, d.metricsHandle, d.log)
	}
	if err != nil {
		addr = oldAddr
		if oldAddr != "" {
			var rerr error
			if srv, rerr = startMetrics(oldAddr, d.metricsHandle, d.log); rerr != nil {
				d.log.Error("metrics: cannot serve the previous address again", "addr", oldAddr, "err", rerr)
				addr = ""
			}
		}
	} else {
		d.log.Info("metrics address changed", "from", oldAddr, "to", addr)
	}
	d.mu.Lock()
	d.metricsSrv, d.metricsAddr = srv, addr
	d.mu.Unlock()
	return err
}

// portName maps a file path to a port name, or reports that the file is
// not a port file (config.Ignored: editor and package-manager files, other
// extensions).
func portName(path string) (string, bool) {
	base := filepath.Base(path)
	if config.Ignored(base) {
		return "", false
	}
	return config.NameOf(base), true
}

// rescan reconciles every port file in the directory and every port that
// runs, as one batch.
func (d *Daemon) rescan() {
	ents, err := os.ReadDir(d.cfg.ConfigDir)
	if err != nil {
		d.log.Error("read configuration directory", "err", err)
		return
	}
	names := map[string]bool{}
	for _, e := range ents {
		// Whatever its type: a directory or a FIFO called x.toml is an
		// error for x (the loader says so), not something to skip silently.
		if n, ok := portName(e.Name()); ok {
			names[n] = true
		}
	}
	d.mu.Lock()
	for n := range d.ports {
		names[n] = true
	}
	d.mu.Unlock()
	d.apply(slices.Sorted(maps.Keys(names)))
}

// apply brings the named ports in line with their files, as one batch
// (applyOnce). When that may have freed a link or listen address — a port
// was deleted or restarted, or a file refused for a conflict went away or
// changed — the files refused for a conflict are tried again, as a batch of
// their own, until nothing more is freed. A retry batch frees something
// only when a refused file starts, is refused for another reason or is
// gone, so there are fewer refused files each time (or a file changed
// meanwhile: the bound below is for that).
func (d *Daemon) apply(names []string) {
	freed := d.applyOnce(names)
	for range len(names) + len(d.ports) {
		if !freed {
			return
		}
		d.mu.Lock()
		var retry []string
		for n, e := range d.ports {
			if e.wants != nil {
				retry = append(retry, n)
			}
		}
		d.mu.Unlock()
		if len(retry) == 0 {
			return
		}
		sort.Strings(retry)
		freed = d.applyOnce(retry)
	}
}

// candidate is a port file that loaded.
type candidate struct {
	name, path string
	spec       bridge.PortSpec
	claims     *config.Port // the file with its link resolved as SpecFromConfig resolves it
}

// applyOnce brings the named ports in line with their files: removed files
// delete their ports, files that do not load are refused (a running port
// keeps its last good configuration), and of the files that load, those in
// a conflict are refused:
//
//   - a file that claims the link or an overlapping listen address of
//     another running port: that port keeps it;
//   - then, files of this batch that claim what no running port holds, all
//     of them: none gets it (at start-up nothing runs, so every file in a
//     conflict is refused).
//
// The others start or restart. It reports whether that may have freed a
// link or listen address (see apply).
func (d *Daemon) applyOnce(names []string) (freed bool) {
	wanted := map[string]*config.Port{} // what refused files claimed before
	d.mu.Lock()
	for _, n := range names {
		if e := d.ports[n]; e != nil && e.wants != nil {
			wanted[n] = e.wants
		}
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		for n, w := range wanted {
			if e := d.ports[n]; e == nil || e.wants == nil || e.wants.Link != w.Link || e.wants.Listen != w.Listen {
				freed = true
			}
		}
	}()

	var cands []candidate
	for _, name := range names {
		path := config.PortFile(d.cfg.ConfigDir, name)
		conf, spec, err := d.cfg.Load(path)
		if err != nil {
			if _, lerr := os.Lstat(path); errors.Is(err, fs.ErrNotExist) && errors.Is(lerr, fs.ErrNotExist) {
				freed = d.remove(name) || freed // a dangling symlink is an error, not a removal
			} else {
				d.refuse(name, path, err, nil)
			}
			continue
		}
		spec.Name = name
		spec.Source = path
		spec.PTY.Watcher = d.opens
		spec.PTY.Keeper = d.fds.keeperPID()
		claims := *conf
		claims.Link = spec.PTY.Link // bare names resolved: "ttyX" and "<link dir>/ttyX" are one link
		cands = append(cands, candidate{name: name, path: path, spec: spec, claims: &claims})
	}

	d.mu.Lock()
	var held []*config.Port
	for _, e := range d.ports {
		if e.port != nil && e.holds != nil {
			held = append(held, e.holds)
		}
	}
	d.mu.Unlock()
	var free []candidate
	for _, c := range cands {
		if err := config.Conflicts(c.claims, held); err != nil { // its own running port is skipped
			d.refuse(c.name, c.path, err, c.claims)
		} else {
			free = append(free, c)
		}
	}
	claims := make([]*config.Port, len(free))
	for i, c := range free {
		claims[i] = c.claims
	}
	var start []candidate
	for _, c := range free {
		if err := config.Conflicts(c.claims, claims); err != nil {
			d.refuse(c.name, c.path, err, c.claims)
		} else {
			start = append(start, c)
		}
	}
	for _, c := range start {
		if d.run(c) {
			freed = true
		}
	}
	return freed
}

// refuse records why name's file cannot run now; a running port keeps its
// last good configuration. wants is what the file claims when err is a
// conflict with another port, else nil.
func (d *Daemon) refuse(name, path string, err error, wants *config.Port) {
	d.mu.Lock()
	e := d.ports[name]
	if e == nil {
		e = &entry{file: path}
		d.ports[name] = e
	}
	again := e.fileErr != nil && e.fileErr.Error() == err.Error()
	if !again {
		e.errAt = time.Now()
	}
	e.fileErr, e.wants = err, wants
	running := e.port != nil
	d.mu.Unlock()
	if again { // retried after a change elsewhere: said already
		return
	}
	if running {
		d.log.Error("port file rejected; the port keeps its last good configuration", "port", name, "file", path, "err", err)
	} else {
		d.log.Error("port file rejected; the port does not run", "port", name, "file", path, "err", err)
	}
}

// run starts c's port, or restarts it when it runs with another spec. It
// reports whether a running port was restarted (or closed, if its tty
// changed and the new one could not start).
func (d *Daemon) run(c candidate) (restarted bool) {
	log := d.log.With("port", c.name)
	d.mu.Lock()
	e := d.ports[c.name]
	if e != nil && e.port != nil && reflect.DeepEqual(e.port.Spec(), c.spec) {
		e.fileErr, e.wants = nil, nil
		e.holds = c.claims // the same claims; lines may have moved
		d.mu.Unlock()
		return false
	}
	if e != nil && e.port != nil && bridge.OnlyTraceDiffers(e.port.Spec(), c.spec) {
		e.fileErr, e.wants = nil, nil
		e.holds = c.claims
		p := e.port
		d.mu.Unlock()
		log.Info("port file changed: [trace] only; applied without a restart")
		if err := p.SetTrace(c.spec.Trace); err != nil {
			log.Error("trace file not written", "file", c.path, "err", err)
		}
		return false
	}
	var old *bridge.Port
	var oldHolds *config.Port
	if e != nil {
		old, oldHolds = e.port, e.holds
	}
	d.mu.Unlock()
	var p *bridge.Port
	var err error
	if old != nil {
		log.Info("port file changed: restarting this port")
		p, err = old.Restart(c.spec, d.log)
		if p == nil {
			old.Hub().Close() // the port is closed: its monitors end
		}
		if err != nil {
			log.Error("cannot start port with the new configuration", "file", c.path, "err", err, "running", p != nil)
		}
	} else if p, err = d.fds.start(c.spec, d.log); err != nil {
		log.Error("cannot start port", "file", c.path, "err", err)
	}
	if p != nil {
		d.fds.keep(c.name, p)
	}
	ne := &entry{file: c.path, port: p}
	switch {
	case p == nil:
	case err == nil:
		ne.holds = c.claims
	default: // p runs the previous spec
		ne.holds = oldHolds
	}
	if err != nil {
		ne.fileErr, ne.errAt = err, time.Now()
	}
	d.mu.Lock()
	d.ports[c.name] = ne
	if p != nil && p != old {
		close(d.started)
		d.started = make(chan struct{})
	}
	d.mu.Unlock()
	return old != nil
}

// remove deletes name's port; it reports whether a port was running.
func (d *Daemon) remove(name string) bool {
	d.mu.Lock()
	e := d.ports[name]
	delete(d.ports, name)
	d.mu.Unlock()
	d.fds.remove(name) // before the pty closes
	if e == nil || e.port == nil {
		return false
	}
	d.log.Info("port file removed: deleting port", "port", name)
	_ = e.port.Close()
	e.port.Hub().Close() // its monitors end
	return true
}

func (d *Daemon) closeAll() {
	d.mu.Lock()
	ents := d.ports
	d.ports = map[string]*entry{}
	d.mu.Unlock()
	if d.fds.handOver(ents) {
		return
	}
	var wg sync.WaitGroup
	for _, e := range ents {
		if e.port != nil {
			wg.Add(1)
			go func() { defer wg.Done(); _ = e.port.Close() }()
		}
	}
	wg.Wait()
}

// PortState is what the control socket reports for one port file.
type PortState struct {
	bridge.Status
	File        string    `json:"file"`
	Running     bool      `json:"running"`
	ConfigError string    `json:"config_error,omitempty"`
	ConfigErrAt time.Time `json:"config_error_at,omitzero"`
}

// States returns the state of every port, sorted by name.
func (d *Daemon) States() []PortState {
	d.mu.Lock()
	names := make([]string, 0, len(d.ports))
	for n := range d.ports {
		names = append(names, n)
	}
	d.mu.Unlock()
	sort.Strings(names)
	out := make([]PortState, 0, len(names))
	for _, n := range names {
		if st, ok := d.State(n); ok {
			out = append(out, st)
		}
	}
	return out
}

// State returns one port's state.
func (d *Daemon) State(name string) (PortState, bool) {
	d.mu.Lock()
	e, ok := d.ports[name]
	if !ok {
		d.mu.Unlock()
		return PortState{}, false
	}
	file, port, ferr, at := e.file, e.port, e.fileErr, e.errAt
	d.mu.Unlock()
	st := PortState{File: file}
	if port != nil {
		st.Status = port.Status()
		st.Running = true
	} else {
		st.Status = bridge.Status{Name: name, Stats: bridge.Stats{State: "error"}}
	}
	if ferr != nil {
		st.ConfigError = ferr.Error()
		st.ConfigErrAt = at
	}
	return st, true
}
