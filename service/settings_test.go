//go:build linux

package service

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/service/config"
)

// reloadStep is what one scripted ReloadSettings call returns.
type reloadStep struct {
	metrics  string
	settings []Setting
	err      error
}

// A reload applies the metrics address and the reported settings, or keeps
// both and reports the error; the metrics listener serves only /metrics and
// ends with the daemon. Run with -race: Info is read while reloads happen.
func TestDaemonSettingsReload(t *testing.T) {
	dir := t.TempDir()
	first := []Setting{{Key: "log_level", Value: "info", Source: "default"}}
	second := []Setting{{Key: "log_level", Value: "debug", Source: "file vsp.toml:1"}}
	steps := make(chan reloadStep, 1)
	reload := make(chan os.Signal, 1)
	d, err := NewDaemon(DaemonConfig{
		ConfigDir: filepath.Join(dir, "ports"),
		Socket:    filepath.Join(dir, "vsp.sock"),
		Load:      FileLoader(config.Paths{LinkDir: dir}),
		Metrics:   "127.0.0.1:0",
		Settings:  first,
		Reload:    reload,
		ReloadSettings: func() (string, []Setting, error) {
			s := <-steps
			return s.metrics, s.settings, s.err
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer start(t, d)()
	waitInfo := func(what string, ok func(DaemonInfo) bool) DaemonInfo {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if info := d.Info(); ok(info) {
				return info
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 10s: %+v", what, d.Info())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	get := func(url string) int {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	info := waitInfo("metrics served", func(i DaemonInfo) bool { return i.Metrics != "" })
	addr := info.Metrics
	if c := get("http://" + addr + "/metrics"); c != http.StatusOK {
		t.Errorf("GET /metrics: %d", c)
	}
	if c := get("http://" + addr + "/v1/ports"); c != http.StatusNotFound {
		t.Errorf("GET /v1/ports on the metrics address: %d, want 404", c)
	}

	// Info is read all along while the daemon reloads.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				_ = d.Info()
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	steps <- reloadStep{err: errors.New("vsp.toml:3:1: log_level: bad")}
	reload <- os.Interrupt
	info = waitInfo("reload error", func(i DaemonInfo) bool { return i.ReloadError != "" })
	if info.ReloadError != "vsp.toml:3:1: log_level: bad" || info.Metrics != addr || info.Settings[0] != first[0] {
		t.Errorf("after a failed reload: %+v", info)
	}

	loaded := info.SettingsLoaded
	steps <- reloadStep{metrics: "", settings: second}
	reload <- os.Interrupt
	info = waitInfo("reloaded", func(i DaemonInfo) bool { return i.SettingsLoaded.After(loaded) })
	if info.ReloadError != "" || info.Metrics != "" || info.Settings[0] != second[0] {
		t.Errorf("after a good reload: %+v", info)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("metrics still served on %s after it was turned off", addr)
	}
}
