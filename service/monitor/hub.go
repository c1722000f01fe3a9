package monitor

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// QueueLen is how many records an observer's queue holds. An observer that
// falls further behind loses records, and is told how many (KindDropped):
// the byte path never waits for it.
const QueueLen = 256

// Hub hands a port's records to its observers. A port has one Hub for its
// whole life (it survives Port.Restart). With no observer, Data and Event
// cost one atomic load: the byte path does not slow down for a feature
// nobody uses.
type Hub struct {
	port   string
	active atomic.Bool // there is at least one observer

	mu   sync.Mutex // orders records: each observer sees them in one order
	subs []*Sub

	gone     chan struct{} // closed by Close: the port is no more
	goneOnce sync.Once
}

// ErrGone is what Sub.Next returns, once the queue is empty, for a port
// that was deleted (Hub.Close).
var ErrGone = errors.New("monitor: the port was deleted")

// NewHub returns the hub of the port called port.
func NewHub(port string) *Hub { return &Hub{port: port, gone: make(chan struct{})} }

// Close says the port is gone for good: its observers get what is queued,
// then ErrGone. It is idempotent.
func (h *Hub) Close() { h.goneOnce.Do(func() { close(h.gone) }) }

// Gone reports whether the port was deleted (Close).
func (h *Hub) Gone() bool {
	select {
	case <-h.gone:
		return true
	default:
		return false
	}
}

// Port returns the name of the hub's port.
func (h *Hub) Port() string { return h.port }

// Active reports whether anyone observes the port. A nil Hub has no
// observers.
func (h *Hub) Active() bool { return h != nil && h.active.Load() }

// Data records p, which went in direction dir (ToDevice or ToApp). p is
// copied only when an observer has room for it: observers that have all
// fallen behind cost the byte path no copy, only the count of what they
// miss.
func (h *Hub) Data(dir string, p []byte) {
	if !h.Active() || len(p) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	room := false
	for _, s := range h.subs {
		room = room || len(s.ch) < cap(s.ch)
	}
	if !room {
		for _, s := range h.subs {
			s.lostRecords++
			s.lostBytes += uint64(len(p))
		}
		return
	}
	h.publishLocked(Record{Kind: KindData, Dir: dir, Data: bytes.Clone(p)})
}

// Event records an event of the port; n is its byte count, if it has one.
func (h *Hub) Event(k Kind, n uint64, detail string) {
	if !h.Active() {
		return
	}
	h.publish(Record{Kind: k, Bytes: n, Detail: detail})
}

func (h *Hub) publish(r Record) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.publishLocked(r)
}

func (h *Hub) publishLocked(r Record) {
	r.Time = time.Now()
	r.Port = h.port
	for _, s := range h.subs {
		s.offer(r)
	}
}

// Subscribe adds an observer. Its records arrive on Sub.C until
// Sub.Close.
func (h *Hub) Subscribe() *Sub {
	s := &Sub{h: h, ch: make(chan Record, QueueLen)}
	h.mu.Lock()
	h.subs = append(h.subs, s)
	h.active.Store(true)
	h.mu.Unlock()
	return s
}

// Sub is one observer of a Hub.
type Sub struct {
	h  *Hub
	ch chan Record

	// What the observer missed since its last record (guarded by h.mu).
	lostBytes, lostRecords uint64
}

// Next returns the next record, waiting for one until ctx ends. A
// KindDropped record stands for those the observer was too slow to take,
// in their place: it comes as soon as the observer has caught up, even if
// the port is quiet by then.
func (s *Sub) Next(ctx context.Context) (Record, error) {
	select {
	case r := <-s.ch:
		return r, nil
	default:
	}
	if r, ok := s.takeLoss(); ok {
		return r, nil
	}
	select {
	case r := <-s.ch:
		return r, nil
	case <-ctx.Done():
		return Record{}, ctx.Err()
	case <-s.h.gone:
		select { // the port may have recorded more before it went
		case r := <-s.ch:
			return r, nil
		default:
		}
		if r, ok := s.takeLoss(); ok {
			return r, nil
		}
		return Record{}, ErrGone
	}
}

// takeLoss returns, once the queue is empty, the record of what the
// observer missed. Nothing was queued after the loss (offer puts the
// KindDropped record first), so it is in its place.
func (s *Sub) takeLoss() (Record, bool) {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.lostRecords == 0 || len(s.ch) > 0 {
		return Record{}, false
	}
	r := Record{Time: time.Now(), Port: h.port, Kind: KindDropped, Bytes: s.lostBytes, Records: s.lostRecords}
	s.lostBytes, s.lostRecords = 0, 0
	return r, true
}

// Port returns the name of the observed port.
func (s *Sub) Port() string { return s.h.port }

// offer queues r without ever waiting; h.mu is held.
func (s *Sub) offer(r Record) {
	if s.lostRecords > 0 {
		d := Record{Time: r.Time, Port: r.Port, Kind: KindDropped, Bytes: s.lostBytes, Records: s.lostRecords}
		select {
		case s.ch <- d:
			s.lostBytes, s.lostRecords = 0, 0
		default:
			s.miss(r)
			return
		}
	}
	select {
	case s.ch <- r:
	default:
		s.miss(r)
	}
}

func (s *Sub) miss(r Record) {
	s.lostRecords++
	s.lostBytes += uint64(len(r.Data))
}

// Close removes the observer; what its queue holds stays readable. It is
// idempotent.
func (s *Sub) Close() {
	h := s.h
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, o := range h.subs {
		if o == s {
			h.subs = append(h.subs[:i:i], h.subs[i+1:]...)
			break
		}
	}
	h.active.Store(len(h.subs) > 0)
}
