//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service/config"
)

// Acceptance 3: a non-root member of the daemon socket's group runs `vsp
// list` with no flags and sees the system daemon's ports; a non-member is
// told to join the group, without HTTP internals. The system daemon runs
// as root on its default socket (/run/vsp/vsp.sock) in a private mount
// namespace whose /run is a fresh tmpfs, so the machine's /run is not
// touched; the group and users are throw-away ones.
func TestGroupAccessToSystemDaemon(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root (throw-away users and a mount namespace)")
	}
	for _, tool := range []string{"unshare", "setpriv", "useradd", "groupadd", "userdel", "groupdel", "mount"} {
		testenv.Tool(t, tool)
	}
	if err := exec.Command("unshare", "-m", "--propagation", "private", "true").Run(); err != nil {
		testenv.Missing(t, "no mount namespaces here: "+err.Error())
	}
	suffix := fmt.Sprintf("%d", os.Getpid()%100000)
	group, member, outsider := "vsptg"+suffix, "vsptm"+suffix, "vspto"+suffix
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("groupadd", group)
	t.Cleanup(func() { _ = exec.Command("groupdel", group).Run() })
	run("useradd", "-M", "-N", "-G", group, "-s", "/usr/sbin/nologin", member)
	t.Cleanup(func() { _ = exec.Command("userdel", member).Run() })
	run("useradd", "-M", "-N", "-s", "/usr/sbin/nologin", outsider)
	t.Cleanup(func() { _ = exec.Command("userdel", outsider).Run() })

	// The binary where the users may run it.
	dir, err := os.MkdirTemp("", "vsp-group-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "vsp")
	copyFile(t, bins.Build(t, "vsp"), bin)
	ports := filepath.Join(dir, "ports.d")
	if err := os.MkdirAll(ports, 0o755); err != nil {
		t.Fatal(err)
	}
	port := fmt.Sprintf("device = %q\ntls = \"off\"\nlink = %q\n", freeAddr(t), filepath.Join(dir, "ttyG"))
	if err := os.WriteFile(config.PortFile(ports, "shared1"), []byte(port), 0o644); err != nil {
		t.Fatal(err)
	}

	sys := config.SystemPaths().Socket
	script := `set -u
mount -t tmpfs tmpfs /run
"$BIN" run --config-dir "$DIR/ports.d" --known-devices "$DIR/known_devices" --link-dir "$DIR" --log-format json >"$DIR/daemon.log" 2>&1 &
for i in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
chgrp "$GROUP" "$SOCK"
as() { u=$1; shift; setpriv --reuid="$u" --regid=users --init-groups env -i HOME=/nonexistent PATH=/usr/bin:/bin "$BIN" list "$@"; echo "exit=$?"; }
echo "== member"; as "$MEMBER" --verbose 2>&1
echo "== outsider"; as "$OUTSIDER" --verbose 2>&1
echo "== explicit"; as "$OUTSIDER" --socket "$SOCK" 2>&1
kill %1; wait
`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "bash", "-c", script)
	cmd.Env = append(os.Environ(), "BIN="+bin, "DIR="+dir, "SOCK="+sys, "GROUP="+group, "MEMBER="+member, "OUTSIDER="+outsider)
	done := make(chan struct{})
	var out []byte
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("the test script did not finish:\n%s", out)
	}
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	text := string(out)
	memberOut, rest, _ := strings.Cut(strings.TrimPrefix(text[strings.Index(text, "== member"):], "== member"), "== outsider")
	outsiderOut, explicitOut, _ := strings.Cut(rest, "== explicit")
	if !strings.Contains(memberOut, "shared1") || !strings.Contains(memberOut, "exit=0") || !strings.Contains(memberOut, "daemon: "+sys+" (the system daemon") {
		log, _ := os.ReadFile(filepath.Join(dir, "daemon.log"))
		t.Errorf("the group member does not see the system daemon's ports:\n%s\ndaemon log:\n%s", memberOut, log)
	}
	if strings.Contains(outsiderOut, "shared1") || !strings.Contains(outsiderOut, "add yourself to the "+group+" group") ||
		!strings.Contains(outsiderOut, "log in again") || strings.Contains(outsiderOut, "http://") {
		t.Errorf("the outsider's error does not say to join the group (or shows HTTP internals):\n%s", outsiderOut)
	}
	if !strings.Contains(explicitOut, "permission denied on the daemon's socket "+sys+": add yourself to the "+group+" group") ||
		!strings.Contains(explicitOut, "exit=1") || strings.Contains(explicitOut, "http://") || strings.Contains(explicitOut, "dial unix") {
		t.Errorf("--socket without permission:\n%s", explicitOut)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
