package service

import (
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
)

// A port file with listen becomes a listen-mode spec: the host certificate
// goes next to the known-devices file, the trust settings are unused.
func TestSpecFromConfigListen(t *testing.T) {
	doc := "link = \"/dev/ttyVSP0\"\nlisten = \":1470\"\ntls = \"legacy\"\ndevice_mac = \"00:30:f9:00:00:01\"\nallow_from = [\"10.1.0.0/24\"]\n"
	p, err := config.Parse("cod1", "/etc/vsp/ports.d/cod1.toml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	s, err := SpecFromConfig(p, Paths{KnownDevices: "/var/lib/vsp/known_devices"})
	if err != nil {
		t.Fatal(err)
	}
	want := bridge.ListenSpec{Addr: ":1470", CertFile: "/var/lib/vsp/cod1-listen.pem", DeviceMAC: net.HardwareAddr{0x00, 0x30, 0xf9, 0, 0, 1}, AllowFrom: []string{"10.1.0.0/24"}}
	if !reflect.DeepEqual(s.Listen, want) || len(s.Devices) != 0 || s.Link.KnownDevices != "" || s.Link.Trust != "" {
		t.Errorf("spec %+v / %+v; want listen %+v and no device or trust", s.Listen, s.Link, want)
	}
	s.Devices = []string{"10.1.0.1:1470"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "choose one") {
		t.Errorf("devices and listen together: %v", err)
	}
}
