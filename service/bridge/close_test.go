//go:build linux

package bridge

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/pty"
	"github.com/vsp-dev/vsp/tlsconn"
)

// lockedBuffer is a log sink safe for the port's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestCloseCountsDroppedBytes: deleting a port whose outage buffer holds
// application bytes logs how many are dropped and counts them.
func TestCloseCountsDroppedBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody there: the link stays down
	var logs lockedBuffer
	link := filepath.Join(t.TempDir(), "ttyDROP")
	p, err := StartPort(PortSpec{
		Name:    "drop",
		PTY:     pty.Config{Link: link},
		Devices: []string{addr},
		Link:    tlsconn.Config{Profile: tlsconn.ProfileOff},
		Bridge:  BridgeConfig{StaleData: StaleKeep, Backoff: tlsconn.Backoff{Min: time.Hour, Max: time.Hour}},
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, err := os.OpenFile(link, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	msg := []byte("never delivered")
	if _, err := f.Write(msg); err != nil {
		t.Fatal(err)
	}
	testenv.Await(t, 5*time.Second, "the bytes in the outage buffer", func() int { return p.Status().Buffered },
		func(n int) bool { return n == len(msg) })
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if got := p.Status().PossiblyLost; got != uint64(len(msg)) {
		t.Errorf("possibly_lost = %d after Close, want %d", got, len(msg))
	}
	if want := "dropped=15"; !strings.Contains(logs.String(), want) {
		t.Errorf("log does not say %q:\n%s", want, logs.String())
	}
}
