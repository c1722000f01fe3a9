//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
	"github.com/vsp-dev/vsp/service/config"
)

// vspExit runs the built vsp binary to completion and returns its stderr
// and exit code.
func vspExit(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bins.Build(t, "vsp"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		switch {
		case err == nil:
			return stderr.String(), 0
		case errors.As(err, &ee):
			return stderr.String(), ee.ExitCode()
		}
		t.Fatalf("vsp %s: %v", strings.Join(args, " "), err)
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		t.Fatalf("vsp %s still running after 20s (stderr: %s)", strings.Join(args, " "), stderr.String())
	}
	return "", 0
}

// A value refused on the command line and the same value in a port file
// give the same reason: one parser and one Validate, the flag named in
// place of the key.
func TestFlagAndFileSameReason(t *testing.T) {
	d := startDaemon(t)
	for i, tc := range []struct {
		flags []string
		file  string // keys after link and device
		flag  string
		key   string
	}{
		{[]string{"--tls", "legacy", "--pin", "sha256:abc"}, "tls = \"legacy\"\n[trust]\npin = \"sha256:abc\"\n", "--pin", "trust.pin"},
		{[]string{"--tls", "tls1.2", "--insecure-no-verify"}, "tls = \"tls1.2\"\n[trust]\nmode = \"insecure\"\n", "--tls", "tls"},
		{[]string{"--tls", "off", "--mode", "0668"}, "tls = \"off\"\n[tty]\nmode = \"0668\"\n", "--mode", "tty.mode"},
		{[]string{"--tls", "off", "--buffer", "64k"}, "tls = \"off\"\nbuffer = \"64k\"\n", "--buffer", "buffer"},
		{[]string{"--tls", "off", "--stale-data", "drop"}, "tls = \"off\"\nstale_data = \"drop\"\n", "--stale-data", "stale_data"},
		{[]string{"--tls", "off", "--dial-timeout", "5"}, "tls = \"off\"\n[net]\ndial_timeout = \"5\"\n", "--dial-timeout", "net.dial_timeout"},
		{[]string{"--tls", "off", "--baud", "7"}, "tls = \"off\"\n[serial]\nbaud = 7\n", "--baud", "serial.baud"},
		{[]string{"--tls", "legacy", "--trust", "tofu", "--pin", "sha256:" + strings.Repeat("ab", 32)},
			"tls = \"legacy\"\n[trust]\nmode = \"tofu\"\npin = \"sha256:" + strings.Repeat("ab", 32) + "\"\n", "--pin", "trust.pin"},
	} {
		t.Run(strings.Join(tc.flags, " "), func(t *testing.T) {
			link := tempLink(t)
			stderr, code := vspExit(t, append([]string{"run", "--link", link, "--device", "127.0.0.1:1"}, tc.flags...)...)
			if code != exitUsage {
				t.Fatalf("vsp run %v: exit %d, want %d\n%s", tc.flags, code, exitUsage, stderr)
			}
			_, reason, ok := strings.Cut(strings.TrimSpace(stderr), tc.flag+": ")
			if !ok || strings.Contains(reason, "\n") {
				t.Fatalf("vsp run %v: want one error naming %s, got %q", tc.flags, tc.flag, stderr)
			}
			name := fmt.Sprintf("p%d", i)
			file := fmt.Sprintf("link = %q\ndevice = \"127.0.0.1:1\"\n%s", link, tc.file)
			if err := os.WriteFile(filepath.Join(d.dir, name+".toml"), []byte(file), 0o644); err != nil {
				t.Fatal(err)
			}
			st := d.waitState(t, name, 10*time.Second, func(st service.PortState) bool { return st.ConfigError != "" })
			// The file's reason mentions keys where the flag's mentions
			// flags, and says on which line they are.
			got := regexp.MustCompile(` \(line \d+\)`).ReplaceAllString(st.ConfigError, "")
			var back []string
			for key, flag := range keyFlags {
				if key != "" && key != "devices" {
					back = append(back, "--"+flag+" ", key+" = ")
				}
			}
			if want := tc.key + ": " + strings.NewReplacer(back...).Replace(reason); !strings.HasSuffix(got, want) {
				t.Errorf("port file: %q\nwant it to end with %q (the reason `vsp run` gave)", st.ConfigError, want)
			}
		})
	}
}

