package service

import (
	"fmt"
	"path/filepath"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
	"github.com/vsp-dev/vsp/service/monitor"
	"github.com/vsp-dev/vsp/tlsconn"
)

// SpecFromConfig turns a validated port file into what bridge.StartPort runs.
// Of paths, LinkDir is where bare link names go ("" =
// config.DefaultPaths().LinkDir), KnownDevices the trust-on-first-use
// file, next to which listening ports keep their key and certificate, and
// Socket the control socket, whose directory holds the link locks ("" =
// config.DefaultPaths().Socket).
func SpecFromConfig(p *config.Port, paths config.Paths) (bridge.PortSpec, error) {
	linkDir := paths.LinkDir
	if linkDir == "" {
		linkDir = config.DefaultPaths().LinkDir
	}
	// The link locks live in the runtime directory, the control
	// socket's, so that the daemon, vsp run and vsp demo of one user
	// see each other's (pty.Config.LockDir).
	socket := paths.Socket
	if socket == "" {
		socket = config.DefaultPaths().Socket
	}
	stateDir := filepath.Dir(socket)
	// A Port built in code may have zero fields: they mean the default
	// (for tls, one that depends on transport).
	q := *p
	q.SetDefaults()
	p = &q
	prof, err := tlsconn.ParseProfile(p.TLS)
	if err != nil {
		return bridge.PortSpec{}, fmt.Errorf("service: %s: %w", p.File, err)
	}
	// config parses stale_data (one enum, one wording); the bridge gets
	// its typed value.
	stale, ok := map[string]bridge.StalePolicy{config.StaleKeep: bridge.StaleKeep, config.StaleDiscard: bridge.StaleDiscard}[p.StaleData]
	if !ok {
		return bridge.PortSpec{}, fmt.Errorf("service: %s: stale_data %q: not validated", p.File, p.StaleData)
	}
	pin := p.Trust.Pin
	if pin != "" { // Parse normalises; a Port built in code may hold any accepted spelling
		if pin, err = tlsconn.ParsePin(pin); err != nil {
			return bridge.PortSpec{}, fmt.Errorf("service: %s: %w", p.File, err)
		}
	}
	s := bridge.PortSpec{
		Name:    p.Name,
		Source:  p.File,
		Devices: p.Addrs(),
		PTY: pty.Config{
			Link:    p.LinkPath(linkDir),
			LockDir: stateDir,
			Name:    p.Name,
			Owner:   p.TTY.Owner,
			Group:   p.TTY.Group,
			Mode:    p.TTY.Mode,
		},
		Link: tlsconn.Config{
			Profile:            prof,
			Pin:                pin,
			Trust:              p.Trust.Mode,
			InsecureSkipVerify: p.Trust.Mode == config.TrustInsecure,
			KnownDevices:       paths.KnownDevices,
			CAFile:             p.CAFilePath(),
			ServerName:         p.Trust.ServerName,
			DialTimeout:        p.Net.DialTimeout,
			KeepAlive: tlsconn.KeepAlive{
				Idle:        p.Net.KeepAliveIdle,
				Interval:    p.Net.KeepAliveInterval,
				Count:       p.Net.KeepAliveCount,
				UserTimeout: p.Net.UserTimeout,
			},
		},
		Bridge: bridge.BridgeConfig{
			Buffer:       int(p.Buffer),
			Backoff:      tlsconn.Backoff{Min: p.Net.BackoffMin, Max: p.Net.BackoffMax},
			StaleData:    stale,
			Fix:          newFixer(p),
			OnOpen:       p.Connect == config.ConnectOnOpen,
			ReleaseAfter: p.ReleaseAfter,
		},
		Serial: bridge.SerialSettings{
			Baud:     uint32(p.Serial.Baud),
			DataBits: p.Serial.DataBits,
			Parity:   p.Serial.Parity,
			StopBits: p.Serial.StopBits,
			Flow:     p.Serial.Flow,
		},
		StrictSerial: p.StrictSerial,
		RFC2217:      p.RFC2217,
		Transport:    p.Transport,
		DatagramSize: p.DatagramSize,
	}
	if p.Trace.File != "" {
		s.Trace = monitor.TraceConfig{File: p.Trace.File, MaxSize: int64(p.Trace.MaxSize),
			MaxFiles: p.Trace.MaxFiles, Format: monitor.Format(p.Trace.Format)}
	}
	if p.Listen != "" { // the device connects to us (listen.go)
		stateDir := filepath.Dir(p.File) // the persistent state directory, for the listen certificate
		if paths.KnownDevices != "" {
			stateDir = filepath.Dir(paths.KnownDevices)
		}
		s.Listen = bridge.ListenSpec{Addr: p.Listen, CertFile: filepath.Join(stateDir, p.Name+"-listen.pem"),
			Replace: p.ReplaceSession, AllowFrom: p.AllowFrom}
		if p.DeviceMAC != "" {
			if s.Listen.DeviceMAC, err = config.ParseMAC(p.DeviceMAC); err != nil {
				return bridge.PortSpec{}, fmt.Errorf("service: %s: device_mac: %w", p.File, err)
			}
		}
		s.Link.Trust, s.Link.Pin, s.Link.InsecureSkipVerify, s.Link.KnownDevices, s.Link.CAFile = "", "", false, "", ""
	}
	if prof == tlsconn.ProfileOff {
		s.Link.Trust = ""
		s.Link.KnownDevices = "" // no certificate to remember
	}
	return s, s.Validate()
}

// FileLoader returns the daemon's LoadFunc: config.Load (strict TOML
// decoding with file:line errors), then SpecFromConfig.
func FileLoader(paths config.Paths) LoadFunc {
	return func(path string) (*config.Port, bridge.PortSpec, error) {
		p, err := config.Load(path)
		if err != nil {
			return nil, bridge.PortSpec{}, err
		}
		s, err := SpecFromConfig(p, paths)
		return p, s, err
	}
}
