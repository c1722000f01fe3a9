//go:build linux

package main

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestExampleModbusPoll runs docs/examples/modbuspoll as its README says: a
// slave on ezsim's serial pty, a master polling through the vsp port. The
// master writes a register first and must read it back in every poll, and
// the slave's request counter (register 0) must rise from poll to poll.
func TestExampleModbusPoll(t *testing.T) {
	bin := exampleBin(t, "modbuspoll")
	equip, link := examplePort(t)
	slave := startBg(t, bin, "serve", equip)
	slave.wait(t, "modbus slave 1 on", 10*time.Second)

	out := runExample(t, bin, "poll", "-n", "5", "-interval", "50ms", "-timeout", "20s", "-write", "2=4660", link)
	if !strings.Contains(out, "wrote register 2 = 4660") || !strings.Contains(out, "polls 5: ok 5, failed 0") {
		t.Fatalf("poll output:\n%s", out)
	}
	re := regexp.MustCompile(`(?m)^poll (\d): registers 0-3 = \[(\d+) 101 4660 103\]`)
	m := re.FindAllStringSubmatch(out, -1)
	if len(m) != 5 {
		t.Fatalf("want 5 polls reading [counter 101 4660 103], got %d:\n%s", len(m), out)
	}
	last := 0
	for _, p := range m {
		n, _ := strconv.Atoi(p[2])
		if n <= last {
			t.Fatalf("request counter did not rise (%d after %d):\n%s", n, last, out)
		}
		last = n
	}
}

// TestExampleXmodem sends a 20 KiB file with docs/examples/xmodem from the
// vsp port to a receiver on ezsim's serial pty, and the file arrives intact.
func TestExampleXmodem(t *testing.T) {
	bin := exampleBin(t, "xmodem")
	equip, link := examplePort(t)
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "firmware.bin"), filepath.Join(dir, "received.bin")
	data := make([]byte, 20<<10+77)
	r := rand.New(rand.NewPCG(8, 8))
	for i := range data {
		data[i] = byte(r.IntN(256))
	}
	data[len(data)-1] = 0x55 // XMODEM cannot carry trailing 0x1A bytes
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}

	recv := startBg(t, bin, "receive", "-timeout", "20s", equip, dst)
	out := runExample(t, bin, "send", "-timeout", "20s", link, src)
	if !strings.Contains(out, "sent 20557 bytes") {
		t.Fatalf("send output:\n%s", out)
	}
	recv.wait(t, "received 20557 bytes", 20*time.Second)
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("received file (%d bytes) differs from the one sent (%d bytes)", len(got), len(data))
	}
}
