package service

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/internal/sdnotify"
	"github.com/vsp-dev/vsp/service/bridge"
)

// The daemon under systemd (DESIGN.md, lifecycle rule 6): each port's pty
// master and the slave fd the daemon holds live in the service's
// file-descriptor store, so a crash, a restart or an upgrade is, for the
// application, one more outage. A stored file is named after its port and
// its role; names are escaped into what systemd accepts (fdName).
const (
	fdMaster   = "m" // the pty master
	fdSlave    = "s" // the slave fd the daemon holds (so the master never hangs up)
	fdRing     = "r" // a memfd with what the outage buffer held at a handover
	fdHandover = "vsp.handover"
)

// ringMax bounds what is read back from a stored outage buffer.
const ringMax = 1 << 30

// statusEvery is how often the status line is refreshed when no watchdog
// asks for more.
const statusEvery = 2 * time.Second

// fdStore is the daemon's side of systemd: readiness, status, watchdog,
// and the ports' fds in the file-descriptor store. Without a service
// manager (NOTIFY_SOCKET unset) every method does nothing.
type fdStore struct {
	n        *sdnotify.Notifier
	log      *slog.Logger
	on       bool // the fd store is used
	max      int  // files the store keeps ($FDSTORE); 0 = not said (systemd < 254)
	keeper   int  // pid that keeps the files: the service manager
	watchdog time.Duration
	ticker   *time.Ticker
	usr2     chan os.Signal // re-execution requests (SIGUSR2)
	exe      string         // the binary to re-execute, once requested

	mu       sync.Mutex
	kept     map[string]*keptPort // fds of the previous process, not adopted yet
	stored   map[string]string    // port → tty whose fds are in the store
	names    map[string]int       // files in the store by name, as far as we know
	count    int                  // their sum
	handover bool                 // the previous process handed its buffers over
	full     bool                 // warned that the store is full
	status   string               // last status line sent
}

// keptPort is what the store gave back for one port.
type keptPort struct {
	master, slave, ring *os.File
}

// A nil *fdStore (a Daemon that is not running) does nothing.

// newFDStore collects what the service manager handed over at start. Call
// it once, before any port starts.
func newFDStore(log *slog.Logger) *fdStore {
	s := &fdStore{n: sdnotify.New(), log: log, kept: map[string]*keptPort{}, stored: map[string]string{}, names: map[string]int{}}
	if sigs := reexecSignals(); len(sigs) > 0 {
		s.usr2 = make(chan os.Signal, 1)
		signal.Notify(s.usr2, sigs...)
	}
	files := sdnotify.Stored() // always: the variables must not leak to children
	inh, err := inherited()
	if err != nil {
		log.Error("cannot take over the ptys the previous vsp image left", "err", err)
	}
	if inh != nil {
		s.handover = true // a re-execution is a handover
	}
	defer func() {
		for name, fs := range inh {
			s.collect(name, fs)
		}
	}()
	if !s.n.Enabled() {
		for _, fs := range files {
			closeAll(fs)
		}
		return s
	}
	s.watchdog = s.n.WatchdogInterval()
	every := statusEvery
	if s.watchdog > 0 {
		every = min(every, s.watchdog/2)
	}
	s.ticker = time.NewTicker(every)
	max, said := sdnotify.StoreMax()
	s.on = !said || max > 0
	s.max = max
	if !s.on {
		log.Info("systemd keeps no file descriptors for vsp (FileDescriptorStoreMax=0): a restart hangs up every application")
		for _, fs := range files {
			closeAll(fs)
		}
		return s
	}
	s.keeper = os.Getppid() // systemd starts its services itself
	for name, fs := range files {
		s.collect(name, fs)
	}
	return s
}

