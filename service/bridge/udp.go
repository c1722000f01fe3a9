package bridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vsp-dev/vsp/tlsconn"
)

// Transports (PortSpec.Transport).
const (
	TransportTCP = "tcp" // a TCP or TLS session to a device in T2S mode (also "")
	TransportUDP = "udp" // datagrams to and from a device in U2S mode
)

// DefaultDatagramSize is the largest datagram sent to a U2S device when
// none is configured: what one Ethernet frame carries (1500 - 20 - 8).
const DefaultDatagramSize = 1472

// maxDatagram is the largest UDP payload over IPv4: every datagram from the
// device is received whole.
const maxDatagram = 65507

// UDPStats are a U2S port's datagram counts, each way. They belong to the
// port (kept across links and reloads, like the byte counts).
type UDPStats struct {
	Local             string `json:"local,omitempty"`             // the host's address the device sends to
	MaxDatagram       int    `json:"max_datagram"`                // largest datagram sent to the device
	ToDevice          uint64 `json:"datagrams_to_device"`         // datagrams sent
	FromDevice        uint64 `json:"datagrams_from_device"`       // datagrams from the device, written to the tty
	DroppedToDevice   uint64 `json:"dropped_to_device"`           // datagrams the host could not send (counted, not retried)
	DroppedFromDevice uint64 `json:"dropped_from_device"`         // datagrams from any other address than the device's
	LastDroppedFrom   string `json:"last_dropped_from,omitempty"` // where the last of them came from
}

// udpCounts are a U2S port's datagram counts; they live in the port's
// counters, so a reload keeps them.
type udpCounts struct {
	toDevice, fromDevice, droppedTo, droppedFrom atomic.Uint64
}

// udpLink dials a U2S port's socket and counts its datagrams.
type udpLink struct {
	device string // host:port as configured
	size   int    // DatagramSize
	log    *slog.Logger
	*udpCounts

	mu          sync.Mutex
	local       string
	lastDropped string
}

func (u *udpLink) stats() *UDPStats {
	u.mu.Lock()
	defer u.mu.Unlock()
	return &UDPStats{
		Local: u.local, MaxDatagram: u.size,
		ToDevice: u.toDevice.Load(), FromDevice: u.fromDevice.Load(),
		DroppedToDevice: u.droppedTo.Load(), DroppedFromDevice: u.droppedFrom.Load(),
		LastDroppedFrom: u.lastDropped,
	}
}

// dial is the Dialer of a U2S port: an unconnected UDP socket that sends
// to the device's address and accepts datagrams only from it.
//
// Unconnected, not connect(2)ed: a connected UDP socket has the kernel
// drop datagrams from other addresses silently, and these must be counted
// (a second device, or a device whose address changed, would otherwise be
// invisible); and a connected socket turns an ICMP port-unreachable into
// ECONNREFUSED on the next read, which is no reason to take a link down
// that has no session.
func (u *udpLink) dial(ctx context.Context) (net.Conn, tlsconn.Info, error) {
	host, port, err := net.SplitHostPort(u.device)
	if err != nil {
		return nil, tlsconn.Info{}, fmt.Errorf("bridge: udp device %q: %w", u.device, err)
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return nil, tlsconn.Info{}, fmt.Errorf("bridge: udp device %q: %w", u.device, errors.Join(err, errors.New("no address")))
	}
	pn, err := net.LookupPort("udp", port)
	if err != nil {
		return nil, tlsconn.Info{}, fmt.Errorf("bridge: udp device %q: %w", u.device, err)
	}
	dev := netip.AddrPortFrom(ips[0].Unmap(), uint16(pn))
	network := "udp4"
	if dev.Addr().Is6() {
		network = "udp6"
	}
	pc, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, tlsconn.Info{}, fmt.Errorf("bridge: udp socket for %s: %w", u.device, err)
	}
	u.mu.Lock()
	u.local = pc.LocalAddr().String()
	u.mu.Unlock()
	return &udpConn{UDPConn: pc, link: u, device: dev, rbuf: make([]byte, maxDatagram)},
		tlsconn.Info{Addr: dev.String()}, nil
}

// udpConn is a U2S link as the bridge sees it: a net.Conn whose Write
// sends datagrams of at most link.size bytes to the device (one per pty
// read when it fits) and whose Read returns datagrams from the device,
// dropping and counting any from another address.
type udpConn struct {
	*net.UDPConn
	link   *udpLink
	device netip.AddrPort

	rbuf    []byte // one datagram; only the bridge's reader uses it
	pending []byte // the rest of a datagram larger than the caller's buffer
}

func (c *udpConn) Write(p []byte) (int, error) {
	for off := 0; off < len(p); {
		n := min(len(p)-off, c.link.size)
		if _, err := c.WriteToUDPAddrPort(p[off:off+n], c.device); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return off, err
			}
			// No session to lose: the datagram is lost, counted, and
			// the link stays (UDP promises no delivery).
			c.link.droppedTo.Add(1)
			c.link.log.Warn("datagram to the device not sent", "bytes", n, "err", err)
		} else {
			c.link.toDevice.Add(1)
		}
		off += n
	}
	return len(p), nil
}

func (c *udpConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	for {
		n, from, err := c.ReadFromUDPAddrPort(c.rbuf)
		if err != nil {
			return 0, err
		}
		if netip.AddrPortFrom(from.Addr().Unmap(), from.Port()) != c.device {
			c.link.droppedFrom.Add(1)
			c.link.mu.Lock()
			c.link.lastDropped = from.String()
			c.link.mu.Unlock()
			continue
		}
		c.link.fromDevice.Add(1)
		if n == 0 {
			continue
		}
		k := copy(p, c.rbuf[:n])
		c.pending = c.rbuf[k:n]
		return k, nil
	}
}

// SetDeadline and friends come from *net.UDPConn; udpConn is a net.Conn.
var _ net.Conn = (*udpConn)(nil)

// RemoteAddr is the device's address (the socket is not connected).
func (c *udpConn) RemoteAddr() net.Addr { return net.UDPAddrFromAddrPort(c.device) }

// validateUDP refuses what a U2S device cannot do.
func (s *PortSpec) validateUDP() error {
	switch s.Transport {
	case "", TransportTCP:
		return nil
	case TransportUDP:
	default:
		return fmt.Errorf("bridge: port %s: transport %q: want tcp or udp", s.Name, s.Transport)
	}
	if s.Link.Profile != "" && s.Link.Profile != tlsconn.ProfileOff {
		return fmt.Errorf("bridge: port %s: TLS cannot be used with UDP: the ezTCP cannot use SSL in U2S mode (ezTCP SSL application note)", s.Name)
	}
	if s.RFC2217 {
		return fmt.Errorf("bridge: port %s: RFC 2217 cannot be used with UDP: it is a Telnet option on a TCP session", s.Name)
	}
	if len(s.Devices) != 1 {
		return fmt.Errorf("bridge: port %s: UDP takes exactly one device address", s.Name)
	}
	if s.DatagramSize < 0 || s.DatagramSize > maxDatagram {
		return fmt.Errorf("bridge: port %s: datagram size %d: want 1..%d", s.Name, s.DatagramSize, maxDatagram)
	}
	return nil
}

// startUDP gives a U2S port its datagram link, counting on in the port's
// counters (kept by Restart).
func (p *Port) startUDP() {
	if p.spec.Transport != TransportUDP {
		return
	}
	size := p.spec.DatagramSize
	if size == 0 {
		size = DefaultDatagramSize
	}
	p.udp = &udpLink{device: p.spec.Devices[0], size: size, log: p.log, udpCounts: &p.bridge.counters.udp}
}
