package config

import (
	"fmt"
	"testing"
)

func TestSmoke(t *testing.T) {
	for _, doc := range []string{
		"link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1:1470\"\ntls = \"legacy\"\n\n[trust]\npin = \"abc\"\n",
		"link = \"/dev/ttyVSP0\"\ndevice = \"10.1.0.1\"\ndevices = [\"a:1\", \"b\"]\ntsl = \"off\"\nbuffer = true\n[trsut]\nx=1\n[net]\ndial_timeout = \"5\"\nbackoff_min = \"10s\"\n[tty]\nmode = 660\nbaud = 9600\n[serial]\nstop_bits = 1.5\nparity = \"Even\"\n",
		"link = \"/dev/ttyVSP0\"\n[link]\nx = 1\n",
		"[link]\ndial_timeout = \"1s\"\n",
		"link = \"x\"\ndevice = \"h:1\"\ntls = \"off\"\ntrust.pin = \"sha256:" + "AB:" + "\"\n",
		"link = \"x\"\nlisten = \":1470\"\ntls = \"modern\"\nrfc2217 = true\nstrict_serial = true\n",
		"link = \"x\"\ndevice = \"h:1\"\ntls = \"modern\"\ntrust = { mode = \"ca\", pin = \"q\" }\n",
	} {
		_, err := Parse("plc1", "/etc/vsp/ports.d/plc1.toml", []byte(doc))
		fmt.Printf("%v\n---\n", err)
	}
}