// collect files one stored name under its port.
func (s *fdStore) collect(name string, fs []*os.File) {
	s.names[name] = len(fs)
	s.count += len(fs)
	if name == fdHandover {
		s.handover = true
		closeAll(fs)
		return
	}
	port, role, ok := parseFDName(name)
	if !ok || len(fs) != 1 {
		s.log.Warn("unknown file in systemd's store; removed", "fdname", name, "files", len(fs))
		closeAll(fs)
		s.removeLocked(name)
		return
	}
	k := s.kept[port]
	if k == nil {
		k = &keptPort{}
		s.kept[port] = k
	}
	slot := map[string]**os.File{fdMaster: &k.master, fdSlave: &k.slave, fdRing: &k.ring}[role]
	if *slot != nil {
		fs[0].Close() // the same file from both systemd and a re-execution
		return
	}
	*slot = fs[0]
}

// removeLocked takes every file stored under name out of the store.
func (s *fdStore) removeLocked(name string) {
	if err := s.n.Remove(name); err != nil {
		s.log.Warn("cannot remove a file from systemd's store", "fdname", name, "err", err)
	}
	s.count -= s.names[name]
	delete(s.names, name)
}

// storeLocked puts f into the store under name.
func (s *fdStore) storeLocked(name string, f *os.File) error {
	if err := s.n.Store(name, f); err != nil {
		return err
	}
	s.names[name]++
	s.count++
	return nil
}

// keeperPID is the pid whose copies of the ports' fds are not an
// application's (pty.Config.Keeper); 0 without the store.
func (s *fdStore) keeperPID() int {
	if s == nil {
		return 0
	}
	return s.keeper
}

// start starts a port from its file: on the pty the previous process kept
// for it, if there is one, else on a new one.
func (s *fdStore) start(spec bridge.PortSpec, log *slog.Logger) (*bridge.Port, error) {
	if s == nil {
		return bridge.StartPort(spec, log)
	}
	s.mu.Lock()
	k := s.kept[spec.Name]
	delete(s.kept, spec.Name)
	handover := s.handover
	s.mu.Unlock()
	if k == nil {
		return bridge.StartPort(spec, log)
	}
	plog := log.With("port", spec.Name)
	var queued []byte
	hadRing := k.ring != nil
	if hadRing {
		var err error
		if queued, err = readRing(k.ring); err != nil {
			plog.Error("cannot read the outage buffer handed over; its bytes are lost", "err", err)
		}
		k.ring.Close()
		s.mu.Lock()
		s.removeLocked(fdName(spec.Name, fdRing))
		s.mu.Unlock()
		k.ring = nil
	}
	if k.master == nil || k.slave == nil {
		plog.Warn("systemd's store held only part of the port's pty; starting a new one")
		s.forget(spec.Name, k)
		return bridge.StartPort(spec, log)
	}
	p, err := bridge.AdoptPort(spec, log, k.master, k.slave, queued)
	if err != nil {
		plog.Error("cannot take over the pty kept by systemd; starting a new one (the application's open port hangs up)", "err", err)
		s.forget(spec.Name, &keptPort{})
		return bridge.StartPort(spec, log)
	}
	s.mu.Lock()
	s.stored[spec.Name] = p.Status().TTY // the same files are in the store already
	s.mu.Unlock()
	switch {
	case hadRing:
		plog.Info("pty taken over from the previous vsp process, with its outage buffer", "queued", len(queued))
	case handover:
		plog.Info("pty taken over from the previous vsp process")
	default:
		plog.Warn("pty taken over after vsp ended without a handover (crash, kill or watchdog): what its outage buffer held then is lost, and how much is unknown; what the application wrote since waited in the pty")
	}
	return p, nil
}

