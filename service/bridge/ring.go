package bridge

// ring is a fixed-capacity FIFO byte queue: the outage buffer that holds what
// the application wrote while the link was down. It is not goroutine-safe;
// the bridge guards it with its mutex.
//
// Its memory is taken at the first Write and given back whenever it drains:
// most ports never have an outage with data waiting, and 1000 idle ports
// would otherwise hold 64 MiB of empty buffers (docs/performance.md).
type ring struct {
	buf  []byte // nil while empty
	size int    // capacity
	head int    // index of the first queued byte
	n    int    // number of queued bytes
}

func newRing(size int) *ring { return &ring{size: size} }

func (r *ring) Len() int  { return r.n }
func (r *ring) Free() int { return r.size - r.n }
func (r *ring) Cap() int  { return r.size }

// Write appends as much of p as fits and returns how much it took.
func (r *ring) Write(p []byte) int {
	if r.buf == nil && len(p) > 0 && r.size > 0 {
		r.buf = make([]byte, r.size)
	}
	total := 0
	for len(p) > 0 && r.n < len(r.buf) {
		tail := (r.head + r.n) % len(r.buf)
		end := len(r.buf)
		if tail < r.head {
			end = r.head
		}
		c := copy(r.buf[tail:end], p)
		r.n += c
		p = p[c:]
		total += c
	}
	return total
}

// Peek returns the longest contiguous run of queued bytes, without removing
// it. The slice is valid until the next Write or Discard.
func (r *ring) Peek() []byte {
	end := r.head + r.n
	if end > len(r.buf) {
		end = len(r.buf)
	}
	return r.buf[r.head:end]
}

// Discard removes the first n queued bytes.
func (r *ring) Discard(n int) {
	if n > r.n {
		n = r.n
	}
	if n <= 0 {
		return
	}
	r.head = (r.head + n) % len(r.buf)
	r.n -= n
	if r.n == 0 {
		r.head = 0
		r.buf = nil
	}
}
