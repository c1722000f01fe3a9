package service

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vsp-dev/vsp/service/config"
	"github.com/vsp-dev/vsp/tlsconn"
)

// FromFlags is the File of a port built from `vsp run` flags rather than
// read from a port file; its fixes name the flags.
const FromFlags = "command line"

// fixer says how to fix a port's dial errors that will not pass by
// themselves (bridge faults), worded for where the port is configured: the
// vsp command that fixes its port file, or the flag to change on a `vsp
// run` command line. Package tlsconn's errors say what happened; this says
// what to do, in the administrator's terms. It is a value (bridge.Fixer).
type fixer struct {
	flags     bool   // the port comes from `vsp run` flags
	name, tls string // the port's name and TLS profile
	addr      string // its first device address
}

func newFixer(p *config.Port) fixer {
	f := fixer{flags: p.File == FromFlags, name: p.Name, tls: p.TLS, addr: "HOST:PORT"}
	if a := p.Addrs(); len(a) > 0 {
		f.addr = a[0]
	}
	return f
}

// Fix implements bridge.Fixer.
func (f fixer) Fix(err error) string {
	var pm *tlsconn.PinMismatchError
	var cc *tlsconn.CertChangedError
	switch {
	case errors.As(err, &pm):
		if f.flags {
			return fmt.Sprintf("see the device's fingerprint with `vsp trust %s`, compare it with the one the device shows, and give it with --pin", pm.Addr)
		}
		return fmt.Sprintf("see the device's fingerprint with `vsp trust %s`, compare it with the one the device shows, then pin it: `vsp trust --write %s %s`", pm.Addr, f.name, pm.Addr)
	case errors.As(err, &cc):
		kd := ""
		if f.flags || cc.File != config.DefaultPaths().KnownDevices {
			kd = " --known-devices " + cc.File
		}
		return fmt.Sprintf("if the device's certificate was regenerated on purpose (compare %s with the one the device shows), accept it: `vsp trust --accept --expect %s%s %s`", cc.New, cc.New, kd, cc.Addr)
	case errors.Is(err, tlsconn.ErrUntrustedCert):
		if f.flags {
			return "check that --ca-file holds the CA that signed the device's certificate, and --server-name the name it carries"
		}
		return "check that trust.ca_file holds the CA that signed the device's certificate, and trust.server_name the name it carries"
	case errors.Is(err, tlsconn.ErrWeakKey), errors.Is(err, tlsconn.ErrRSAKeyRefused):
		return fmt.Sprintf("the device's key is too small for TLS profile %s (see `vsp trust --tls legacy %s`): %s", f.tls, f.addr, set(f.flags, "tls", "--tls", `"legacy"`))
	case errors.Is(err, tlsconn.ErrHandshake):
		return "the device did not answer TLS: a plain TCP device? " + set(f.flags, "tls", "--tls", `"off"`) + "; or check that the device has SSL enabled"
	}
	return ""
}

// set says to set a port-file key, or to give a flag.
func set(flags bool, key, flag, value string) string {
	if flags {
		return "use " + flag + " " + strings.Trim(value, `"`)
	}
	return fmt.Sprintf("set %s = %s in the port file", key, value)
}
