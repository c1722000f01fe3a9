package tlsconn_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/tlsconn"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// startOpenSSL runs `openssl s_server -rev` (echoes lines reversed) speaking
// TLS 1.0 with AES256-SHA only, like an ezTCP, and returns its address.
func startOpenSSL(t *testing.T, c *testCert) string {
	t.Helper()
	openssl := testenv.Tool(t, "openssl")
	dir := t.TempDir()
	certFile, keyFile := c.writePEM(t, dir)
	// Pick a free port; s_server cannot report an ephemeral one portably.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(addr)

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, openssl, "s_server",
		"-accept", "127.0.0.1:"+port, "-cert", certFile, "-key", keyFile,
		"-tls1", "-cipher", "AES256-SHA@SECLEVEL=0", "-rev", "-naccept", "1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var out []string
		for sc.Scan() {
			out = append(out, sc.Text())
			if strings.HasPrefix(sc.Text(), "ACCEPT") {
				ready <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- errors.New("openssl s_server exited: " + strings.Join(out, " | "))
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("openssl s_server did not start")
	}
	return addr
}

// TestOpenSSLLegacy uses a real third-party TLS 1.0 server.
func TestOpenSSLLegacy(t *testing.T) {
	for _, bits := range []int{512, 1024} {
		t.Run(strconv.Itoa(bits), func(t *testing.T) {
			cert := newCert(t, certOpts{rsaBits: bits, sha1: true})
			addr := startOpenSSL(t, cert)
			conn, info, err := tlsconn.Dial(ctxT(t), addr, tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: cert.pin()}, nil)
			if err != nil {
				t.Fatalf("Dial: %v", err)
			}
			defer conn.Close()
			if info.Version != "TLS 1.0" || info.Cipher != "TLS_RSA_WITH_AES_256_CBC_SHA" || info.KeyBits != bits || info.SigAlg != "SHA1-RSA" {
				t.Errorf("Info %+v", info)
			}
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, "hello serial\n"); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if strings.TrimRight(line, "\r\n") != "laires olleh" {
				t.Errorf("got %q from s_server -rev", line)
			}
		})
	}
}

func TestOpenSSLProbe(t *testing.T) {
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	addr := startOpenSSL(t, cert)
	leaf, info, err := tlsconn.Probe(ctxT(t), addr, tlsconn.ProfileLegacy, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tlsconn.Fingerprint(leaf) != cert.pin() || info.Cipher != "TLS_RSA_WITH_AES_256_CBC_SHA" {
		t.Errorf("Probe: %+v", info)
	}
}

// TestRSA1024MinRefused runs the client half in a child process where
// rsa1024min is back at its default (GODEBUG overrides //go:debug): the
// error must say how to fix it.
func TestRSA1024MinRefused(t *testing.T) {
	if addr := os.Getenv("VSP_TLSCONN_CHILD_ADDR"); addr != "" {
		_, _, err := tlsconn.Dial(t.Context(), addr,
			tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: os.Getenv("VSP_TLSCONN_CHILD_PIN")}, nil)
		if !errors.Is(err, tlsconn.ErrRSAKeyRefused) || !strings.Contains(err.Error(), "rsa1024min=0") ||
			!strings.Contains(err.Error(), "512-bit") {
			t.Fatalf("err = %v, want ErrRSAKeyRefused", err)
		}
		return
	}
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	srv := startServer(t, ezTCPServerConfig(cert))
	cmd := exec.Command(os.Args[0], "-test.run=^TestRSA1024MinRefused$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "GODEBUG=rsa1024min=1", "VSP_TLSCONN_CHILD_ADDR="+srv.addr, "VSP_TLSCONN_CHILD_PIN="+cert.pin())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- PASS: TestRSA1024MinRefused") {
		t.Fatalf("child did not run the check:\n%s", out)
	}
	if sc := srv.next(t); sc.appBytes != 0 {
		t.Errorf("server: %+v", sc)
	}
}
