package service

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/service/monitor"
)

// MaxMonitors is how many monitor streams the daemon serves at once; one
// more is refused (503) rather than letting a runaway script pile up
// goroutines and queues (each stream holds QueueLen records per port).
const MaxMonitors = 64

// hubs returns the observers' hubs of the named running ports, or of every
// running port when names is empty; missing lists the names that have no
// running port. started is closed when another port starts running.
func (d *Daemon) hubs(names []string) (hubs []*monitor.Hub, missing []string, started <-chan struct{}) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(names) == 0 {
		for n := range d.ports {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	for _, n := range names {
		e := d.ports[n]
		if e == nil || e.port == nil {
			missing = append(missing, n)
			continue
		}
		hubs = append(hubs, e.port.Hub())
	}
	return hubs, missing, d.started
}

// serveMonitor is GET /v1/monitor[?port=NAME...]: the records of the named
// ports, as they happen, one JSON object a line (monitor.Record), until
// the client goes or the server shuts down (stop), or every port it
// watches is deleted (a "gone" record each). With no name it watches
// every port: those running now and those that start later (a port
// deleted and created again is watched again), until the client goes or
// the server shuts down. A client that reads too slowly loses records and
// gets a "dropped" record saying how many; the ports never wait for it.
// At most MaxMonitors streams run at once.
func (d *Daemon) serveMonitor(stop context.Context) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		names := r.URL.Query()["port"]
		every := len(names) == 0
		hubs, missing, started := d.hubs(names)
		if len(missing) > 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no running port " + quoteAll(missing)})
			return
		}
		if n := d.monitors.Add(1); n > MaxMonitors {
			d.monitors.Add(-1)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{
				"error": fmt.Sprintf("too many monitors: %d streams are open, the most the daemon serves at once; end one", MaxMonitors)})
			return
		}
		defer d.monitors.Add(-1)
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
		// One queue for every port: each port's records go through its
		// own bounded queue (Sub) first, which is where a slow client's
		// losses are counted.
		merged := make(chan monitor.Record, 16)
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		watched := map[*monitor.Hub]bool{}
		var buf []byte
		enc := monitor.Encoder{Format: monitor.FormatJSON}
		// watch subscribes to the hubs not watched yet and queues their
		// "watching" records: from then on nothing of theirs is missed.
		watch := func(hubs []*monitor.Hub) {
			for _, h := range hubs {
				if watched[h] {
					continue
				}
				watched[h] = true
				sub := h.Subscribe()
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sub.Close()
					for {
						rec, err := sub.Next(ctx)
						if errors.Is(err, monitor.ErrGone) {
							rec = monitor.Record{Time: time.Now(), Port: sub.Port(), Kind: monitor.KindGone, Detail: "the port was deleted"}
						} else if err != nil {
							return
						}
						select {
						case merged <- rec:
						case <-ctx.Done():
							return
						}
						if rec.Kind == monitor.KindGone {
							return
						}
					}
				}()
				buf = enc.Append(buf, monitor.Record{Time: time.Now(), Port: h.Port(), Kind: monitor.KindWatching,
					Detail: "every byte and event of " + h.Port() + " from now on"})
			}
		}
		watch(hubs)
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{}) // a stream has no end to wait for
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		if _, err := w.Write(buf); err != nil {
			return
		}
		_ = rc.Flush()
		if !every {
			started = nil // the named ports only
		}
		for {
			buf = buf[:0]
			select {
			case rec := <-merged:
				buf = enc.Append(buf, rec)
				if rec.Kind == monitor.KindGone {
					for h := range watched { // its goroutine has ended
						if h.Port() == rec.Port && h.Gone() {
							delete(watched, h)
						}
					}
				}
			case <-started:
				hubs, _, started = d.hubs(nil)
				watch(hubs)
			case <-ctx.Done():
				return
			}
			if _, err := w.Write(buf); err != nil {
				return
			}
			if !every && len(watched) == 0 { // nothing left to watch
				_ = rc.Flush()
				return
			}
			if len(merged) == 0 {
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}
	}
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}