// forget closes what was kept for a port and takes all of the port's
// files out of the store.
func (s *fdStore) forget(port string, k *keptPort) {
	for _, f := range []*os.File{k.master, k.slave, k.ring} {
		if f != nil {
			f.Close()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, role := range []string{fdMaster, fdSlave, fdRing} {
		if name := fdName(port, role); s.names[name] > 0 {
			s.removeLocked(name)
		}
	}
	delete(s.stored, port)
}

// keep puts a running port's pty into the store, unless it is there
// already; a pty that replaced another (a restart with a new link or
// owner) takes the old one's place.
func (s *fdStore) keep(name string, p *bridge.Port) {
	if s == nil || !s.on {
		return
	}
	tty := p.Status().TTY
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.stored[name]
	if ok && old == tty {
		return
	}
	if ok {
		s.removeLocked(fdName(name, fdMaster))
		s.removeLocked(fdName(name, fdSlave))
	}
	delete(s.stored, name)
	mName, sName := fdName(name, fdMaster), fdName(name, fdSlave)
	if !sdnotify.ValidName(mName) {
		s.log.Warn("port name too long for systemd's store; a restart of vsp hangs this port up", "port", name)
		return
	}
	if s.max > 0 && s.count+2 > s.max {
		if !s.full {
			s.log.Warn("systemd's file-descriptor store is full (FileDescriptorStoreMax=); a restart of vsp hangs up the ports beyond it", "max", s.max, "port", name)
			s.full = true
		}
		return
	}
	m, sl, err := p.Files()
	if err == nil {
		if err = s.storeLocked(mName, m); err == nil {
			err = s.storeLocked(sName, sl)
		}
		m.Close()
		sl.Close()
	}
	if err != nil {
		s.log.Warn("cannot keep the port's pty in systemd's store; a restart of vsp hangs it up", "port", name, "err", err)
		return
	}
	s.stored[name] = tty
}

// remove takes a deleted port's files out of the store before its pty
// closes, and whatever was kept for it and not adopted.
func (s *fdStore) remove(name string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	k := s.kept[name]
	delete(s.kept, name)
	_, stored := s.stored[name]
	s.mu.Unlock()
	if k != nil {
		s.forget(name, k)
	} else if stored {
		s.forget(name, &keptPort{})
	}
}

// ready is called once the ports of the files present at start run: what
// was kept for ports whose files are gone is released (files that exist
// but do not load keep their pty until they are fixed or removed), the old
// handover mark is cleared, and the service manager hears READY=1.
func (s *fdStore) ready(d *Daemon) {
	if s == nil {
		return
	}
	{
		d.mu.Lock()
		var gone []string
		s.mu.Lock()
		for name := range s.kept {
			if _, ok := d.ports[name]; !ok {
				gone = append(gone, name)
			}
		}
		s.mu.Unlock()
		d.mu.Unlock()
		for _, name := range gone {
			s.log.Info("port file gone while vsp was not running: releasing its pty", "port", name)
			s.mu.Lock()
			k := s.kept[name]
			delete(s.kept, name)
			s.mu.Unlock()
			s.forget(name, k)
		}
		s.mu.Lock()
		if s.names[fdHandover] > 0 {
			s.removeLocked(fdHandover)
		}
		s.mu.Unlock()
	}
	if !s.n.Enabled() {
		return
	}
	st := statusLine(d.States())
	s.mu.Lock()
	s.status = st
	s.mu.Unlock()
	if err := s.n.Ready(st); err != nil {
		s.log.Warn("cannot tell systemd vsp is ready", "err", err)
	}
}

// tick fires when the main loop should call beat; nil (never) without a
// service manager.
func (s *fdStore) tick() <-chan time.Time {
	if s == nil || s.ticker == nil {
		return nil
	}
	return s.ticker.C
}

// beat is called from the daemon's main loop: the watchdog's heartbeat
// (it stops when the loop hangs, and systemd restarts vsp) and the status
// line, when it changed.
func (s *fdStore) beat(d *Daemon) {
	if s.watchdog > 0 {
		if err := s.n.Watchdog(); err != nil {
			s.log.Warn("systemd watchdog", "err", err)
		}
	}
	st := statusLine(d.States())
	s.mu.Lock()
	changed := st != s.status
	s.status = st
	s.mu.Unlock()
	if changed {
		_ = s.n.Status(st)
	}
}

// handOver ends the daemon under systemd: STOPPING=1, and with the store,
// every port leaves its pty (and link) to the store and its outage buffer
// in a memfd, so the next process delivers it. It reports whether the
// ports were handed over; if not, the caller closes them. systemd closes
// the stored files when the unit stops for good ("stop means stop"); a
// restart gives them to the next process.
func (s *fdStore) handOver(ents map[string]*entry) bool {
	if s == nil {
		return false
	}
	if s.exe != "" {
		s.reexec(ents)
		return true
	}
	if s.usr2 != nil {
		signal.Stop(s.usr2)
	}
	if s.ticker != nil {
		s.ticker.Stop()
	}
	if !s.n.Enabled() {
		return false
	}
	if !s.on {
		_ = s.n.Stopping("stopping: closing every port")
		return false
	}
	_ = s.n.Stopping("stopping: ptys stay in systemd's store for the next start")
	var wg sync.WaitGroup
	for name, e := range ents {
		if e.port == nil {
			continue
		}
		s.mu.Lock()
		_, stored := s.stored[name]
		s.mu.Unlock()
		if !stored {
			wg.Add(1)
			go func() { defer wg.Done(); _ = e.port.Close() }()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			queued, err := e.port.Handover()
			if err != nil {
				s.log.Warn("port handover", "port", name, "err", err)
			}
			if len(queued) > 0 {
				s.storeRing(name, queued)
			}
		}()
	}
	wg.Wait()
	mark, err := memfd(fdHandover, nil)
	if err == nil {
		s.mu.Lock()
		err = s.storeLocked(fdHandover, mark)
		s.mu.Unlock()
		mark.Close()
	}
	if err != nil {
		s.log.Warn("cannot mark the handover in systemd's store; the next start will report unknown losses", "err", err)
	}
	// The notifications must reach systemd before it sees the process end.
	if err := s.n.Barrier(5 * time.Second); err != nil {
		s.log.Warn("systemd did not confirm the handover", "err", err)
	}
	s.log.Info("ports handed over to systemd's store")
	return true
}

// storeRing keeps a port's queued bytes in the store for the next start.
func (s *fdStore) storeRing(name string, queued []byte) {
	f, err := memfd("vsp-ring-"+name, queued)
	if err == nil {
		s.mu.Lock()
		if s.max > 0 && s.count+1 > s.max {
			err = fmt.Errorf("service: systemd's file-descriptor store is full (FileDescriptorStoreMax=%d)", s.max)
		} else {
			err = s.storeLocked(fdName(name, fdRing), f)
		}
		s.mu.Unlock()
		f.Close()
	}
	if err != nil {
		s.log.Error("cannot hand the outage buffer over; its bytes are lost", "port", name, "bytes", len(queued), "err", err)
		return
	}
	s.log.Info("outage buffer handed over", "port", name, "bytes", len(queued))
}

// readRing reads a handed-over outage buffer from its start (the stored
// fd shares its offset with the writer's).
func readRing(f *os.File) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("service: outage buffer: %w", err)
	}
	if fi.Size() > ringMax {
		return nil, fmt.Errorf("service: outage buffer of %d bytes is larger than any vsp writes", fi.Size())
	}
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, fi.Size()), b); err != nil {
		return nil, fmt.Errorf("service: outage buffer: %w", err)
	}
	return b, nil
}

