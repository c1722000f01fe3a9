package bridge

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"
)

// Faults: why dials fail in a way that waiting will not fix, reported in
// Stats.Fault. The bridge keeps redialing with backoff all the same, so a
// port recovers by itself once an administrator fixes the cause (accepts
// the new certificate, changes the device); `vsp create` stops waiting.
const (
	FaultCertMismatch = "cert-mismatch" // the certificate does not match the pin
	FaultCertChanged  = "cert-changed"  // tofu: not the certificate first seen
	FaultUntrusted    = "untrusted"     // ca: the chain does not verify
	FaultWeakKey      = "weak-key"      // the device's key is below the profile's minimum
	FaultHandshake    = "tls-handshake" // no TLS handshake: a plain TCP device, or another protocol
)

// faultOf classifies a dial error: a Fault, or "" for errors that may pass
// (refused, timed out, unreachable, busy).
func faultOf(err error) string {
	var pm *tlsconn.PinMismatchError
	var cc *tlsconn.CertChangedError
	switch {
	case errors.As(err, &pm):
		return FaultCertMismatch
	case errors.As(err, &cc):
		return FaultCertChanged
	case errors.Is(err, tlsconn.ErrUntrustedCert):
		return FaultUntrusted
	case errors.Is(err, tlsconn.ErrWeakKey), errors.Is(err, tlsconn.ErrRSAKeyRefused):
		return FaultWeakKey
	case errors.Is(err, tlsconn.ErrHandshake) && !isPeerClose(err) && !isTimeout(err):
		return FaultHandshake
	}
	return ""
}

// isTimeout reports a timed-out dial or handshake: a slow device, which
// may pass.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// faultStates are the link states shown for faults that refuse a
// certificate; the other faults show as StateBackoff.
var faultStates = map[string]string{
	FaultCertMismatch: StateCertMismatch,
	FaultCertChanged:  StateCertChange,
}

// lossWindow: bytes handed to a link this long before its last
// acknowledgement from the device are still counted as possibly lost when
// the link dies, because the device may have acknowledged them without
// having put them on its serial line yet (a device that reboots loses
// them).
const lossWindow = time.Second

// markEvery is the resolution of a linkMeter's history.
const markEvery = 50 * time.Millisecond

// keepMarks bounds a linkMeter's history; bytes handed before it count as
// possibly lost when the window reaches back that far (conservative).
const keepMarks = 10 * time.Minute

// linkMeter counts the application bytes handed to one link, with enough
// history to tell, when the link dies, how many of them may not have
// reached the device. It is safe for concurrent use.
type linkMeter struct {
	mu     sync.Mutex
	handed uint64 // bytes accepted by conn.Write
	base   uint64 // handed total before the oldest mark
	marks  []mark
	dead   bool
}

type mark struct {
	t     time.Time
	total uint64 // handed, as of t
}

// add records n bytes accepted by the link. It returns false when the link
// was already declared dead: the caller then counts them as possibly lost.
func (m *linkMeter) add(n int, now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead {
		return false
	}
	m.handed += uint64(n)
	if k := len(m.marks); k > 0 && now.Sub(m.marks[k-1].t) < markEvery {
		m.marks[k-1].total = m.handed
	} else {
		m.marks = append(m.marks, mark{t: now, total: m.handed})
	}
	for len(m.marks) > 1 && now.Sub(m.marks[0].t) > keepMarks {
		m.base = m.marks[0].total
		m.marks = m.marks[1:]
	}
	return true
}

// finish declares the link dead and returns how many of the bytes handed to
// it are possibly lost: those the device's TCP never acknowledged (q), and
// those handed from lossWindow before the last acknowledgement on, which the
// device may have acknowledged without putting them on its serial line yet.
// Without kernel information (q.OK false) it assumes the last
// acknowledgement was keepMarks ago, which counts nearly everything.
//
// An orderly close (FIN) from the device earns no exemption: a device
// process that crashes closes its sockets with a FIN too, losing what it
// had read but not yet written to its serial line. Over-counting is the
// price of never losing bytes silently.
func (m *linkMeter) finish(q tlsconn.SendQueue, now time.Time) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dead {
		return 0
	}
	m.dead = true
	since := q.SinceAck
	if !q.OK {
		since = keepMarks
	}
	cutoff := now.Add(-since - lossWindow)
	before := m.base // handed total at cutoff
	for _, mk := range m.marks {
		if mk.t.After(cutoff) {
			break
		}
		before = mk.total
	}
	lost := max(m.handed-before, uint64(max(q.Unacked, 0)))
	return min(lost, m.handed)
}

// Drop takes the current link down (if any) for reason; the bridge redials
// as after any other failure. Bytes in flight on the dropped link are
// counted as possibly lost.
func (b *Bridge) Drop(reason error) {
	b.mu.Lock()
	conn := b.conn
	b.mu.Unlock()
	if conn != nil {
		b.linkFailed(conn, reason)
	}
}

// DropIf drops the link like Drop, but only if it is still the one that
// was current when the caller's Stats snapshot counted connects links:
// a decision taken on an older link must not cut a newer, healthy one.
func (b *Bridge) DropIf(connects uint64, reason error) bool {
	b.mu.Lock()
	conn := b.conn
	same := b.connects.Load() == connects
	b.mu.Unlock()
	if conn == nil || !same {
		return false
	}
	b.linkFailed(conn, reason)
	return true
}
