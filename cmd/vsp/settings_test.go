//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service"
	"github.com/vsp-dev/vsp/service/bridge"
)

// cleanEnv is the test's environment without any VSP_ or XDG_ variable, so
// that only what a test sets reaches vsp, plus extra.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VSP_") && !strings.HasPrefix(kv, "XDG_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// vspEnv runs the CLI with env and returns what it printed.
func vspEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(bins.Build(t, "vsp"), args...)
	cmd.Env = env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// mustVsp is vspEnv that fails the test when vsp fails.
func mustVsp(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := vspEnv(t, env, args...)
	if err != nil {
		t.Fatalf("vsp %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// startRun starts `vsp run args...` with env and waits for the daemon.
func startRun(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bins.Build(t, "vsp"), append([]string{"run"}, args...)...)
	cmd.Env = env
	p := runProc(t, "vsp", cmd)
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("daemon: %v", err)
		}
		if t.Failed() {
			t.Logf("vsp run output:\n%s", p.output())
		}
	})
	p.waitLine("daemon running", 0, 20*time.Second)
	return p
}

func writeFile(t *testing.T, path, content string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemonInfo is `vsp status --daemon --json` with env.
func daemonInfo(t *testing.T, env []string, args ...string) service.DaemonInfo {
	t.Helper()
	var info service.DaemonInfo
	out := mustVsp(t, env, append([]string{"status", "--daemon", "--json"}, args...)...)
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("vsp status --daemon --json: %v\n%s", err, out)
	}
	return info
}

func settingOf(list []service.Setting, key string) service.Setting {
	for _, s := range list {
		if s.Key == key {
			return s
		}
	}
	return service.Setting{}
}