// `vsp run --device` makes the spec the daemon makes of the file `vsp
// create` writes from the same flags: one path from flags to a port.
func TestRunSpecEqualsCreatedFile(t *testing.T) {
	pin := "SHA256:" + strings.ToUpper(strings.Repeat("ab", 32))
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"pinned", []string{"--device", "10.1.0.1:1470", "--tls", "legacy", "--pin", pin}},
		{"tuned", []string{"--device", "10.1.0.1:1470", "--device", "10.1.0.2:1470", "--tls", "modern", "--trust", "tofu",
			"--dial-timeout", "2s", "--keepalive-idle", "4s", "--keepalive-interval", "1s", "--keepalive-count", "5",
			"--user-timeout", "6s", "--backoff-min", "50ms", "--backoff-max", "3s", "--buffer", "1MiB", "--stale-data", "keep",
			"--group", "dialout", "--mode", "0600", "--baud", "9600", "--strict-serial"}},
		{"insecure", []string{"--device", "plc.example:1470", "--insecure-no-verify"}},
		{"ca", []string{"--device", "plc.example:1470", "--trust", "ca", "--ca-file", "/etc/ssl/plc-ca.pem", "--server-name", "plc.example"}},
		{"plain rfc2217", []string{"--device", "10.1.0.1:2217", "--tls", "off", "--rfc2217"}},
		{"listen", []string{"--listen", ":1470", "--tls", "legacy", "--device-mac", "00-30-F9-00-00-01",
			"--allow-from", "10.1.0.0/24", "--replace-session"}},
		{"no baud", []string{"--device", "10.1.0.1:1470", "--tls", "off"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			known := filepath.Join(dir, "state", "known_devices")
			link := filepath.Join(dir, "ttyP1")
			var out, errOut bytes.Buffer
			args := append([]string{"vsp", "create", "ttyP1", "--config-dir", dir, "--wait", "0", "--link", link}, tc.flags...)
			if code := run(context.Background(), args, nil, &out, &errOut); code != exitOK {
				t.Fatalf("create: exit %d: %s", code, errOut.String())
			}
			p, err := config.Load(filepath.Join(dir, "ttyP1.toml"))
			if err != nil {
				t.Fatal(err)
			}
			fromFile, err := service.SpecFromConfig(p, config.Paths{KnownDevices: known})
			if err != nil {
				t.Fatal(err)
			}

			var fromFlags bridge.PortSpec
			app := &cli.App{Writer: &out, ErrWriter: &errOut, Flags: append(portFlags(), knownDevicesFlag()),
				Action: func(c *cli.Context) error {
					var err error
					fromFlags, err = runSpec(c)
					return err
				}}
			if err := app.Run(append([]string{"vsp", "--link", link, "--known-devices", known}, tc.flags...)); err != nil {
				t.Fatal(err)
			}
			if fromFlags.Source != "command line" {
				t.Errorf("run's spec comes from %q", fromFlags.Source)
			}
			fromFlags.Source = fromFile.Source
			// The fixes differ by design: they name flags for the one,
			// vsp commands on the file for the other (service.fixer).
			if fromFlags.Bridge.Fix == nil || fromFile.Bridge.Fix == nil {
				t.Errorf("a spec without fixes for its faults")
			}
			fromFlags.Bridge.Fix, fromFile.Bridge.Fix = nil, nil
			if !reflect.DeepEqual(fromFlags, fromFile) {
				t.Errorf("vsp run %v:\n %+v\nthe file vsp create wrote:\n %+v", tc.flags, fromFlags, fromFile)
			}
		})
	}
}

