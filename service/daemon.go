package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/bridge"
)

// LoadFunc reads one port file into a spec. Errors should say file:line.
type LoadFunc func(path string) (bridge.PortSpec, error)

// DaemonConfig configures the daemon. Zero values are defaults except
// ConfigDir and Load, which are required.
type DaemonConfig struct {
	ConfigDir string        // directory of <name>.toml port files
	Ext       string        // port file extension; "" = ".toml"
	Socket    string        // control socket path; "" = no control socket
	Group     string        // group owning the control socket; "" = "vsp" if it exists
	Debounce  time.Duration // quiet time after file events before reloading; 0 = 200 ms
	Load      LoadFunc
}

// entry is one port file and what runs from it.
type entry struct {
	file    string
	port    *bridge.Port // nil when nothing runs (file invalid from the start)
	fileErr error        // the file's last problem; the port keeps its last good spec
	errAt   time.Time
}

// Daemon runs one port per configuration file and reloads the directory
// live: a new file creates a port, a removed file deletes it, a changed file
// restarts only that port, and an invalid file leaves the running port on
// its last good configuration.
type Daemon struct {
	cfg DaemonConfig
	log *slog.Logger

	mu    sync.Mutex
	ports map[string]*entry
	start time.Time

	// opens tracks application opens for every port with one inotify
	// instance (the kernel allows 128 per user by default); nil when it
	// could not be set up, and then each port tries its own.
	opens *pty.OpenWatcher

	fds *fdStore // systemd: notifications and the ptys in its fd store (fdstore.go)
}

// NewDaemon returns a daemon; Run starts it.
func NewDaemon(cfg DaemonConfig, log *slog.Logger) (*Daemon, error) {
	if cfg.ConfigDir == "" {
		return nil, errors.New("service: daemon needs a configuration directory")
	}
	if cfg.Load == nil {
		return nil, errors.New("service: daemon needs a port file loader")
	}
	if cfg.Ext == "" {
		cfg.Ext = ".toml"
	}
	if cfg.Debounce <= 0 {
		cfg.Debounce = 200 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Daemon{cfg: cfg, log: log, ports: map[string]*entry{}}, nil
}

// Run loads every port file, watches the directory and serves the control
// socket until ctx ends; then it closes every port. Cancellation is a normal
// end.
func (d *Daemon) Run(ctx context.Context) error {
	d.start = time.Now()
	d.fds = newFDStore(d.log)
	if err := os.MkdirAll(d.cfg.ConfigDir, 0o755); err != nil {
		return fmt.Errorf("service: configuration directory: %w", err)
	}
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
	d.rescan()
	d.fds.ready(d)
	d.log.Info("daemon running", "config_dir", d.cfg.ConfigDir, "socket", d.cfg.Socket, "ports", len(d.ports))

	pending := map[string]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.fds.tick():
			d.fds.beat(d)
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			name, ok := d.portName(ev.Name)
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
			names := make([]string, 0, len(pending))
			for n := range pending {
				names = append(names, n)
			}
			clear(pending)
			sort.Strings(names)
			for _, n := range names {
				d.reconcile(n)
			}
		}
	}
}

// portName maps a file path to a port name, or reports that the file is
// not a port file (editor swap and backup files, other extensions).
func (d *Daemon) portName(path string) (string, bool) {
	base := filepath.Base(path)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || !strings.HasSuffix(base, d.cfg.Ext) {
		return "", false
	}
	name := strings.TrimSuffix(base, d.cfg.Ext)
	return name, name != ""
}

// rescan reconciles every port file in the directory and every port that
// runs.
func (d *Daemon) rescan() {
	names := map[string]bool{}
	ents, err := os.ReadDir(d.cfg.ConfigDir)
	if err != nil {
		d.log.Error("read configuration directory", "err", err)
		return
	}
	for _, e := range ents {
		if n, ok := d.portName(e.Name()); ok && !e.IsDir() {
			names[n] = true
		}
	}
	d.mu.Lock()
	for n := range d.ports {
		names[n] = true
	}
	d.mu.Unlock()
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		d.reconcile(n)
	}
}

// reconcile brings port name in line with its file.
func (d *Daemon) reconcile(name string) {
	path := filepath.Join(d.cfg.ConfigDir, name+d.cfg.Ext)
	log := d.log.With("port", name)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		d.remove(name)
		return
	}
	spec, err := d.cfg.Load(path)
	if err == nil {
		spec.Name = name
		spec.Source = path
		spec.PTY.Watcher = d.opens
		spec.PTY.Keeper = d.fds.keeperPID()
		err = d.checkDuplicateLink(name, spec.PTY.Link)
	}
	if err != nil {
		log.Error("port file rejected; the port keeps its last good configuration", "file", path, "err", err)
		d.mu.Lock()
		e := d.ports[name]
		if e == nil {
			e = &entry{file: path}
			d.ports[name] = e
		}
		e.fileErr, e.errAt = err, time.Now()
		d.mu.Unlock()
		return
	}
	d.mu.Lock()
	e := d.ports[name]
	if e != nil && e.port != nil && reflect.DeepEqual(e.port.Spec(), spec) {
		e.fileErr = nil
		d.mu.Unlock()
		return
	}
	var old *bridge.Port
	if e != nil {
		old = e.port
	}
	d.mu.Unlock()
	var p *bridge.Port
	if old != nil {
		log.Info("port file changed: restarting this port")
		p, err = old.Restart(spec, d.log)
		if err != nil {
			log.Error("cannot start port with the new configuration; it runs on the previous one", "file", path, "err", err)
		}
	} else if p, err = d.fds.start(spec, d.log); err != nil {
		log.Error("cannot start port", "file", path, "err", err)
	}
	if p != nil {
		d.fds.keep(name, p)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e = &entry{file: path, port: p}
	if err != nil {
		e.fileErr, e.errAt = err, time.Now()
	}
	d.ports[name] = e
}

// checkDuplicateLink refuses a link path another port already uses.
func (d *Daemon) checkDuplicateLink(name, link string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for n, e := range d.ports {
		if n != name && e.port != nil && e.port.Spec().PTY.Link == link {
			return fmt.Errorf("service: link %s is already used by port %s (%s)", link, n, e.file)
		}
	}
	return nil
}

func (d *Daemon) remove(name string) {
	d.mu.Lock()
	e := d.ports[name]
	delete(d.ports, name)
	d.mu.Unlock()
	d.fds.remove(name) // before the pty closes
	if e != nil && e.port != nil {
		d.log.Info("port file removed: deleting port", "port", name)
		_ = e.port.Close()
	}
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
