package service

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/service/monitor"
)

// hubs returns the observers' hubs of the named running ports, or of every
// running port when names is empty; missing lists the names that have no
// running port.
func (d *Daemon) hubs(names []string) (hubs []*monitor.Hub, missing []string) {
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
	return hubs, missing
}

// serveMonitor is GET /v1/monitor[?port=NAME...]: the records of the named
// ports (all running ports when none is named), as they happen, one JSON
// object a line (monitor.Record), until the client goes or the server
// shuts down (stop), or every port it watches is deleted (a "gone" record
// each). A client that reads too slowly loses records and gets
// a "dropped" record saying how many; the ports never wait for it.
func (d *Daemon) serveMonitor(stop context.Context) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hubs, missing := d.hubs(r.URL.Query()["port"])
		if len(missing) > 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no running port " + quoteAll(missing)})
			return
		}
		if len(hubs) == 0 {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no running ports"})
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(stop, cancel)()
		// One queue for every port: each port's records go through its
		// own bounded queue (Sub) first, which is where a slow client's
		// losses are counted.
		merged := make(chan monitor.Record, 16)
		var wg sync.WaitGroup
		for _, h := range hubs {
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
		}
		defer wg.Wait()
		defer cancel()
		rc := http.NewResponseController(w)
		_ = rc.SetWriteDeadline(time.Time{}) // a stream has no end to wait for
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		enc := monitor.Encoder{Format: monitor.FormatJSON}
		var buf []byte
		for _, h := range hubs { // subscribed: from here on nothing is missed
			buf = enc.Append(buf, monitor.Record{Time: time.Now(), Port: h.Port(), Kind: monitor.KindWatching,
				Detail: "every byte and event of " + h.Port() + " from now on"})
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		_ = rc.Flush()
		gone := 0
		for {
			select {
			case rec := <-merged:
				buf = enc.Append(buf[:0], rec)
				if _, err := w.Write(buf); err != nil {
					return
				}
				if rec.Kind == monitor.KindGone {
					if gone++; gone == len(hubs) { // nothing left to watch
						_ = rc.Flush()
						return
					}
				}
				if len(merged) == 0 {
					if err := rc.Flush(); err != nil {
						return
					}
				}
			case <-ctx.Done():
				return
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
