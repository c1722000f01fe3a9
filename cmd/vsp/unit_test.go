//go:build linux

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// serviceUnit runs `vsp service unit` with args and returns the unit.
func serviceUnit(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bins.Build(t, "vsp"), append([]string{"service", "unit"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("vsp service unit %s: %v\n%s", strings.Join(args, " "), err, e.String())
	}
	return o.String()
}

// The one unit: what each kind of install gets, through the binary.
func TestServiceUnit(t *testing.T) {
	vsp := bins.Build(t, "vsp")
	exe, err := filepath.EvalSymlinks(vsp)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		env     []string
		args    []string
		want    []string // whole lines
		notWant []string // line prefixes
	}{
		{
			name: "package",
			args: []string{"--user=false", "--executable", "/usr/bin/vsp"},
			want: []string{"Type=notify", "NotifyAccess=main", "WatchdogSec=30s", "ExecStart=/usr/bin/vsp run",
				`ExecReload=/bin/sh -c "kill -HUP ${MAINPID}"`, "Restart=on-failure", "FileDescriptorStoreMax=4096",
				"RuntimeDirectory=vsp", "RuntimeDirectoryPreserve=yes", "StateDirectory=vsp",
				"CapabilityBoundingSet=CAP_CHOWN CAP_FOWNER CAP_DAC_READ_SEARCH", "ProtectSystem=strict", "ReadWritePaths=/dev",
				"NoNewPrivileges=yes", "WantedBy=multi-user.target"},
			// Not PrivateDevices (the links live in the host's /dev), not
			// FileDescriptorStorePreserve=yes (stop must close the ttys).
			notWant: []string{"PrivateDevices=", "FileDescriptorStorePreserve=yes", "User="},
		},
		{
			name: "install with this binary and the defaults",
			args: []string{"--user=false"},
			want: []string{"ExecStart=" + exe + " run", "WantedBy=multi-user.target"},
		},
		{
			name: "directories the administrator set",
			args: []string{"--user=false", "--executable", "/opt/vsp bin/vsp", "--config-dir", "/srv/vsp/ports.d",
				"--socket", "/srv/run/vsp.sock", "--known-devices", "/srv/state/50%/known$"},
			want: []string{
				`ExecStart="/opt/vsp bin/vsp" run --config-dir /srv/vsp/ports.d --socket /srv/run/vsp.sock --known-devices "/srv/state/50%%/known$$"`,
				`ReadWritePaths=/dev -/srv/run "-/srv/state/50%%"`},
		},
		{
			name:    "directories from the environment count as set",
			env:     []string{"VSP_CONFIG_DIR=/srv/ports.d"},
			args:    []string{"--user=false", "--executable", "/usr/bin/vsp"},
			want:    []string{"ExecStart=/usr/bin/vsp run --config-dir /srv/ports.d"},
			notWant: []string{"ReadWritePaths=/dev -"},
		},
		{
			name:    "user service",
			args:    []string{"--user", "--executable", "/usr/bin/vsp"},
			want:    []string{"Type=notify", "WatchdogSec=30s", "FileDescriptorStoreMax=4096", "ExecStart=/usr/bin/vsp run", "WantedBy=default.target"},
			notWant: []string{"CapabilityBoundingSet=", "ProtectSystem=", "WantedBy=multi-user.target"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unit := serviceUnit(t, tc.env, tc.args...)
			lines := strings.Split(unit, "\n")
			has := func(l string) bool {
				for _, x := range lines {
					if x == l {
						return true
					}
				}
				return false
			}
			for _, w := range tc.want {
				if !has(w) {
					t.Errorf("no line %q in the unit:\n%s", w, unit)
				}
			}
			for _, n := range tc.notWant {
				for _, l := range lines {
					if strings.HasPrefix(l, n) {
						t.Errorf("unexpected line %q in the unit", l)
					}
				}
			}
		})
	}
}

// systemd accepts the unit without a warning (on this host's systemd).
func TestServiceUnitVerifies(t *testing.T) {
	sa := testenv.Tool(t, "systemd-analyze")
	vsp := bins.Build(t, "vsp")
	for _, user := range []string{"--user=false", "--user"} {
		dir := t.TempDir()
		path := filepath.Join(dir, "vsp.service")
		if err := os.WriteFile(path, []byte(serviceUnit(t, nil, user, "--executable", vsp)), 0o644); err != nil {
			t.Fatal(err)
		}
		args := []string{"verify", "--man=no", path}
		if user == "--user" {
			args = []string{"verify", "--man=no", "--user", path}
		}
		out, err := exec.Command(sa, args...).CombinedOutput()
		if err != nil || len(out) > 0 {
			if user == "--user" && bytes.Contains(out, []byte("Failed to")) && !bytes.Contains(out, []byte("vsp.service")) {
				t.Logf("no user manager to verify against: %s", out)
				continue
			}
			t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// docs/service.md shows the packaged unit as `vsp service unit` prints it.
func TestServiceUnitDocumented(t *testing.T) {
	unit := serviceUnit(t, nil, "--user=false", "--executable", "/usr/bin/vsp")
	doc, err := os.ReadFile("../../docs/service.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```ini\n"+unit+"```\n") {
		t.Errorf("docs/service.md does not show the current unit; replace its ```ini block with the output of\n"+
			"  vsp service unit --user=false --executable /usr/bin/vsp\n%s", unit)
	}
}

// `vsp run` runs the daemon through kardianos/service's Interface: a daemon
// that fails on its own ends `vsp run` with its error (it does not wait for
// a signal), and SIGTERM stops it cleanly.
func TestRunAsService(t *testing.T) {
	tmp := t.TempDir()
	blocker := filepath.Join(tmp, "file")
	if err := os.WriteFile(blocker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.Build(t, "vsp"), "run", "--config-dir", filepath.Join(tmp, "ports.d"),
		"--socket", filepath.Join(blocker, "vsp.sock"), "--known-devices", filepath.Join(tmp, "kd"))
	done := make(chan error, 1)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(out.String(), "control socket") {
			t.Errorf("vsp run with an unusable socket: err %v, output %q; want a failure naming the control socket", err, out.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("vsp run with an unusable socket did not exit within 20 s; output:\n%s", out.String())
	}

	d := startDaemon(t)
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.done:
		if !d.cmd.ProcessState.Success() {
			t.Errorf("vsp run after SIGINT: %v\n%s", d.cmd.ProcessState, d.output())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("vsp run did not stop within 20 s of SIGINT")
	}
}
