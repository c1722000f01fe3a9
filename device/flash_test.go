package device

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var flashSeeds = []string{
	`{"version":1}`,
	`{"version":1,"model":"CSE-H25","settings":{"ip":"10.1.0.5","mode":"T2S","serial":[{"baud":9600}]}}`,
	`{"version":1,"model":"CSE-M32","settings":{"com2":true,"serial":[{"baud":9600},{"baud":19200}]}}`,
	`{"version":1,"model":"CSE-H25","settings":{"mode":"COD","peer":"10.1.0.2:1470","byte_count":4}}`,
	`{"version":1,"model":"CSE-H25","settings":{"ssl":true,"serial":[{"baud":230400}]}}`,
	`{"version":2}`,
	`{"version":1,"bogus":1}`,
	`{"version":1,"ssl":{"key":"x","cert":"y"}}`,
	`{"version":1}{}`,
	`{"vers`,
	"\x00\x01garbage",
	``,
}

// validFlash returns the bytes of a flash file written by a device with
// SSL on (settings, key and certificate).
func validFlash(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "flash.json")
	d := startDevice(t, Config{SSL: true, KeyBits: 512, Flash: path})
	d.Close()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestFlashCorruptFallsBack(t *testing.T) {
	good := validFlash(t)
	tests := []struct {
		name, content, want string
	}{
		{"garbage", "\x00\x01garbage", "flash file corrupt"},
		{"truncated", string(good[:len(good)/2]), "unexpected EOF"},
		{"empty", "", "flash file corrupt"},
		{"newer version", `{"version":7}`, "version 7 is newer"},
		{"limit", `{"version":1,"model":"CSE-H25","settings":{"ssl":true,"serial":[{"baud":230400}]}}`, "rule " + RuleSSLMaxBaud},
		{"com2 on H25", `{"version":1,"model":"CSE-H25","settings":{"com2":true}}`, "rule " + RuleModelPorts},
		{"unknown field", `{"version":1,"colour":"blue"}`, "unknown field"},
		{"key without cert", strings.Replace(string(good), `"cert"`, `"nocert"`, 1), "flash file corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "flash.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := Config{IP: "10.1.0.3"}
			if err := ApplyFlashSettings(&cfg, path); !errors.Is(err, ErrFlashCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ApplyFlashSettings: %v, want %q", err, tt.want)
			}
			if cfg.IP != "10.1.0.3" || cfg.SSL {
				t.Fatalf("config changed by a corrupt file: %+v", cfg)
			}
			d := startDevice(t, Config{SSL: true, KeyBits: 512, Flash: path})
			st := d.Status()
			if !strings.Contains(st.Flash.Error, tt.want) || st.Network.IP != "10.1.0.1" {
				t.Fatalf("flash status %q (ip %s), want %q", st.Flash.Error, st.Network.IP, tt.want)
			}
			// Factory defaults (plus the SSL flag) run.
			c, err := tls.Dial("tcp", d.Addr().String(), device10())
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c, "on defaults")
			c.Close()
			d.Close()
			if data, err := os.ReadFile(path); err != nil || string(data) != tt.content {
				t.Fatalf("corrupt flash file was overwritten: %v", err)
			}
		})
	}
}

func TestFlashWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flash.json")
	s := settings{Mode: "COD", Peer: "10.1.0.2:1470"}
	s.normalize()
	for i := range 2 { // create, then replace
		s.ByteCount = i
		if err := writeFlash(path, &flashImage{Model: "CSE-H25", Settings: &s}); err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("flash file mode: %v %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("leftover files: %v", entries)
	}
	img, err := readFlash(path)
	if err != nil || img.Version != flashVersion || img.Settings.ByteCount != 1 || img.Settings.Peer != "10.1.0.2:1470" {
		t.Fatalf("read back %+v %v", img, err)
	}
	// A missing file is no error: factory defaults.
	if img, err := readFlash(filepath.Join(dir, "none.json")); img != nil || err != nil {
		t.Fatalf("missing file: %v %v", img, err)
	}
}

// TestFlashSettingsRoundTrip saves settings from the console and boots them.
func TestFlashSettingsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flash.json")
	d := startDevice(t, Config{Console: "127.0.0.1:0", Flash: path})
	tc := dialConsole(t, d)
	tc.login("sollae")
	for _, cmd := range []string{"set ip 10.1.0.44", "set timeout 30", "set com1 baud 9600", "passwd s3cret"} {
		if out := tc.cmd(cmd); strings.Contains(out, "usage") || strings.Contains(out, "invalid") {
			t.Fatalf("%s: %q", cmd, out)
		}
	}
	if out := tc.cmd("save"); !strings.Contains(out, "save config ok") {
		t.Fatalf("save: %q", out)
	}
	d.Close()
	cfg := Config{Console: "127.0.0.1:0", Flash: path}
	if err := ApplyFlashSettings(&cfg, path); err != nil {
		t.Fatal(err)
	}
	d2 := startDevice(t, cfg)
	st := d2.Status()
	if st.Network.IP != "10.1.0.44" || st.Ports[0].Serial.Baud != 9600 {
		t.Fatalf("after reboot: ip %s baud %d", st.Network.IP, st.Ports[0].Serial.Baud)
	}
	tc2 := dialConsole(t, d2)
	tc2.login("s3cret")
	if out := tc2.cmd("show"); !strings.Contains(out, "timeout 30") {
		t.Fatalf("show: %q", out)
	}
}

func FuzzFlashLoad(f *testing.F) {
	for _, s := range flashSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodeFlash(data)
		if err != nil {
			if !errors.Is(err, ErrFlashCorrupt) {
				t.Fatalf("error %v is not ErrFlashCorrupt", err)
			}
			return
		}
		// Whatever loads must survive a save and load unchanged.
		out, err := json.Marshal(img)
		if err != nil {
			t.Fatal(err)
		}
		img2, err := decodeFlash(out)
		if err != nil {
			t.Fatalf("reload of %s: %v", out, err)
		}
		out2, _ := json.Marshal(img2)
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

var _ = context.Background

// TestFlashCorruptReplacedOnlyBySave: an explicit save replaces a corrupt
// flash file and keeps the bad one as FILE.corrupt.
func TestFlashCorruptReplacedOnlyBySave(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flash.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDevice(t, Config{Console: "127.0.0.1:0", Flash: path})
	tc := dialConsole(t, d)
	tc.login("sollae")
	if out := tc.cmd("st"); !strings.Contains(out, "flash file corrupt") {
		t.Fatalf("st does not report the corrupt flash: %q", out)
	}
	if out := tc.cmd("save"); !strings.Contains(out, "save config ok") {
		t.Fatalf("save: %q", out)
	}
	if data, err := os.ReadFile(path + ".corrupt"); err != nil || string(data) != "{not json" {
		t.Fatalf("bad file not kept aside: %q %v", data, err)
	}
	if _, err := readFlash(path); err != nil {
		t.Fatalf("saved flash unreadable: %v", err)
	}
}