// statusLine sums up the ports for systemctl status, e.g. "3 ports: 2 up,
// 1 connecting".
func statusLine(states []PortState) string {
	n := map[string]int{}
	for _, st := range states {
		state := st.State
		if !st.Running {
			state = "error"
		}
		n[state]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if n[keys[i]] != n[keys[j]] {
			return n[keys[i]] > n[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	b.WriteString(strconv.Itoa(len(states)))
	if len(states) == 1 {
		b.WriteString(" port")
	} else {
		b.WriteString(" ports")
	}
	for i, k := range keys {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", n[k], k)
	}
	return b.String()
}

// fdName names a port's stored file: "p.<port>.<role>", with the bytes
// systemd does not take in a name (control characters, non-ASCII, ':')
// and '%' escaped as %XX.
func fdName(port, role string) string {
	var b strings.Builder
	b.WriteString("p.")
	for i := 0; i < len(port); i++ {
		c := port[i]
		if c < ' ' || c >= 0x7f || c == ':' || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	b.WriteByte('.')
	b.WriteString(role)
	return b.String()
}

// parseFDName is fdName's inverse.
func parseFDName(name string) (port, role string, ok bool) {
	rest, ok := strings.CutPrefix(name, "p.")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		return "", "", false
	}
	esc, role := rest[:i], rest[i+1:]
	switch role {
	case fdMaster, fdSlave, fdRing:
	default:
		return "", "", false
	}
	var b strings.Builder
	for j := 0; j < len(esc); j++ {
		if esc[j] != '%' {
			b.WriteByte(esc[j])
			continue
		}
		if j+2 >= len(esc) {
			return "", "", false
		}
		v, err := strconv.ParseUint(esc[j+1:j+3], 16, 8)
		if err != nil {
			return "", "", false
		}
		b.WriteByte(byte(v))
		j += 2
	}
	if b.Len() == 0 {
		return "", "", false
	}
	return b.String(), role, true
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// reexecRequests delivers the signal that asks for a re-execution; nil
// (never) where there is none.
func (s *fdStore) reexecRequests() <-chan os.Signal {
	if s == nil {
		return nil
	}
	return s.usr2
}

// prepareReexec finds the binary to re-execute (after an upgrade, the new
// file at the same path) and reports whether the daemon should stop for
// it; handOver then re-executes instead of closing the ports.
func (s *fdStore) prepareReexec() bool {
	exe, err := os.Executable()
	if err == nil {
		_, err = os.Stat(exe)
	}
	if err != nil {
		s.log.Error("SIGUSR2: cannot find vsp's binary to re-execute; carrying on", "err", err)
		return false
	}
	s.exe = exe
	s.log.Info("SIGUSR2: re-executing with every port's pty", "binary", exe)
	return true
}

// reexec hands every port over to the next image of this process: the
// ptys' fds (and the outage buffers, in memfds) stay open across execve
// and are named in envInherited. It returns only if the execution failed;
// the ptys then close when the process exits.
func (s *fdStore) reexec(ents map[string]*entry) {
	_ = s.n.Reloading("re-executing " + s.exe)
	var mu sync.Mutex
	var fds []inheritedFD
	pass := func(name string, f *os.File) {
		fd, err := inheritable(f)
		f.Close()
		if err != nil {
			s.log.Error("cannot pass a file to the next image", "fdname", name, "err", err)
			return
		}
		mu.Lock()
		fds = append(fds, inheritedFD{name: name, fd: fd})
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for name, e := range ents {
		if e.port == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, sl, err := e.port.Files()
			if err != nil {
				s.log.Error("cannot keep the port's pty across the re-execution; it hangs up", "port", name, "err", err)
				_ = e.port.Close()
				return
			}
			queued, err := e.port.Handover()
			if err != nil {
				s.log.Warn("port handover", "port", name, "err", err)
			}
			pass(fdName(name, fdMaster), m)
			pass(fdName(name, fdSlave), sl)
			if len(queued) > 0 {
				f, err := memfd("vsp-ring-"+name, queued)
				if err != nil {
					s.log.Error("cannot hand the outage buffer over; its bytes are lost", "port", name, "bytes", len(queued), "err", err)
					return
				}
				pass(fdName(name, fdRing), f)
			}
		}()
	}
	wg.Wait()
	// Ptys kept for files that do not load yet go along as they are.
	for port, k := range s.kept {
		for role, f := range map[string]*os.File{fdMaster: k.master, fdSlave: k.slave, fdRing: k.ring} {
			if f != nil {
				pass(fdName(port, role), f)
			}
		}
	}
	s.log.Info("re-executing", "binary", s.exe, "files", len(fds))
	err := execSelf(s.exe, fds)
	s.log.Error("re-execution failed: every port hangs up as vsp exits", "err", err)
}
