//go:build linux

package service

import (
	"bufio"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/service/config"
)

// TestControlBounds sends the control socket and the metrics address a
// request whose headers go far beyond maxControlHeader (64 KiB: within
// net/http's default limit of 1 MiB): it is answered 431, and the server
// keeps serving.
func TestControlBounds(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "run", "vsp.sock")
	d, err := NewDaemon(DaemonConfig{ConfigDir: dir, Socket: sock, Metrics: "127.0.0.1:0",
		Load: FileLoader(config.Paths{LinkDir: t.TempDir()})}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer start(t, d)()
	metrics := testenv.Await(t, 10*time.Second, "the metrics address", func() string { return d.Info().Metrics },
		func(a string) bool { return a != "" && !strings.HasSuffix(a, ":0") })
	for _, tc := range []struct {
		name, network, addr, path string
	}{
		{"control socket", "unix", sock, "/v1/ports"},
		{"metrics", "tcp", metrics, "/metrics"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dial := func() net.Conn {
				var c net.Conn
				testenv.Eventually(t, 10*time.Second, tc.name, func() bool {
					var err error
					c, err = net.Dial(tc.network, tc.addr)
					return err == nil
				})
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				return c
			}
			c := dial()
			defer c.Close()
			go func() {
				w := bufio.NewWriter(c)
				w.WriteString("GET " + tc.path + " HTTP/1.1\r\nHost: vsp\r\nX-Flood: ")
				w.WriteString(strings.Repeat("a", 64<<10))
				w.WriteString("\r\n\r\n")
				w.Flush()
			}()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer to an oversized request: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("oversized request answered %s, want 431", resp.Status)
			}

			c2 := dial()
			defer c2.Close()
			if _, err := c2.Write([]byte("GET " + tc.path + " HTTP/1.1\r\nHost: vsp\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			resp, err = http.ReadResponse(bufio.NewReader(c2), nil)
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("after the flood: %v, %v", resp, err)
			}
			resp.Body.Close()
		})
	}
}
