//go:build linux

package pty

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenWatcher tracks application opens and closes of many ports' slave
// devices with one inotify instance and one goroutine. Without one, each
// Port uses an inotify instance of its own, and the kernel allows only 128
// per user by default (fs.inotify.max_user_instances): a daemon with more
// ports than that must share a watcher (Config.Watcher).
//
// Each open and close of a slave is counted from the watch on its device
// node. inotify merges an event with the one queued before it when the two
// are identical (same watch, mask and name: fs/notify/inotify/
// inotify_fsnotify.c, inotify_merge), so two opens (or closes) of one
// slave made before the watcher reads would count once. The watcher
// therefore also watches the slave's directory (/dev/pts) in the same
// inotify instance: the kernel reports each open and close twice, to the
// directory's watch (with the name) and then to the node's (fsnotify.c,
// fsnotify_handle_event), so two consecutive events of the node's watch
// never follow each other in the queue and are never merged. The
// directory's events are read and dropped. The count is exact at O(1) per
// event, whatever the number of ports or processes, except when two
// processes open (or close) the same slave at the same instant on two
// CPUs: the four events may interleave so that both pairs merge (see
// LIMITS.md).
//
// Close it after every Port that uses it.
type OpenWatcher struct {
	log  *slog.Logger
	file *os.File // inotify instance, non-blocking, in Go's poller

	mu    sync.Mutex
	ports map[int]*Port // by watch descriptor

	closeOnce sync.Once
	done      chan struct{}
	closeErr  error
}

// NewOpenWatcher starts a watcher. log may be nil.
func NewOpenWatcher(log *slog.Logger) (*OpenWatcher, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("pty: inotify: %w", err)
	}
	w := &OpenWatcher{
		log:   log,
		file:  os.NewFile(uintptr(fd), "inotify"),
		ports: map[int]*Port{},
		done:  make(chan struct{}),
	}
	go w.run()
	return w, nil
}

// add watches p's slave node and returns the watch descriptor.
func (w *OpenWatcher) add(p *Port) (int, error) {
	var wd int
	var err error
	rc, cerr := w.file.SyscallConn()
	if cerr != nil {
		return 0, fmt.Errorf("pty: inotify: %w", cerr)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if cerr := rc.Control(func(fd uintptr) {
		// The directory's watch is shared by all its slaves and stays until
		// Close; adding it again returns the same watch.
		if _, err = unix.InotifyAddWatch(int(fd), filepath.Dir(p.name), unix.IN_OPEN|unix.IN_CLOSE|unix.IN_ONLYDIR); err != nil {
			err = fmt.Errorf("pty: inotify watch %s: %w", filepath.Dir(p.name), err)
			return
		}
		if wd, err = unix.InotifyAddWatch(int(fd), p.name, unix.IN_OPEN|unix.IN_CLOSE); err != nil {
			err = fmt.Errorf("pty: inotify watch %s: %w", p.name, err)
		}
	}); cerr != nil {
		return 0, fmt.Errorf("pty: inotify: %w", cerr)
	}
	if err != nil {
		return 0, err
	}
	w.ports[wd] = p
	return wd, nil
}

// remove stops watching for the port with watch descriptor wd.
func (w *OpenWatcher) remove(wd int, p *Port) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ports[wd] != p {
		return
	}
	delete(w.ports, wd)
	rc, err := w.file.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_, _ = unix.InotifyRmWatch(int(fd), uint32(wd))
	})
}

func (w *OpenWatcher) run() {
	defer close(w.done)
	var buf [4096]byte
	for {
		n, err := w.file.Read(buf[:])
		if err != nil {
			if !errors.Is(err, os.ErrClosed) {
				w.log.Warn("pty: inotify read failed; open/close tracking stops", "err", err)
			}
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				w.log.Warn("pty: inotify queue overflow; a port's AppOpen may be wrong until its application reopens it")
				continue
			}
			w.mu.Lock()
			p := w.ports[int(ev.Wd)] // nil for the directories' watches
			if ev.Mask&unix.IN_IGNORED != 0 {
				delete(w.ports, int(ev.Wd))
			}
			w.mu.Unlock()
			if p != nil {
				p.openEvent(ev.Mask)
			}
		}
	}
}

// Close stops the watcher and waits for its goroutine. It is idempotent.
func (w *OpenWatcher) Close() error {
	w.closeOnce.Do(func() {
		if err := w.file.Close(); err != nil {
			w.closeErr = fmt.Errorf("pty: %w", err)
		}
		<-w.done
	})
	return w.closeErr
}