// waitPortUp polls `vsp status NAME --json` (with env, so through the
// settings the environment points at) until the port's link is up.
func waitPortUp(t *testing.T, env []string, name string) service.PortState {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _, err := vspEnv(t, env, "status", "--json", name)
		var st service.PortState
		if err == nil && json.Unmarshal([]byte(out), &st) == nil && st.State == bridge.StateUp {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s not up after 20s: %v\n%s", name, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A settings file given with --config sets every documented key: the
// daemon watches its config_dir, serves its socket (where `vsp list` and
// `vsp status` find it through VSP_CONFIG alone), serves /metrics and only
// /metrics over TCP, places a bare link in link_dir, records tofu pins in
// known_devices, and logs JSON at debug level.
func TestSettingsFileKeys(t *testing.T) {
	tmp := t.TempDir()
	dir, sock := filepath.Join(tmp, "ports"), filepath.Join(tmp, "ctl", "vsp.sock")
	linkDir, known := filepath.Join(tmp, "links"), filepath.Join(tmp, "state", "known_devices")
	metrics := freeAddr(t)
	file := writeFile(t, filepath.Join(tmp, "vsp.toml"), fmt.Sprintf(
		"config_dir = %q\nsocket = %q\nlink_dir = %q\nknown_devices = %q\nlog_format = \"json\"\nlog_level = \"debug\"\nmetrics = %q\n",
		dir, sock, linkDir, known, metrics))
	sim := startEzsim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--serial", "echo", "--console", "off")
	writeFile(t, filepath.Join(dir, "p1.toml"), fmt.Sprintf("link = \"ttyS1\"\ndevice = %q\ntls = \"legacy\"\ntrust.mode = \"tofu\"\n", sim.addr))

	d := startRun(t, cleanEnv(), "--config", file)
	env := cleanEnv("VSP_CONFIG=" + file)
	st := waitPortUp(t, env, "p1")
	if want := filepath.Join(linkDir, "ttyS1"); st.Link != want {
		t.Errorf("link %q, want the bare name in link_dir: %q", st.Link, want)
	}
	app := openApp(t, filepath.Join(linkDir, "ttyS1"))
	expectEcho(t, app, []byte("through the settings file\n"))
	if b, err := os.ReadFile(known); err != nil || !strings.Contains(string(b), sim.addr) ||
		!strings.Contains(string(b), strings.TrimPrefix(sim.fingerprint, "sha256:")) {
		t.Errorf("known_devices %s: %v %q; want the tofu record of %s", known, err, b, sim.addr)
	}
	if out := mustVsp(t, env, "list"); !strings.Contains(out, "p1") || !strings.Contains(out, sim.addr) {
		t.Errorf("vsp list through VSP_CONFIG:\n%s", out)
	}
	// create and delete find the directory and the socket through the
	// settings file too.
	dev := testenv.NewDevice(t)
	mustVsp(t, env, "create", "p2", "--device", dev.Addr(), "--tls", "off")
	if _, err := os.Stat(filepath.Join(dir, "p2.toml")); err != nil {
		t.Errorf("vsp create through VSP_CONFIG: %v", err)
	}
	if st := waitPortUp(t, env, "p2"); st.Link != filepath.Join(linkDir, "ttyp2") {
		t.Errorf("created port's link %q, want it in link_dir %s", st.Link, linkDir)
	}
	mustVsp(t, env, "delete", "p2")
	if _, err := os.Stat(filepath.Join(dir, "p2.toml")); !os.IsNotExist(err) {
		t.Errorf("vsp delete through VSP_CONFIG left %s: %v", filepath.Join(dir, "p2.toml"), err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket %s: %v", sock, err)
	}

	// The daemon's settings, each with its source.
	info := daemonInfo(t, env)
	for i, k := range []string{"config_dir", "socket", "link_dir", "known_devices", "log_format", "log_level", "metrics"} {
		s := settingOf(info.Settings, k)
		if want := fmt.Sprintf("file %s:%d", file, i+1); s.Source != want {
			t.Errorf("/v1/daemon %s: source %q, want %q", k, s.Source, want)
		}
	}
	if s := settingOf(info.Settings, "settings_file"); s.Value != file || s.Source != "flag --config" {
		t.Errorf("/v1/daemon settings_file = %+v", s)
	}
	if info.ConfigDir != dir || info.Socket != sock || info.Metrics != metrics || info.SettingsLoaded.IsZero() {
		t.Errorf("/v1/daemon = %+v", info)
	}
	text := mustVsp(t, env, "status", "--daemon")
	if !strings.Contains(text, "settings loaded:") || !regexp.MustCompile(`metrics\s+`+regexp.QuoteMeta(metrics)+`\s+file `).MatchString(text) {
		t.Errorf("vsp status --daemon:\n%s", text)
	}

	// /metrics over TCP: the same series as the control socket, and nothing else.
	code, body := httpGet(t, "http://"+metrics+"/metrics")
	if code != http.StatusOK || !strings.Contains(body, `vsp_port_link_up{port="p1"} 1`) || !strings.Contains(body, `vsp_port_bytes_to_device_total{port="p1"}`) {
		t.Errorf("GET /metrics: %d\n%s", code, body)
	}
	for _, path := range []string{"/v1/ports", "/v1/daemon", "/"} {
		if code, _ := httpGet(t, "http://"+metrics+path); code != http.StatusNotFound {
			t.Errorf("GET %s on the metrics address: %d, want 404", path, code)
		}
	}
	if resp, err := http.Post("http://"+metrics+"/metrics", "text/plain", nil); err != nil || resp.StatusCode == http.StatusOK {
		t.Errorf("POST /metrics: %v %v; want a refusal", resp, err)
	} else {
		resp.Body.Close()
	}

	// log_format json and log_level debug: every line is JSON, and the
	// debug line of the application's open is there.
	d.waitLine(`"pty: application opened the port"`, 0, 10*time.Second)
	for _, l := range strings.Split(d.output(), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("log_format json: line is not JSON: %q", l)
		}
	}

	// The metrics listener goes with the daemon.
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", metrics, time.Second); err == nil {
		c.Close()
		t.Errorf("metrics address %s still accepts connections after the daemon ended", metrics)
	}
}

// Precedence is flag > environment > settings file > default, the same in
// every command: shown by `vsp config` for each command's flags, and by a
// daemon and `vsp list` that meet on the environment's socket.
func TestSettingsPrecedence(t *testing.T) {
	tmp := t.TempDir()
	fileSock, envSock, flagSock := filepath.Join(tmp, "file.sock"), filepath.Join(tmp, "env.sock"), filepath.Join(tmp, "flag.sock")
	file := writeFile(t, filepath.Join(tmp, "vsp.toml"), fmt.Sprintf("socket = %q\nconfig_dir = %q\nlog_level = \"warn\"\n", fileSock, filepath.Join(tmp, "ports")))
	for _, tc := range []struct {
		name       string
		env, args  []string
		key        string
		value, src string
	}{
		{"file", []string{"VSP_CONFIG=" + file}, nil, "socket", fileSock, "file " + file + ":1"},
		{"env over file", []string{"VSP_CONFIG=" + file, "VSP_SOCKET=" + envSock}, nil, "socket", envSock, "env VSP_SOCKET"},
		{"flag over env", []string{"VSP_CONFIG=" + file, "VSP_SOCKET=" + envSock}, []string{"--socket", flagSock}, "socket", flagSock, "flag --socket"},
		{"default", []string{"VSP_CONFIG=" + file}, nil, "metrics", "", "default"},
		{"--config over VSP_CONFIG", []string{"VSP_CONFIG=/nonexistent/vsp.toml"}, []string{"--config", file}, "config_dir", filepath.Join(tmp, "ports"), "file " + file + ":2"},
		{"--debug over file", []string{"VSP_CONFIG=" + file}, []string{"--debug"}, "log_level", "debug", "flag --debug"},
		{"env level over file", []string{"VSP_CONFIG=" + file, "VSP_LOG_LEVEL=error"}, nil, "log_level", "error", "env VSP_LOG_LEVEL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var list []service.Setting
			out := mustVsp(t, cleanEnv(tc.env...), append([]string{"config", "--json"}, tc.args...)...)
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				t.Fatalf("vsp config --json: %v\n%s", err, out)
			}
			if s := settingOf(list, tc.key); s.Value != tc.value || s.Source != tc.src {
				t.Errorf("%s = %+v, want %q from %q", tc.key, s, tc.value, tc.src)
			}
		})
	}

	// The daemon takes the environment's socket over the file's; `vsp list`
	// with the same environment finds it there, and with the file alone
	// does not. (The file's log_level warn would hide "daemon running".)
	startRun(t, cleanEnv("VSP_CONFIG="+file, "VSP_SOCKET="+envSock, "VSP_LOG_LEVEL=info"))
	if _, err := os.Stat(envSock); err != nil {
		t.Fatalf("env socket: %v", err)
	}
	if _, err := os.Stat(fileSock); err == nil {
		t.Errorf("the daemon made the file's socket %s although VSP_SOCKET was set", fileSock)
	}
	mustVsp(t, cleanEnv("VSP_CONFIG="+file, "VSP_SOCKET="+envSock), "list")
	if _, errOut, err := vspEnv(t, cleanEnv("VSP_CONFIG="+file), "list"); err == nil || !strings.Contains(errOut, fileSock) {
		t.Errorf("vsp list with the file's socket: %v %q; want no daemon on %s", err, errOut, fileSock)
	}
}