// A port with no [serial] table reports its device's speed as "not set"
// (text) and leaves it out (JSON), and an application choosing any speed
// gets no mismatch warning: vsp does not invent a speed nobody configured.
func TestSerialNotSet(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo", "--baud", "115200")
	link := tempLink(t)
	d := startSerialDaemon(t, "com1", fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", link, sim.addr))
	app := openApp(t, link)
	setAppSerial(t, app, 38400, false, false)
	text, st := d.waitStatus(t, "com1", "the application's 38400 bit/s", func(_ string, st service.PortState) bool {
		return strings.HasPrefix(st.AppSettings, "38400")
	})
	if !strings.Contains(text, "device serial:   not set\n") {
		t.Errorf("vsp status does not say the device speed is not set:\n%s", text)
	}
	if st.DeviceSerial != (bridge.SerialSettings{}) || st.Mismatch != "" {
		t.Errorf("status JSON: device serial %+v, mismatch %q; want neither", st.DeviceSerial, st.Mismatch)
	}
	js, err := exec.Command(bins.Build(t, "vsp"), "status", "--socket", d.socket, "--json", "com1").Output()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(js, []byte(`"device_serial"`)) || bytes.Contains(js, []byte("115200")) {
		t.Errorf("status JSON reports a device speed nobody configured:\n%s", js)
	}
	expectEcho(t, app, []byte("hello\r\n"))
	if strings.Contains(d.output(), "serial settings mismatch") {
		t.Errorf("vsp warned about a mismatch with no configured speed:\n%s", d.output())
	}
}

// Every subcommand refuses positional arguments it does not take with a
// usage error (exit 2), before doing anything.
func TestStrayArguments(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "bogusarg"}, `run: unexpected argument "bogusarg": run takes no arguments`},
		{[]string{"run", "--device", "127.0.0.1:1", "--tls", "off", "bogusarg"}, `unexpected argument "bogusarg"`},
		{[]string{"create", "p1", "bogusarg", "--device", "127.0.0.1:1"}, `create: unexpected argument "bogusarg" after NAME`},
		{[]string{"create", "--device", "127.0.0.1:1"}, "create: missing NAME"},
		{[]string{"delete", "p1", "bogusarg"}, `delete: unexpected argument "bogusarg"`},
		{[]string{"list", "bogusarg"}, `list: unexpected argument "bogusarg"`},
		{[]string{"status", "p1", "bogusarg"}, `status: unexpected argument "bogusarg"`},
		{[]string{"trust", "127.0.0.1:1", "bogusarg"}, `trust: unexpected argument "bogusarg"`},
		{[]string{"trust"}, "trust: missing HOST:PORT"},
		{[]string{"service", "bogusarg"}, `service: unknown command "bogusarg"`},
		{[]string{"service", "status", "bogusarg"}, `service status: unexpected argument "bogusarg"`},
		{[]string{"demo", "bogusarg"}, `demo: unexpected argument "bogusarg"`},
		{[]string{"version", "bogusarg"}, `version: unexpected argument "bogusarg"`},
		{[]string{"completion", "bash", "bogusarg"}, `completion: unexpected argument "bogusarg"`},
		{[]string{"gen-docs", "docs", "bogusarg"}, `gen-docs: unexpected argument "bogusarg"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			args := tc.args
			switch tc.args[0] {
			case "run", "create", "delete":
				args = append(args, "--config-dir", dir, "--socket", filepath.Join(dir, "vsp.sock"))
			case "list", "status":
				args = append(args, "--socket", filepath.Join(dir, "vsp.sock"))
			}
			stderr, code := vspExit(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, exitUsage, tc.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				t.Errorf("the command acted before refusing its arguments: %s holds %v", dir, entries)
			}
		})
	}
}

// With RFC 2217 and no [serial] speed, vsp sends no speed of its own at
// connect (the tty's initial 9600 is nobody's choice): the first speed the
// device applies is the one the application sets.
func TestRFC2217SendsOnlyWhatTheApplicationSet(t *testing.T) {
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--console", "off", "--serial", "echo", "--rfc2217", "--baud", "19200")
	link := tempLink(t)
	vsp := startVsp(t, link, "--device", sim.addr, "--tls", "off", "--rfc2217")
	app, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	setAppSerial(t, app, 57600, false, false)
	l, _ := sim.waitLine(`msg="rfc2217: serial speed applied"`, 0, 20*time.Second)
	if !strings.Contains(l, "baud=57600 ") {
		t.Fatalf("the first speed ezsim applied is not the application's 57600: %s\nvsp:\n%s", l, vsp.output())
	}
}

// Every port flag but --listen-cert (run-only) stands for a port-file key
// in keyFlags, and every flag keyFlags names exists: config's errors about
// a port built from flags can always name the flag.
func TestKeyFlagsCoverPortFlags(t *testing.T) {
	flags := map[string]bool{}
	for _, f := range portFlags() {
		flags[f.Names()[0]] = true
	}
	named := map[string]bool{}
	for key, flag := range keyFlags {
		if !flags[flag] {
			t.Errorf("keyFlags[%q] = %q: no such port flag", key, flag)
		}
		named[flag] = true
	}
	for flag := range flags {
		if !named[flag] && flag != "listen-cert" && flag != "insecure-no-verify" {
			t.Errorf("--%s sets no port-file key in keyFlags", flag)
		}
	}
}
