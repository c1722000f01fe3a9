//go:debug rsa1024min=0

package device

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// msgCounter passes log records on to Handler and counts those whose
// message is msg: a test waits on what the device logged it did.
type msgCounter struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

// countMessages returns a test logger and a counter of its records with
// message msg.
func countMessages(t testing.TB, msg string) (*slog.Logger, *atomic.Int64) {
	n := new(atomic.Int64)
	return slog.New(msgCounter{testLogger(t).Handler(), msg, n}), n
}

func (h msgCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h msgCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return msgCounter{h.Handler.WithAttrs(as), h.msg, h.n}
}

func (h msgCounter) WithGroup(name string) slog.Handler {
	return msgCounter{h.Handler.WithGroup(name), h.msg, h.n}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startDevice starts a device on a free loopback port and closes it at the
// end of the test.
func startDevice(t testing.TB, cfg Config) *Device {
	t.Helper()
	return startDeviceLog(t, cfg, testLogger(t))
}

// startDeviceLog is startDevice with the device logging to log.
func startDeviceLog(t testing.TB, cfg Config, log *slog.Logger) *Device {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	d, err := New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := d.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

// device10 is the client profile of a legacy ezVSP: TLS 1.0, AES256-SHA.
func device10() *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS10,
		MaxVersion:         tls.VersionTLS10,
		CipherSuites:       []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA},
		InsecureSkipVerify: true, // the test checks the fingerprint itself
	}
}

func roundTrip(t testing.TB, c net.Conn, msg string) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(msg)); err != nil {
		t.Fatalf("write: %v", err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if string(got) != msg {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	c.SetDeadline(time.Time{})
}

func TestTLS10EchoKeySizes(t *testing.T) {
	for _, bits := range []int{512, 768, 1024} {
		t.Run(strconv.Itoa(bits), func(t *testing.T) {
			d := startDevice(t, Config{SSL: true, KeyBits: bits, IP: "10.1.0.7"})
			c, err := tls.Dial("tcp", d.Addr().String(), device10())
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			defer c.Close()
			st := c.ConnectionState()
			if st.Version != tls.VersionTLS10 || st.CipherSuite != tls.TLS_RSA_WITH_AES_256_CBC_SHA {
				t.Fatalf("negotiated %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
			}
			cert := st.PeerCertificates[0]
			if got := Fingerprint(cert.Raw); got != d.Fingerprint() {
				t.Fatalf("fingerprint %s, device says %s", got, d.Fingerprint())
			}
			if n := cert.PublicKey.(*rsa.PublicKey).N.BitLen(); n != bits {
				t.Fatalf("key bits %d, want %d", n, bits)
			}
			if cert.SignatureAlgorithm != x509.SHA1WithRSA {
				t.Fatalf("signature %v", cert.SignatureAlgorithm)
			}
			wantSubj := "CN=10.1.0.7,OU=Research,O=Sollae Systems,L=NamGu,ST=Incheon,C=KR"
			if s := cert.Subject.String(); !strings.Contains(s, wantSubj) || !bytes.Contains(cert.RawSubject, append([]byte{0x16, 17}, "support@eztcp.com"...)) {
				t.Fatalf("subject %q", s)
			}
			if !cert.NotAfter.Equal(time.Date(2049, 12, 31, 23, 59, 59, 0, time.UTC)) {
				t.Fatalf("NotAfter %v", cert.NotAfter)
			}
			roundTrip(t, c, "hello ezTCP\r\n")
			big := bytes.Repeat([]byte("0123456789abcdef"), 4096)
			go c.Write(big)
			got := make([]byte, len(big))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, big) {
				t.Fatalf("64 KiB echo: %v", err)
			}
			waitFor(t, func() bool {
				st := d.Status()
				return st.SSL.State == 8 && st.SSL.Cipher == "RSA_AES_256_CBC_SHA" && st.Ports[0].TCPState == "ESTABLISHED"
			})
			waitFor(t, func() bool {
				c := d.Status().Ports[0].Counters
				return c.SioRx == c.SioTx && c.SioTx >= uint64(len(big)) && c.NetTx > c.SioRx && c.NetRx > c.SioTx
			})
		})
	}
}

// The default ServerTLS, "any", also serves clients that ask for newer
// versions ("device" refuses them, as the real device does).
func TestTLSNewerVersions(t *testing.T) {
	d := startDevice(t, Config{SSL: true, KeyBits: 1024})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		c, err := tls.Dial("tcp", d.Addr().String(), &tls.Config{MinVersion: v, MaxVersion: v, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("%s: %v", tls.VersionName(v), err)
		}
		roundTrip(t, c, "x")
		c.Close()
		waitFor(t, func() bool { return d.Status().Ports[0].TCPState == "LISTEN" })
	}
}

func TestPlainEcho(t *testing.T) {
	d := startDevice(t, Config{})
	if d.Fingerprint() != "" {
		t.Fatalf("fingerprint without SSL: %q", d.Fingerprint())
	}
	c, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "plain")
}

func TestSecondClient(t *testing.T) {
	for _, policy := range []string{"refuse", "replace"} {
		t.Run(policy, func(t *testing.T) {
			d := startDevice(t, Config{SecondClient: policy})
			c1, err := net.Dial("tcp", d.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c1.Close()
			roundTrip(t, c1, "one")
			c2, err := net.Dial("tcp", d.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c2.Close()
			loser, winner := c2, c1
			if policy == "replace" {
				loser, winner = c1, c2
			}
			loser.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := loser.Read(make([]byte, 1)); err == nil {
				t.Fatalf("losing client read %d bytes", n)
			} else if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("losing client was not closed")
			}
			roundTrip(t, winner, "two")
		})
	}
}

func TestPTYBackend(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyEQ")
	d := startDevice(t, Config{Serial: "pty:" + link})
	eq, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("open equipment side: %v", err)
	}
	defer eq.Close()
	c, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	eq.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("to equipment\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len("to equipment\n"))
	if _, err := io.ReadFull(eq, got); err != nil || string(got) != "to equipment\n" {
		t.Fatalf("equipment read %q, %v", got, err)
	}
	if _, err := eq.Write([]byte("from equipment\r\n")); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, len("from equipment\r\n"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "from equipment\r\n" {
		t.Fatalf("client read %q, %v", got, err)
	}
	// The equipment closing its side does not break the port.
	eq.Close()
	eq2, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer eq2.Close()
	eq2.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("again"))
	got = make([]byte, 5)
	if _, err := io.ReadFull(eq2, got); err != nil || string(got) != "again" {
		t.Fatalf("after reopen %q, %v", got, err)
	}
}

func TestFlashKeepsFingerprint(t *testing.T) {
	flash := filepath.Join(t.TempDir(), "flash.json")
	d1, err := New(Config{SSL: true, KeyBits: 512, Listen: "127.0.0.1:0", Flash: flash}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d1.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	fp := d1.Fingerprint()
	d1.Close()
	if fi, err := os.Stat(flash); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("flash file: %v %v", fi, err)
	}
	d2 := startDevice(t, Config{SSL: true, KeyBits: 512, Flash: flash})
	if d2.Fingerprint() != fp || fp == "" {
		t.Fatalf("fingerprint changed across restart: %s -> %s", fp, d2.Fingerprint())
	}
}

func TestCloseIdempotent(t *testing.T) {
	d, err := New(Config{Listen: "127.0.0.1:0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	d2 := startDevice(t, Config{})
	c, err := net.Dial("tcp", d2.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "a")
	d2.Close()
	d2.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("session survived Close: %v", err)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 10*time.Second, "the condition", cond)
}
