package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/device"
	"github.com/vsp-dev/vsp/internal/testenv"
	"github.com/vsp-dev/vsp/tlsconn"
)

var builder testenv.Builder

// sim is a running ezsim binary.
type sim struct {
	cmd         *exec.Cmd
	listen      string
	fingerprint string
	console     string
	status      string
	stderr      *bytes.Buffer
}

// startSim runs ezsim with args and parses its stdout contract.
func startSim(t *testing.T, args ...string) *sim {
	t.Helper()
	bin := builder.Build(t, "ezsim")
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &sim{cmd: cmd, stderr: new(bytes.Buffer)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	want := 1
	if slicesContains(args, "--ssl") {
		want++
	}
	if i := indexOf(args, "--console"); i >= 0 && args[i+1] != "off" && args[i+1] != "" {
		want++
	}
	if indexOf(args, "--status-socket") >= 0 {
		want++
	}
	timeout := time.After(30 * time.Second)
	for got := 0; got < want; got++ {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("ezsim exited early: %s", s.stderr)
			}
			k, v, _ := strings.Cut(l, ": ")
			switch {
			case (k == "listen" || k == "connect") && got == 0:
				s.listen = v
			case k == "fingerprint" && got == 1:
				s.fingerprint = v
			case k == "console":
				s.console = v
			case k == "status":
				s.status = v
			default:
				t.Fatalf("unexpected stdout line %d: %q", got, l)
			}
		case <-timeout:
			t.Fatalf("ezsim printed no contract lines: %s", s.stderr)
		}
	}
	go func() {
		for range lines {
		}
	}()
	return s
}

// stop sends SIGTERM and expects exit status 0.
func (s *sim) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("ezsim exit: %v\n%s", err, s.stderr)
	}
}

func slicesContains(a []string, v string) bool { return indexOf(a, v) >= 0 }

func indexOf(a []string, v string) int {
	for i, x := range a {
		if x == v {
			return i
		}
	}
	return -1
}

func TestOutputContractAndFlash(t *testing.T) {
	flash := filepath.Join(t.TempDir(), "flash.json")
	args := []string{"--listen", "127.0.0.1:0", "--ssl", "--serial", "echo", "--key-bits", "512", "--ip", "10.1.0.1", "--flash", flash, "--model", "CSE-H25", "--console", "off"}
	s := startSim(t, args...)
	if !strings.HasPrefix(s.fingerprint, "sha256:") || len(s.fingerprint) != 7+64 {
		t.Fatalf("fingerprint line %q", s.fingerprint)
	}
	c, err := tls.Dial("tcp", s.listen, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA}, InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c.ConnectionState().PeerCertificates[0].Raw)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != s.fingerprint {
		t.Fatalf("served %s, printed %s", got, s.fingerprint)
	}
	c.Write([]byte("ping"))
	buf := make([]byte, 4)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("echo %q %v", buf, err)
	}
	c.Close()
	s.stop(t)

	s2 := startSim(t, args...)
	if s2.fingerprint != s.fingerprint {
		t.Fatalf("fingerprint changed across restart with --flash: %s -> %s", s.fingerprint, s2.fingerprint)
	}
	s2.stop(t)
}

// TestOpenSSLClient is acceptance item 4: keys of 512, 768 and 1024 bits
// each complete a TLS 1.0 TLS_RSA_WITH_AES_256_CBC_SHA handshake with
// openssl s_client (SECLEVEL=0) and with vsp's legacy profile, against the
// device-faithful server (--server-tls device).
func TestOpenSSLClient(t *testing.T) {
	openssl := testenv.Tool(t, "openssl")
	for _, bits := range []string{"512", "768", "1024"} {
		t.Run(bits, func(t *testing.T) {
			s := startSim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", bits, "--console", "off", "--server-tls", "device")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, openssl, "s_client", "-connect", s.listen, "-tls1", "-cipher", "AES256-SHA@SECLEVEL=0")
			cmd.Stdin = strings.NewReader("")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("openssl: %v\n%s", err, out)
			}
			if !bytes.Contains(out, []byte("Cipher    : AES256-SHA")) || !bytes.Contains(out, []byte("Protocol  : TLSv1\n")) {
				t.Fatalf("openssl output lacks TLSv1 AES256-SHA:\n%s", out)
			}
			if !bytes.Contains(out, []byte("O = Sollae Systems")) || !bytes.Contains(out, []byte("public key is "+bits+" bit")) {
				t.Fatalf("subject or key size:\n%s", out)
			}
			// The device serves one client at a time: until it has seen
			// s_client go, it refuses the next one (a real ezTCP does too).
			type probe struct {
				cert *x509.Certificate
				info tlsconn.Info
				err  error
			}
			pr := testenv.Await(t, 10*time.Second, "a legacy-profile handshake", func() (p probe) {
				p.cert, p.info, p.err = tlsconn.Probe(ctx, s.listen, tlsconn.ProfileLegacy, 10*time.Second)
				return p
			}, func(p probe) bool { return p.err == nil })
			cert, info := pr.cert, pr.info
			if info.Version != "TLS 1.0" || info.Cipher != "TLS_RSA_WITH_AES_256_CBC_SHA" || info.KeyBits != cert.PublicKey.(*rsa.PublicKey).N.BitLen() || strconv.Itoa(info.KeyBits) != bits {
				t.Fatalf("legacy profile negotiated %+v", info)
			}
			if info.Fingerprint != s.fingerprint {
				t.Fatalf("legacy profile saw %s, ezsim printed %s", info.Fingerprint, s.fingerprint)
			}
			s.stop(t)
		})
	}
}

func TestStatusSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "status.sock")
	s := startSim(t, "--listen", "127.0.0.1:0", "--ssl", "--key-bits", "512", "--console", "127.0.0.1:0", "--status-socket", sock)
	if s.console == "" || s.status != sock {
		t.Fatalf("console %q status %q", s.console, s.status)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"ezsim", "status", "--status-socket", sock}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var sts []device.Status
	if err := json.Unmarshal(out.Bytes(), &sts); err != nil || len(sts) != 1 {
		t.Fatalf("status JSON: %v\n%s", err, out.String())
	}
	st := sts[0]
	if st.SSL.State != 1 || st.SSL.Cipher != "RSA_AES_256_CBC_SHA" || st.SSL.Fingerprint != s.fingerprint || st.Ports[0].TCPState != "LISTEN" {
		t.Fatalf("status %+v", st)
	}
	s.stop(t)
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--no-such-flag"}, 2, "not defined"},
		{[]string{"--count", "0"}, 2, "--count"},
		{[]string{"--listen", "127.0.0.1:0", "--ssl", "--baud", "230400", "--console", "off"}, 1, device.RuleSSLMaxBaud},
		{[]string{"--listen", "127.0.0.1:0", "--model", "CSE-H25", "--com2", "--console", "off"}, 1, device.RuleModelPorts},
		{[]string{"--listen", "127.0.0.1:0", "--ssl", "--rfc2217", "--console", "off"}, 1, device.RuleSSLRFC2217},
		{[]string{"--listen", "127.0.0.1:0", "--ssl", "--key-bits", "2048", "--console", "off"}, 1, device.RuleKeyBits},
		{[]string{"--listen", "127.0.0.1:0", "--model", "CSE-X99", "--console", "off"}, 1, "model"},
		{[]string{"--listen", "127.0.0.1:0", "--model", "CSE-M32", "--ssl", "--com2", "--console", "off"}, 1, device.RuleSSLCOM2},
		{[]string{"--listen", "127.0.0.1:0", "--model", "CSE-H25", "--ssl", "--multi-monitoring", "--console", "off"}, 1, device.RuleSSLMultiMonitoring},
		{[]string{"--listen", "127.0.0.1:0", "--ssl", "--ssh", "--console", "off"}, 1, device.RuleSSLSSH},
		{[]string{"--listen", "127.0.0.1:0", "--ssl", "--mode", "u2s", "--console", "off"}, 1, device.RuleSSLU2S},
		{[]string{"--mode", "cod", "--console", "off"}, 1, "needs a peer"},
		{[]string{"--mode", "cod", "--peer", "127.0.0.1:1", "--reconnect-delay", "0s", "--console", "off"}, 2, "--reconnect-delay"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			bin := builder.Build(t, "ezsim")
			cmd := exec.Command(bin, tc.args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit %v, want %d; stderr %s", err, tc.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestCODBinary runs the ezsim binary as a TLS client (COD mode with SSL and
// Send MAC Address) against a TLS server of the test's, as vsp's listening
// port would be.
func TestCODBinary(t *testing.T) {
	key, err := device.GenerateKey(1024, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := device.NewCertificate(key, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		MinVersion: tls.VersionTLS10, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA},
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s := startSim(t, "--mode", "cod", "--peer", ln.Addr().String(), "--ssl", "--send-mac", "--mac", "00:30:f9:00:00:07",
		"--key-bits", "512", "--console", "off", "--reconnect-delay", "200ms")
	if s.listen != ln.Addr().String() || s.fingerprint == "" {
		t.Fatalf("contract: connect %q fingerprint %q", s.listen, s.fingerprint)
	}
	for round := range 2 { // the second round checks the reconnect after the peer dropped
		ch := make(chan net.Conn, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				close(ch)
				return
			}
			ch <- c
		}()
		var c net.Conn
		select {
		case c = <-ch:
		case <-time.After(20 * time.Second):
			t.Fatalf("round %d: ezsim did not connect: %s", round, s.stderr)
		}
		if c == nil {
			t.Fatal("accept failed")
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 14+4)
		c.Write([]byte("echo"))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "0030F9000007\r\necho" {
			t.Fatalf("round %d: got %q, %v", round, b, err)
		}
		if st := c.(*tls.Conn).ConnectionState(); st.Version != tls.VersionTLS10 {
			t.Fatalf("version %s", tls.VersionName(st.Version))
		}
		c.Close()
	}
	s.stop(t)
}
