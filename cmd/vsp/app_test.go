package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/service/config"
)

func TestInterspersed(t *testing.T) {
	app := newApp(&env{})
	for _, tc := range []struct{ in, want []string }{
		{[]string{"vsp"}, []string{"vsp"}},
		{[]string{"vsp", "create", "a", "--device", "h:1"}, []string{"vsp", "create", "--device", "h:1", "a"}},
		{[]string{"vsp", "create", "--device=h:1", "a", "--force"}, []string{"vsp", "create", "--device=h:1", "--force", "a"}},
		{[]string{"vsp", "create", "a", "--force", "--link", "/x", "b"}, []string{"vsp", "create", "--force", "--link", "/x", "a", "b"}},
		{[]string{"vsp", "delete", "a", "--", "--b"}, []string{"vsp", "delete", "a", "--", "--b"}},
		{[]string{"vsp", "status", "p", "--json"}, []string{"vsp", "status", "--json", "p"}},
		{[]string{"vsp", "service", "install", "--user"}, []string{"vsp", "service", "install", "--user"}},
		{[]string{"vsp", "nosuch", "a", "--x"}, []string{"vsp", "nosuch", "a", "--x"}},
	} {
		if got := interspersed(app, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("interspersed(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Every port flag `vsp create` lists reaches the port file it writes.
func TestCreateWritesEveryFlag(t *testing.T) {
	dir := t.TempDir()
	args := []string{"vsp", "create", "plc", "--config-dir", dir, "--wait", "0",
		"--listen", ":1470", "--device-mac", "00:30:f9:00:00:01", "--replace-session",
		"--tls", "legacy", "--trust", "tofu", "--server-name", "plc.example",
		"--dial-timeout", "30s", "--keepalive-idle", "7s", "--keepalive-interval", "3s", "--keepalive-count", "5",
		"--user-timeout", "20s", "--backoff-min", "200ms", "--backoff-max", "2s",
		"--buffer", "1MiB", "--stale-data", "keep", "--group", "dialout", "--mode", "0640", "--baud", "9600"}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), args, nil, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	p, err := config.Load(filepath.Join(dir, "plc.toml"))
	if err != nil {
		t.Fatal(err)
	}
	got := []any{p.Listen, p.DeviceMAC, p.ReplaceSession, p.TLS, p.Trust.Mode, p.Trust.ServerName,
		p.Net.DialTimeout, p.Net.KeepAliveIdle, p.Net.KeepAliveInterval, p.Net.KeepAliveCount,
		p.Net.UserTimeout, p.Net.BackoffMin, p.Net.BackoffMax,
		int64(p.Buffer), p.StaleData, p.TTY.Group, p.TTY.Mode, p.Serial.Baud}
	want := []any{":1470", "00:30:f9:00:00:01", true, "legacy", "tofu", "plc.example",
		30 * time.Second, 7 * time.Second, 3 * time.Second, 5,
		20 * time.Second, 200 * time.Millisecond, 2 * time.Second,
		int64(1 << 20), "keep", "dialout", os.FileMode(0o640), 9600}
	for i := range want {
		if fmt.Sprint(got[i]) != fmt.Sprint(want[i]) {
			t.Errorf("field %d: got %v, want %v", i, got[i], want[i])
		}
	}
	// A plain-TCP port with RFC 2217.
	args = []string{"vsp", "create", "rfc", "--config-dir", dir, "--wait", "0", "--device", "h:1", "--tls", "off", "--rfc2217"}
	if code := run(context.Background(), args, nil, &out, &errOut); code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if p, err := config.Load(filepath.Join(dir, "rfc.toml")); err != nil || !p.RFC2217 {
		t.Fatalf("rfc2217 not written: %+v, %v", p, err)
	}
}
