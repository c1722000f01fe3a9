package service

import (
	"fmt"
	"path/filepath"

	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
	"github.com/vsp-dev/vsp/tlsconn"
)

// Paths are the daemon-wide locations a port file's relative settings
// resolve against.
type Paths struct {
	LinkDir      string // where bare link names go; "" = config.DefaultPaths().LinkDir
	KnownDevices string // trust-on-first-use file
}

// SpecFromConfig turns a validated port file into what bridge.StartPort runs.
func SpecFromConfig(p *config.Port, paths Paths) (bridge.PortSpec, error) {
	linkDir := paths.LinkDir
	if linkDir == "" {
		linkDir = config.DefaultPaths().LinkDir
	}
	prof, err := tlsconn.ParseProfile(p.TLS)
	if err != nil {
		return bridge.PortSpec{}, fmt.Errorf("service: %s: %w", p.File, err)
	}
	s := bridge.PortSpec{
		Name:    p.Name,
		Source:  p.File,
		Devices: p.Addrs(),
		PTY: pty.Config{
			Link:  p.LinkPath(linkDir),
			Owner: p.TTY.Owner,
			Group: p.TTY.Group,
			Mode:  p.TTY.Mode,
		},
		Link: tlsconn.Config{
			Profile:            prof,
			Pin:                p.Trust.Pin,
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
			Buffer:    int(p.Buffer),
			Backoff:   tlsconn.Backoff{Min: p.Net.BackoffMin, Max: p.Net.BackoffMax},
			StaleData: bridge.StalePolicy(p.StaleData),
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
	}
	if p.Listen != "" { // the device connects to us (listen.go)
		stateDir := filepath.Dir(p.File)
		if paths.KnownDevices != "" {
			stateDir = filepath.Dir(paths.KnownDevices)
		}
		s.Listen = bridge.ListenSpec{Addr: p.Listen, CertFile: filepath.Join(stateDir, p.Name+"-listen.pem"),
			DeviceMAC: p.DeviceMAC, Replace: p.ReplaceSession, AllowFrom: p.AllowFrom}
		s.Link.Trust, s.Link.Pin, s.Link.InsecureSkipVerify, s.Link.KnownDevices, s.Link.CAFile = "", "", false, "", ""
	}
	if prof == tlsconn.ProfileOff {
		s.Link.Trust = ""
		s.Link.KnownDevices = "" // no certificate to remember
	}
	return s, s.Validate()
}

// FileLoader returns the daemon's LoadFunc: strict TOML decoding with
// file:line errors, then SpecFromConfig.
func FileLoader(paths Paths) LoadFunc {
	return func(path string) (bridge.PortSpec, error) {
		p, err := config.Load(path)
		if err != nil {
			return bridge.PortSpec{}, err
		}
		return SpecFromConfig(p, paths)
	}
}
