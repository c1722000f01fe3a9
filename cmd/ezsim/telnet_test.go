package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// telnetSession drives the real telnet program through pipes.
type telnetSession struct {
	t    *testing.T
	cmd  *exec.Cmd
	in   io.WriteCloser
	mu   sync.Mutex
	out  strings.Builder
	read int // bytes of out already consumed by expect
	done chan struct{}
}

func startTelnet(t *testing.T, addr string) *telnetSession {
	t.Helper()
	bin := testenv.Tool(t, "telnet")
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	ts := &telnetSession{t: t, cmd: exec.CommandContext(ctx, bin, host, port), done: make(chan struct{})}
	var err error
	if ts.in, err = ts.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := ts.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	ts.cmd.Stderr = ts.cmd.Stdout
	if err := ts.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(ts.done)
		b := make([]byte, 4096)
		for {
			n, err := stdout.Read(b)
			ts.mu.Lock()
			ts.out.Write(b[:n])
			ts.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { ts.in.Close(); ts.cmd.Wait() })
	return ts
}

// expect waits for marker in the output after what was already consumed
// and returns the text up to and including it.
func (ts *telnetSession) expect(marker string) string {
	ts.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ts.mu.Lock()
		all := ts.out.String()
		ts.mu.Unlock()
		if i := strings.Index(all[ts.read:], marker); i >= 0 {
			got := all[ts.read : ts.read+i+len(marker)]
			ts.read += i + len(marker)
			return got
		}
		select {
		case <-ts.done:
			ts.mu.Lock()
			all = ts.out.String()
			ts.mu.Unlock()
			if strings.Contains(all[ts.read:], marker) {
				continue
			}
			ts.t.Fatalf("telnet ended before %q; output:\n%s", marker, all[ts.read:])
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			ts.t.Fatalf("no %q from telnet; output:\n%s", marker, all[ts.read:])
		}
	}
}

func (ts *telnetSession) line(s string) {
	ts.t.Helper()
	if _, err := io.WriteString(ts.in, s+"\n"); err != nil {
		ts.t.Fatal(err)
	}
}

// servedFingerprint polls the TLS port until it serves want (or fails).
func servedFingerprint(t *testing.T, addr, want string) {
	t.Helper()
	var got string
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
			MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10,
			CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA}, InsecureSkipVerify: true,
		})
		if err == nil {
			sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
			c.Close()
			got = "sha256:" + hex.EncodeToString(sum[:])
			if got == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("served fingerprint %s, want %s", got, want)
}

var fpLine = regexp.MustCompile(`fingerprint: (sha256:[0-9a-f]{64})`)

// TestTelnetSSLSetup is acceptance item 1: the real telnet client runs the
// note's SSL set-up; after reset the saved certificate is served, while an
// unsaved one is lost.
func TestTelnetSSLSetup(t *testing.T) {
	flash := filepath.Join(t.TempDir(), "flash.json")
	s := startSim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--console", "127.0.0.1:0", "--flash", flash, "--ip", "127.0.0.1")

	ts := startTelnet(t, s.console)
	ts.expect("password:")
	ts.line("sollae")
	ts.expect("lsh>")
	ts.line("rsa keygen 512")
	out := ts.expect("lsh>")
	for _, want := range []string{"please wait", "found", "rsa: RSA key pair(public/private key) generated.", "rsa: key validation OK"} {
		if !strings.Contains(out, want) {
			t.Fatalf("rsa keygen output lacks %q:\n%s", want, out)
		}
	}
	ts.line("rsa test")
	if out := ts.expect("lsh>"); !strings.Contains(out, "rsa: key validation OK") {
		t.Fatalf("rsa test: %q", out)
	}
	ts.line("cert new")
	if out := ts.expect("lsh>"); !strings.Contains(out, "BEGIN CERTIFICATE") || !strings.Contains(out, "replaced to new one") {
		t.Fatalf("cert new: %q", out)
	}
	ts.line("cert view")
	out = ts.expect("lsh>")
	m := fpLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "CN=127.0.0.1, emailAddress=support@eztcp.com") || strings.Contains(out, "WARNING") {
		t.Fatalf("cert view: %q", out)
	}
	saved := m[1]
	if saved == s.fingerprint {
		t.Fatal("cert new did not make a new certificate")
	}
	ts.line("ssl save aa55cc33")
	if out := ts.expect("lsh>"); !strings.Contains(out, "save keyRSA CERT_host ok") {
		t.Fatalf("ssl save: %q", out)
	}
	ts.line("reset")
	ts.expect("rebooting...")
	<-ts.done
	servedFingerprint(t, s.listen, saved)

	// Without ssl save, a new key and certificate are lost at reset.
	ts = startTelnet(t, s.console)
	ts.expect("password:")
	ts.line("sollae")
	ts.expect("lsh>")
	ts.line("rsa keygen 512")
	ts.expect("lsh>")
	ts.line("cert new")
	ts.expect("lsh>")
	ts.line("cert view")
	m = fpLine.FindStringSubmatch(ts.expect("lsh>"))
	if m == nil || m[1] == saved {
		t.Fatalf("second cert view: %v", m)
	}
	servedFingerprint(t, s.listen, m[1]) // in use until the reset
	ts.line("reset")
	ts.expect("rebooting...")
	<-ts.done
	servedFingerprint(t, s.listen, saved)
	s.stop(t)

	// And the saved pair survives a restart of the process.
	s2 := startSim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--console", "off", "--flash", flash, "--ip", "127.0.0.1")
	if s2.fingerprint != saved {
		t.Fatalf("after restart %s, want %s", s2.fingerprint, saved)
	}
	s2.stop(t)
}
