//go:build linux

package device

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestConsoleLineFlood: a console client sending a megabyte without a line
// end gets "line too long", the reader never holds more than maxLine bytes
// of it (measured as bytes allocated while reading), and the next line
// works.
func TestConsoleLineFlood(t *testing.T) {
	in := io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("x"), 1<<20)), strings.NewReader("\r\nhelp\r\n"))
	r := newTelnetReader(in, io.Discard)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := r.readLine()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, errLineTooLong) {
		t.Fatalf("readLine after a 1 MiB line: %v, want errLineTooLong", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("reading a 1 MiB line allocated %d bytes; the line is capped at %d", got, maxLine)
	}
	if l, err := r.readLine(); err != nil || l != "help" {
		t.Fatalf("next line %q, %v; want help", l, err)
	}
}

// TestATLineFlood: equipment sending a megabyte of command characters
// without a CR leaves at most maxATLine of them in the AT line buffer, and
// the line is answered ERROR when it ends (through the running simulator).
func TestATLineFlood(t *testing.T) {
	a := &atc{state: atStateCmd}
	chunk := bytes.Repeat([]byte("A"), 4096)
	for range 256 {
		a.fromSerial(context.Background(), chunk)
		if len(a.line) > maxATLine || cap(a.line) > 2*maxATLine+64 {
			t.Fatalf("AT line buffer grew to len %d cap %d; bound %d", len(a.line), cap(a.line), maxATLine)
		}
	}
	if !a.lineBad {
		t.Fatal("an overlong AT line is not marked bad")
	}

	link := filepath.Join(t.TempDir(), "ttyEQ")
	startDevice(t, Config{Mode: "ATC", Serial: "pty:" + link, MAC: "00:30:f9:00:00:26"})
	f, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eq := &equipment{t: t, f: f}
	eq.send("ATE0\r")
	eq.expect("OK\r\n")
	eq.send("AT" + strings.Repeat("E", 1<<20) + "\r")
	eq.expect("\r\nERROR\r\n")
	eq.send("AT\r")
	eq.expect("\r\nOK\r\n")
}
