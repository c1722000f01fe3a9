package device

import (
	"fmt"
	"strings"
	"time"
)

// Status is a snapshot of the device, with the same content as the vendor
// manager's status screen; it marshals to JSON for "ezsim status".
type Status struct {
	Model       string       `json:"model"`
	Firmware    string       `json:"firmware"` // "CSE-H25 / 2.0 Rev.A"
	Uptime      string       `json:"uptime"`   // "0 days / 00:14:00.92"
	UptimeSec   float64      `json:"uptime_seconds"`
	Network     NetStatus    `json:"network"`
	Mode        string       `json:"mode"`
	SSL         SSLStatus    `json:"ssl"`
	Ports       []PortStatus `json:"ports"`
	Connections []ConnEntry  `json:"connections"`
	Flash       FlashStatus  `json:"flash"`
}

// NetStatus is the IP4 NETWORK INFORMATION block.
type NetStatus struct {
	MAC     string `json:"mac"`
	IP      string `json:"ip"`
	Mask    string `json:"mask"`
	Gateway string `json:"gateway"`
	DNS     string `json:"dns"`
}

// SSLStatus is the SSL STATUS block plus key and certificate facts.
type SSLStatus struct {
	Enabled     bool   `json:"enabled"`
	State       int    `json:"state"`  // 1 listening, 7 handshake, 8 session up (COM1)
	Cipher      string `json:"cipher"` // RSA_AES_256_CBC_SHA
	Version     string `json:"version,omitempty"`
	KeyBits     int    `json:"key_bits,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	CertCN      string `json:"cert_cn,omitempty"`
	Warning     string `json:"warning,omitempty"` // e.g. CN differs from the device IP
}

// PortStatus is one port's TCP STATE and SERIAL STATUS.
type PortStatus struct {
	Name     string   `json:"name"`
	Enabled  bool     `json:"enabled"`
	TCPState string   `json:"tcp_state"` // LISTEN, ESTABLISHED, CLOSED
	Listen   string   `json:"listen,omitempty"`
	Peer     string   `json:"peer,omitempty"`
	Serial   Serial   `json:"serial"`
	Backend  string   `json:"backend"`
	Buffered int      `json:"event_buffered"`
	Counters Counters `json:"counters"`
}

// ConnEntry is a row of the TCP/IP connection list ("com1", "LISTEN:1470").
type ConnEntry struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// FlashStatus reports the flash file.
type FlashStatus struct {
	Path  string `json:"path,omitempty"`
	Error string `json:"error,omitempty"` // corrupt file: factory defaults in use
}

// Status returns a snapshot of the device.
func (d *Device) Status() Status {
	d.mu.Lock()
	run := d.running.clone()
	up := time.Duration(0)
	if !d.bootAt.IsZero() {
		up = time.Since(d.bootAt)
	}
	st := Status{
		Model:     d.model.name,
		Firmware:  d.model.name + " / " + d.cfg.Firmware,
		Uptime:    formatUptime(up),
		UptimeSec: up.Seconds(),
		Network:   NetStatus{MAC: d.mac.String(), IP: run.IP, Mask: run.Mask, Gateway: run.Gateway, DNS: run.DNS},
		Mode:      run.Mode,
		SSL:       SSLStatus{Enabled: run.SSL},
		Flash:     FlashStatus{Path: d.cfg.Flash},
	}
	if d.flashErr != nil {
		st.Flash.Error = d.flashErr.Error()
	}
	if run.SSL && d.served != nil {
		st.SSL.KeyBits = d.key.N.BitLen()
		st.SSL.Fingerprint = d.servedFP
		st.SSL.CertCN = certCN(d.servedCert)
	}
	st.SSL.Warning = d.certWarningLocked()
	consoleAddr := ""
	if d.boot != nil && d.boot.console != nil {
		consoleAddr = d.boot.console.ln.Addr().String()
	}
	d.mu.Unlock()

	if consoleAddr != "" {
		st.Connections = append(st.Connections, ConnEntry{Name: "tty", State: "LISTEN:" + portOf(consoleAddr)})
	}
	for _, p := range d.ports {
		p.mu.Lock()
		ps := PortStatus{Name: p.name, Enabled: p.enabled, TCPState: "CLOSED", Serial: p.line, Counters: p.Counters()}
		if p.be != nil {
			ps.Backend = p.be.String()
		}
		if p.bound != nil {
			ps.Listen = p.bound.String()
		}
		m := p.mode
		p.mu.Unlock()
		if m != nil {
			ms := m.status()
			ps.TCPState, ps.Peer, ps.Buffered = ms.TCPState, ms.Peer, ms.Buffered
			if p.idx == 0 && run.SSL {
				st.SSL.State, st.SSL.Cipher, st.SSL.Version = ms.SSLState, ms.Cipher, ms.Version
			}
			name := strings.ToLower(p.name)
			if ps.Listen != "" && ms.TCPState != "UDP" {
				st.Connections = append(st.Connections, ConnEntry{Name: name, State: "LISTEN:" + portOf(ps.Listen)})
			}
			local := ms.Local
			if local == "" {
				local = ps.Listen
			}
			switch {
			case ms.TCPState == "UDP":
				st.Connections = append(st.Connections, ConnEntry{Name: name, State: "UDP:" + portOf(ps.Listen) + " " + ms.Peer})
			case ms.Peer != "":
				st.Connections = append(st.Connections, ConnEntry{Name: name, State: "ESTABLISHED:" + portOf(local) + " " + ms.Peer})
			case ms.TCPState == "SYN_SENT":
				st.Connections = append(st.Connections, ConnEntry{Name: name, State: "SYN_SENT"})
			}
		}
		st.Ports = append(st.Ports, ps)
	}
	return st
}

// certWarningLocked returns the certificate warning, if any.
func (d *Device) certWarningLocked() string {
	if d.certDER == nil {
		return ""
	}
	cert, err := parseDER(d.certDER)
	if err != nil {
		return "cert: host certificate unreadable"
	}
	switch {
	case !certMatchesKey(cert, d.key):
		return "cert: host certificate does not match the RSA key, run cert new"
	case certCN(cert) != d.set.IP:
		return fmt.Sprintf("cert: host certificate CN %s differs from the device IP %s, run cert new", certCN(cert), d.set.IP)
	}
	return ""
}

func portOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[i+1:]
	}
	return addr
}

// formatUptime renders "0 days / 00:14:00.92".
func formatUptime(d time.Duration) string {
	cs := int64(d / (10 * time.Millisecond))
	days := cs / (100 * 86400)
	cs -= days * 100 * 86400
	h := cs / (100 * 3600)
	cs -= h * 100 * 3600
	m := cs / (100 * 60)
	cs -= m * 100 * 60
	return fmt.Sprintf("%d days / %02d:%02d:%02d.%02d", days, h, m, cs/100, cs%100)
}

// Text renders the status like the vendor manager's status screen.
func (st Status) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "FIRMWARE VERSION\r\n  %s\r\n\r\n", st.Firmware)
	fmt.Fprintf(&b, "SYSTEM UPTIME\r\n  %s\r\n\r\n", st.Uptime)
	b.WriteString(st.netText() + "\r\n")
	b.WriteString(st.tcpText() + "\r\n")
	if st.SSL.Enabled {
		b.WriteString(st.sslText() + "\r\n")
	}
	b.WriteString(st.sioText() + "\r\n")
	b.WriteString(st.connText())
	if st.Flash.Error != "" {
		fmt.Fprintf(&b, "\r\nFLASH\r\n  %s\r\n", st.Flash.Error)
	}
	return b.String()
}

func (st Status) netText() string {
	n := st.Network
	return fmt.Sprintf("IP4 NETWORK INFORMATION\r\n  MAC Address - %s\r\n  Device IP address - %s\r\n  Subnet mask - %s\r\n  Gateway - %s\r\n  Name Server - %s\r\n",
		n.MAC, n.IP, n.Mask, n.Gateway, n.DNS)
}

func (st Status) tcpText() string {
	var b strings.Builder
	b.WriteString("TCP STATE\r\n")
	for _, p := range st.Ports {
		if !p.Enabled {
			fmt.Fprintf(&b, "  %s - DISABLED\r\n", p.Name)
			continue
		}
		fmt.Fprintf(&b, "  %s - %s\r\n", p.Name, p.TCPState)
	}
	return b.String()
}

func (st Status) sslText() string {
	s := st.SSL
	out := fmt.Sprintf("SSL STATUS\r\n  State - %d\r\n  Cipher - %s\r\n", s.State, s.Cipher)
	if s.Version != "" {
		out += "  Version - " + s.Version + "\r\n"
	}
	if s.KeyBits > 0 {
		out += fmt.Sprintf("  Key - %d bits\r\n  Certificate CN - %s\r\n  Fingerprint - %s\r\n", s.KeyBits, s.CertCN, s.Fingerprint)
	}
	if s.Warning != "" {
		out += "  Warning - " + s.Warning + "\r\n"
	}
	return out
}

func (st Status) sioText() string {
	var b strings.Builder
	b.WriteString("SERIAL STATUS\r\n")
	for _, p := range st.Ports {
		c := p.Counters
		fmt.Fprintf(&b, "  %s sio_rx - %d , net_tx - %d , net_rx - %d , sio_tx - %d\r\n", p.Name, c.SioRx, c.NetTx, c.NetRx, c.SioTx)
		fmt.Fprintf(&b, "  %s %s (%s)\r\n", p.Name, p.Serial.String(), p.Backend)
	}
	return b.String()
}

func (st Status) connText() string {
	var b strings.Builder
	b.WriteString("TCP/IP Connection\r\n  Name  TCP State\r\n")
	for _, c := range st.Connections {
		fmt.Fprintf(&b, "  %-5s %s\r\n", c.Name, c.State)
	}
	return b.String()
}
