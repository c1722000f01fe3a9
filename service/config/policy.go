package config

// policy checks the connection policy (connect, release_after) and the
// transport (transport, datagram_size) against each other and the rest of
// the port.
func (v *validator) policy(q *Port) {
	v.enum("connect", q.Connect, ConnectAlways, ConnectOnOpen)
	if q.Connect == ConnectOnOpen && q.Listen != "" {
		v.errorf("connect", ErrConflict, "\"on-open\" cannot be used with listen%s: in listen mode the device connects to vsp, so vsp has nothing to dial when the application opens the tty", v.at("listen"))
	}
	v.durRange("release_after", q.ReleaseAfter, 0, MaxReleaseAfter)
	if q.ReleaseAfter != 0 && q.Connect != ConnectOnOpen {
		v.errorf("release_after", ErrConflict, "only with connect = \"on-open\": it is how long the device session outlives the last close of the tty")
	}
	v.enum("transport", q.Transport, TransportTCP, TransportUDP)
	if q.Transport != TransportUDP {
		if q.DatagramSize != 0 {
			v.errorf("datagram_size", ErrConflict, "only with transport = \"udp\": it is the largest datagram sent to the device")
		}
		return
	}
	if q.TLS != TLSOff {
		v.errorf("tls", ErrConflict, "%q cannot be used with transport = \"udp\"%s: the ezTCP cannot use SSL in U2S (UDP) mode (ezTCP SSL application note); set tls = \"off\" or use TCP", q.TLS, v.at("transport"))
	}
	if q.RFC2217 {
		v.errorf("rfc2217", ErrConflict, "cannot be used with transport = \"udp\"%s: RFC 2217 is a Telnet option on a TCP session", v.at("transport"))
	}
	if q.Listen != "" {
		v.errorf("listen", ErrConflict, "cannot be used with transport = \"udp\"%s: a U2S device is addressed with device = \"HOST:PORT\"", v.at("transport"))
	}
	if len(q.Devices) > 1 {
		v.errorf("devices", ErrConflict, "a failover list cannot be used with transport = \"udp\"%s: UDP has no session whose loss would show the primary is gone; give one device", v.at("transport"))
	}
	v.intRange("datagram_size", q.DatagramSize, 1, MaxDatagramSize)
}