// A bad settings file stops the daemon at start with file:line, exit 1; so
// does a missing file that was named explicitly.
func TestSettingsFileErrors(t *testing.T) {
	tmp := t.TempDir()
	bad := writeFile(t, filepath.Join(tmp, "vsp.toml"), "# vsp\nsocket = \"relative.sock\"\nlog_levle = \"info\"\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"bad --config", nil, []string{"run", "--config", bad}, []string{bad + ":2:1: socket: want a clean absolute path", bad + `:3:1: log_levle: unknown key (did you mean "log_level"?)`}},
		{"bad VSP_CONFIG", []string{"VSP_CONFIG=" + bad}, []string{"run"}, []string{bad + ":2:1: socket"}},
		{"bad file for list", []string{"VSP_CONFIG=" + bad}, []string{"list"}, []string{bad + ":2:1: socket"}},
		{"missing --config", nil, []string{"run", "--config", filepath.Join(tmp, "none.toml")}, []string{filepath.Join(tmp, "none.toml") + ": cannot read file"}},
		{"bad env value", []string{"VSP_LOG_LEVEL=loud"}, []string{"config"}, []string{`VSP_LOG_LEVEL: want one of debug, info, warn, error; got "loud"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := vspEnv(t, cleanEnv(tc.env...), tc.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != exitError {
				t.Fatalf("vsp %s: %v, want exit status 1\n%s", strings.Join(tc.args, " "), err, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
		})
	}
}

// SIGHUP re-reads the settings file without stopping the daemon: a bad file
// keeps the running settings (logged and shown with file:line), a good one
// changes log_level and the metrics address live and logs that the other
// changes wait for a restart. log_format text is what the lines show.
func TestSettingsReloadOnSIGHUP(t *testing.T) {
	tmp := t.TempDir()
	dir, sock, linkDir := filepath.Join(tmp, "ports"), filepath.Join(tmp, "vsp.sock"), filepath.Join(tmp, "links")
	ab := freeAddrs(t, 2)
	metricsA, metricsB := ab[0], ab[1]
	settings := func(level, metrics, socket string) string {
		return fmt.Sprintf("config_dir = %q\nsocket = %q\nlink_dir = %q\nlog_format = \"text\"\nlog_level = %q\nmetrics = %q\n",
			dir, socket, linkDir, level, metrics)
	}
	file := writeFile(t, filepath.Join(tmp, "vsp.toml"), settings("info", metricsA, sock))
	dev := testenv.NewDevice(t)
	writeFile(t, filepath.Join(dir, "p1.toml"), fmt.Sprintf("link = \"ttyR\"\ndevice = %q\ntls = \"off\"\n", dev.Addr()))

	d := startRun(t, cleanEnv(), "--config", file)
	env := cleanEnv("VSP_SOCKET=" + sock)
	waitPortUp(t, env, "p1")
	hup := func() {
		t.Helper()
		if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	// At info level the application's open is not logged: it is seen in
	// the port's state, and a reload's line comes after it in the log.
	app := openApp(t, filepath.Join(linkDir, "ttyR"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := mustVsp(t, env, "status", "--json", "p1")
		if strings.Contains(out, `"app_open": true`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the port never saw the application open it:\n%s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	hup()
	_, at := d.waitLine(`msg="settings reloaded"`, 0, 10*time.Second)
	if strings.Contains(d.output(), "application opened the port") {
		t.Errorf("log_level info: a debug line was logged")
	}
	if l, _ := d.waitLine("daemon running", 0, time.Second); !strings.Contains(l, "level=INFO") || strings.HasPrefix(l, "{") {
		t.Errorf("log_format text: %q", l)
	}

	// A bad file: logged with file:line, the running settings stay.
	writeFile(t, file, settings("info", metricsA, sock)+"log_level = \"debug\"\n")
	hup()
	l, at := d.waitLine("settings not reloaded", at, 10*time.Second)
	if !strings.Contains(l, file+":7:1") {
		t.Errorf("reload error line lacks %s:7:1: %q", file, l)
	}
	info := daemonInfo(t, env)
	if !strings.Contains(info.ReloadError, file+":7:1") || settingOf(info.Settings, "log_level").Value != "info" {
		t.Errorf("after a bad reload: reload error %q, log_level %+v", info.ReloadError, settingOf(info.Settings, "log_level"))
	}
	if code, _ := httpGet(t, "http://"+metricsA+"/metrics"); code != http.StatusOK {
		t.Errorf("metrics on %s after a bad reload: %d", metricsA, code)
	}

	// A good file: debug level and the new metrics address now; the socket
	// change waits for the next start.
	writeFile(t, file, settings("debug", metricsB, filepath.Join(tmp, "other.sock")))
	hup()
	d.waitLine("log level changed", at, 10*time.Second)
	l, _ = d.waitLine("takes effect at the next start", at, 10*time.Second)
	if !strings.Contains(l, "key=socket") {
		t.Errorf("restart-only change: %q", l)
	}
	d.waitLine(`msg="settings reloaded"`, at, 10*time.Second)
	info = daemonInfo(t, env)
	if info.ReloadError != "" || settingOf(info.Settings, "log_level").Value != "debug" || settingOf(info.Settings, "socket").Value != sock || info.Metrics != metricsB {
		t.Errorf("after a good reload: %+v", info)
	}
	if code, body := httpGet(t, "http://"+metricsB+"/metrics"); code != http.StatusOK || !strings.Contains(body, `vsp_port_link_up{port="p1"} 1`) {
		t.Errorf("metrics on the new address %s: %d\n%s", metricsB, code, body)
	}
	if c, err := net.DialTimeout("tcp", metricsA, time.Second); err == nil {
		c.Close()
		t.Errorf("the old metrics address %s is still served", metricsA)
	}
	app.Close()
	d.waitLine(`level=DEBUG msg="pty: application closed the port"`, at, 10*time.Second)

	// Through all of it the daemon and its port kept running.
	if st := waitPortUp(t, env, "p1"); st.Connects != 1 {
		t.Errorf("the port reconnected during settings reloads: %d connects", st.Connects)
	}
}

// docPathsTable parses "Where the files are" in docs/configuration.md: for
// each setting, the root cell and the other-user cell.
func docPathsTable(t *testing.T) map[string][2]string {
	t.Helper()
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i := strings.Index(doc, "## Where the files are")
	if i < 0 {
		t.Fatal("docs/configuration.md: no section \"Where the files are\"")
	}
	keys := []struct{ label, key string }{
		{"port directory", "config_dir"}, {"daemon settings", "settings_file"}, {"control socket", "socket"},
		{"learned pins", "known_devices"}, {"directory for bare", "link_dir"},
	}
	rows := map[string][2]string{}
	for _, line := range strings.Split(doc[i:], "\n")[1:] {
		if strings.HasPrefix(line, "## ") {
			break
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 3 || strings.HasPrefix(cells[0], "---") || cells[0] == "" {
			continue
		}
		found := false
		for _, k := range keys {
			if strings.HasPrefix(cells[0], k.label) {
				rows[k.key] = [2]string{cells[1], cells[2]}
				found = true
			}
		}
		if !found {
			t.Errorf("docs table row %q: no setting known for it", cells[0])
		}
	}
	for _, k := range keys {
		if _, ok := rows[k.key]; !ok {
			t.Errorf("docs table has no row for %s (%q)", k.key, k.label)
		}
	}
	return rows
}

var backticked = regexp.MustCompile("`([^`]*)`")

// docPath takes the first path of a cell (fallback: the one in "(default
// `...`)" or "(fallback `...`)") with the variables replaced.
func docPath(t *testing.T, cell string, fallback bool, vars map[string]string) string {
	t.Helper()
	m := backticked.FindAllStringSubmatch(cell, -1)
	if len(m) == 0 || (fallback && len(m) < 2) {
		t.Fatalf("docs table cell %q: want `path` and, for another user, (default `path`) or (fallback `path`)", cell)
	}
	p := m[0][1]
	if fallback {
		p = m[1][1]
	}
	for k, v := range vars {
		p = strings.ReplaceAll(p, k, v)
	}
	return strings.TrimSuffix(p, "/")
}

// The table of paths in docs/configuration.md is what the binary does, for
// root and for another user, with and without the XDG variables.
func TestDocsPathsTable(t *testing.T) {
	if os.Geteuid() != 0 {
		testenv.Missing(t, "needs root, to run vsp as root and as another user")
	}
	if _, err := os.Stat("/etc/vsp/vsp.toml"); err == nil {
		testenv.Missing(t, "/etc/vsp/vsp.toml exists on this machine; its settings would hide the defaults")
	}
	rows := docPathsTable(t)
	// A copy of vsp that the other user may run.
	binDir, err := os.MkdirTemp("", "vsp-docpaths-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.ReadFile(bins.Build(t, "vsp"))
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "vsp")
	if err := os.WriteFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	xdg := []string{"XDG_CONFIG_HOME=/x/cfg", "XDG_RUNTIME_DIR=/x/run", "XDG_STATE_HOME=/x/state"}
	for _, tc := range []struct {
		name     string
		uid      int
		env      []string
		col      int
		fallback bool
		vars     map[string]string
	}{
		{"root", 0, nil, 0, false, nil},
		{"root ignores XDG", 0, xdg, 0, false, nil},
		{"user with XDG", nobody, xdg, 1, false, map[string]string{"$XDG_CONFIG_HOME": "/x/cfg", "$XDG_RUNTIME_DIR": "/x/run", "$XDG_STATE_HOME": "/x/state"}},
		{"user without XDG", nobody, nil, 1, true, map[string]string{"~": "/h/nobody", "<uid>": fmt.Sprint(nobody)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "config", "--json")
			cmd.Env = append([]string{"HOME=/h/nobody", "PATH=/usr/bin:/bin"}, tc.env...)
			if tc.uid != 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(tc.uid), Gid: uint32(tc.uid)}}
			}
			var o, e bytes.Buffer
			cmd.Stdout, cmd.Stderr = &o, &e
			if err := cmd.Run(); err != nil {
				t.Fatalf("vsp config as uid %d: %v\n%s", tc.uid, err, e.String())
			}
			var list []service.Setting
			if err := json.Unmarshal(o.Bytes(), &list); err != nil {
				t.Fatalf("vsp config --json: %v\n%s", err, o.String())
			}
			for key, cells := range rows {
				want := docPath(t, cells[tc.col], tc.fallback, tc.vars)
				s := settingOf(list, key)
				if s.Value != want || !strings.HasPrefix(s.Source, "default") {
					t.Errorf("%s: vsp uses %q (%s), docs/configuration.md says %q", key, s.Value, s.Source, want)
				}
			}
		})
	}
}

// TestSIGHUPRescansPortFiles: SIGHUP also re-reads every port file, which
// applies a change the directory watch cannot see: a port file that is a
// symlink to a file elsewhere (here a file in another directory, edited in
// place). The daemon logs the reload, applies the change (the port now
// goes to the second device) and keeps the other port up without a redial.
func TestSIGHUPRescansPortFiles(t *testing.T) {
	tmp := t.TempDir()
	dir, sock := filepath.Join(tmp, "ports"), filepath.Join(tmp, "run", "vsp.sock")
	devA, devB, other := testenv.NewDevice(t), testenv.NewDevice(t), testenv.NewDevice(t)
	target := writeFile(t, filepath.Join(tmp, "srv", "p1.toml"), fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", filepath.Join(tmp, "ttyH1"), devA.Addr()))
	writeFile(t, filepath.Join(dir, "p2.toml"), fmt.Sprintf("link = %q\ndevice = %q\ntls = \"off\"\n", filepath.Join(tmp, "ttyH2"), other.Addr()))
	if err := os.Symlink(target, filepath.Join(dir, "p1.toml")); err != nil {
		t.Fatal(err)
	}
	d := startRun(t, cleanEnv(), "--config-dir", dir, "--socket", sock, "--log-format", "text")
	env := cleanEnv("VSP_SOCKET=" + sock)
	waitPortUp(t, env, "p1")
	before := waitPortUp(t, env, "p2")

	// Edit the target in place: no event in the port directory.
	if err := os.WriteFile(target, fmt.Appendf(nil, "link = %q\ndevice = %q\ntls = \"off\"\n", filepath.Join(tmp, "ttyH1"), devB.Addr()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	_, at := d.waitLine(`msg="settings reloaded"`, 0, 10*time.Second)
	d.waitLine(`msg="port file changed: restarting this port" port=p1`, at, 10*time.Second)
	st := testenv.Await(t, 10*time.Second, "p1 up on the second device",
		func() service.PortState { return waitPortUp(t, env, "p1") },
		func(st service.PortState) bool { return len(st.Devices) == 1 && st.Devices[0] == devB.Addr() })
	if st.TTY == "" {
		t.Fatalf("p1 after SIGHUP: %+v", st)
	}
	if after := waitPortUp(t, env, "p2"); after.Connects != before.Connects {
		t.Errorf("p2 redialed on SIGHUP: connects %d -> %d", before.Connects, after.Connects)
	}
	if d.cmd.ProcessState != nil {
		t.Fatal("the daemon exited on SIGHUP")
	}
}
