//go:build linux

package device

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// peerServer is the test's TCP server a COD device connects to.
func peerServer(t *testing.T, tcfg *tls.Config) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if tcfg != nil {
		return tls.NewListener(ln, tcfg)
	}
	return ln
}

// acceptWithin accepts one connection or fails after 20 s.
func acceptWithin(t *testing.T, ln net.Listener) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("accept: %v", r.err)
		}
		t.Cleanup(func() { r.c.Close() })
		return r.c
	case <-time.After(20 * time.Second):
		ln.Close()
		t.Fatal("device did not connect")
	}
	return nil
}

func readN(t *testing.T, r io.Reader, n int) string {
	t.Helper()
	if c, ok := r.(interface{ SetReadDeadline(time.Time) error }); ok {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

func TestCOD(t *testing.T) {
	srvKey, err := GenerateKey(1024, nil)
	if err != nil {
		t.Fatal(err)
	}
	der, err := NewCertificate(srvKey, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srvTLS := &tls.Config{
		MinVersion:   tls.VersionTLS10,
		CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA},
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: srvKey}},
	}
	for _, ssl := range []bool{false, true} {
		name := "plain"
		if ssl {
			name = "ssl"
		}
		t.Run(name, func(t *testing.T) {
			var tcfg *tls.Config
			if ssl {
				tcfg = srvTLS
			}
			ln := peerServer(t, tcfg)
			d := startDevice(t, Config{Mode: "COD", Peer: ln.Addr().String(), SSL: ssl, KeyBits: 512, SendMAC: true,
				MAC: "00:30:f9:12:ab:cd", ReconnectDelay: 200 * time.Millisecond})
			c := acceptWithin(t, ln)
			if got := readN(t, c, 14); got != "0030F912ABCD\r\n" {
				t.Fatalf("MAC message %q", got)
			}
			if ssl {
				st := c.(*tls.Conn).ConnectionState()
				if st.Version != tls.VersionTLS10 || st.CipherSuite != tls.TLS_RSA_WITH_AES_256_CBC_SHA {
					t.Fatalf("negotiated %s %s", tls.VersionName(st.Version), tls.CipherSuiteName(st.CipherSuite))
				}
			}
			roundTrip(t, c, "through COD\r\n")
			waitFor(t, func() bool {
				st := d.Status()
				ok := st.Ports[0].TCPState == "ESTABLISHED"
				if ssl {
					ok = ok && st.SSL.State == 8 && st.SSL.Cipher == "RSA_AES_256_CBC_SHA"
				}
				return ok
			})
			// The peer drops the connection: the device reconnects after the delay.
			c.Close()
			c2 := acceptWithin(t, ln)
			if got := readN(t, c2, 14); got != "0030F912ABCD\r\n" {
				t.Fatalf("MAC message after reconnect %q", got)
			}
			roundTrip(t, c2, "again")
		})
	}
}

func TestCODByteCountAndGuardTime(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyEQ")
	ln := peerServer(t, nil)
	d := startDevice(t, Config{Mode: "COD", Peer: ln.Addr().String(), Serial: "pty:" + link, ByteCount: 5, GuardTime: 50})
	eq, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer eq.Close()
	eq.Write([]byte("abc"))
	// Fewer than Byte Count bytes: no connection, once the device has them.
	waitFor(t, func() bool { return d.Status().Ports[0].Counters.SioRx == 3 })
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(200 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Fatal("device connected before Byte Count bytes arrived")
	}
	ln.(*net.TCPListener).SetDeadline(time.Time{})
	eq.Write([]byte("de"))
	c := acceptWithin(t, ln)
	if got := readN(t, c, 5); got != "abcde" {
		t.Fatalf("kept bytes %q", got)
	}
	// Guard Time 500 ms: bytes written in quick succession arrive as one send.
	for _, s := range []string{"x", "y", "z"} {
		eq.Write([]byte(s))
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 16)
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "xyz" {
		t.Fatalf("guard-time group %q, %v", b[:n], err)
	}
}

func TestCODConnectRetry(t *testing.T) {
	// Nobody listens at first; the device retries after ReconnectDelay.
	// Another program may take the free port between the probe and the
	// test's own listener: then try again with another port.
	for try := 1; ; try++ {
		probe, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := probe.Addr().String()
		probe.Close()
		log, failed := countMessages(t, "connect failed")
		d := startDeviceLog(t, Config{Mode: "COD", Peer: addr, ReconnectDelay: 100 * time.Millisecond}, log)
		testenv.Eventually(t, 10*time.Second, "two refused connection attempts", func() bool { return failed.Load() >= 2 })
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			if try < 3 {
				t.Logf("port %s taken meanwhile (%v); again with another", addr, err)
				continue
			}
			t.Fatalf("port %s taken meanwhile: %v", addr, err)
		}
		defer ln.Close()
		c := acceptWithin(t, ln)
		roundTrip(t, c, "late peer")
		if st := d.Status(); st.Mode != "COD" || !strings.Contains(st.Ports[0].Peer, "127.0.0.1") {
			t.Fatalf("status %+v", st.Ports[0])
		}
		return
	}
}

func TestU2S(t *testing.T) {
	tests := []struct {
		name      string
		eventByte int
		send      string
		want      []string
	}{
		{"frame timer", 0, "ping", []string{"ping"}},
		{"event byte", 4, "abcdefgh", []string{"abcd", "efgh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDevice(t, Config{Mode: "U2S", Peer: "0.0.0.0:0", EventByte: tt.eventByte, DataFrame: 2})
			c, err := net.Dial("udp", d.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(tt.send)); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for _, w := range tt.want {
				b := make([]byte, 2048)
				n, err := c.Read(b)
				if err != nil || string(b[:n]) != w {
					t.Fatalf("datagram %q, %v; want %q", b[:n], err, w)
				}
			}
			if st := d.Status(); st.Ports[0].TCPState != "UDP" || st.Ports[0].Counters.NetRx != uint64(len(tt.send)) {
				t.Fatalf("status %+v", st.Ports[0])
			}
		})
	}
	// A fixed peer receives the datagrams even when it never sent one.
	peer, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	d := startDevice(t, Config{Mode: "U2S", Peer: peer.LocalAddr().String()})
	c, err := net.Dial("udp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("to fixed peer"))
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 2048)
	n, _, err := peer.ReadFrom(b)
	if err != nil || string(b[:n]) != "to fixed peer" {
		t.Fatalf("fixed peer got %q, %v", b[:n], err)
	}
}

// equipment plays the device on the serial side of an ATC port.
type equipment struct {
	t   *testing.T
	f   *os.File
	buf []byte
}

func (e *equipment) send(s string) {
	e.t.Helper()
	if _, err := e.f.Write([]byte(s)); err != nil {
		e.t.Fatal(err)
	}
}

// expect reads until want appears and returns what came before it.
func (e *equipment) expect(want string) string {
	e.t.Helper()
	e.f.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		if i := strings.Index(string(e.buf), want); i >= 0 {
			out := string(e.buf[:i])
			e.buf = e.buf[i+len(want):]
			return out
		}
		b := make([]byte, 1024)
		n, err := e.f.Read(b)
		e.buf = append(e.buf, b[:n]...)
		if err != nil {
			e.t.Fatalf("waiting for %q: %v; got %q", want, err, e.buf)
		}
	}
}

func TestATC(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyEQ")
	peer := peerServer(t, nil)
	d := startDevice(t, Config{Mode: "ATC", Serial: "pty:" + link, MAC: "00:30:f9:00:00:25"})
	f, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	eq := &equipment{t: t, f: f}

	eq.send("AT\r")
	eq.expect("AT\r\r\nOK\r\n") // echo on by default
	eq.send("ATE0\r")
	eq.expect("\r\nOK\r\n")
	eq.send("ATV0\r")
	eq.expect("0\r")
	eq.send("ATBOGUS\r")
	eq.expect("4\r")
	eq.send("ATV1I7\r")
	if got := eq.expect("\r\nOK\r\n"); !strings.Contains(got, "00:30:f9:00:00:25") {
		t.Fatalf("ATI7: %q", got)
	}
	_, port, _ := net.SplitHostPort(peer.Addr().String())
	eq.send("AT+PRIP=127.0.0.1;+PRP=" + port + "\r")
	eq.expect("\r\nOK\r\n")
	eq.send("AT+PRP?\r")
	if got := eq.expect("\r\nOK\r\n"); !strings.Contains(got, port) {
		t.Fatalf("AT+PRP?: %q", got)
	}

	// ATD: active open to AT+PRIP:AT+PRP.
	eq.send("ATD\r")
	eq.expect("\r\nCONNECT\r\n")
	c := acceptWithin(t, peer)
	c.SetDeadline(time.Now().Add(15 * time.Second))
	eq.send("serial to net")
	if got := readN(t, c, len("serial to net")); got != "serial to net" {
		t.Fatalf("peer got %q", got)
	}
	c.Write([]byte("net to serial"))
	eq.expect("net to serial")
	if st := d.Status(); st.Ports[0].TCPState != "ESTABLISHED" {
		t.Fatalf("tcp state %s", st.Ports[0].TCPState)
	}

	// +++ with guard times escapes to command state; the peer sees +++ too.
	time.Sleep(escapeGuard + 100*time.Millisecond)
	eq.send("+++")
	eq.expect("\r\nOK\r\n")
	if got := readN(t, c, 3); got != "+++" {
		t.Fatalf("peer got %q", got)
	}
	eq.send("ATO\r")
	eq.expect("\r\nCONNECT\r\n")
	eq.send("online again")
	if got := readN(t, c, len("online again")); got != "online again" {
		t.Fatalf("peer got %q", got)
	}
	// "+++" inside data (no guard time) does not escape.
	eq.send("a+++b")
	if got := readN(t, c, 5); got != "a+++b" {
		t.Fatalf("peer got %q", got)
	}
	time.Sleep(escapeGuard + 100*time.Millisecond)
	eq.send("+++")
	eq.expect("\r\nOK\r\n")
	readN(t, c, 3)
	eq.send("ATH\r")
	eq.expect("\r\nOK\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("session not closed by ATH")
	}

	// ATA: passive open on the local port; the peer closing gives NO CARRIER.
	eq.send("ATA\r")
	var addr net.Addr
	waitFor(t, func() bool { addr = d.Addr(); return addr != nil })
	c2, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	eq.expect("\r\nCONNECT\r\n")
	c2.Write([]byte("hello equipment"))
	eq.expect("hello equipment")
	c2.Close()
	eq.expect("\r\nNO CARRIER\r\n")
	eq.send("ATO\r")
	eq.expect("\r\nNO CARRIER\r\n")
}

func TestServerTLSDeviceProfile(t *testing.T) {
	d := startDevice(t, Config{SSL: true, KeyBits: 512, ServerTLS: "device"})
	c, err := tls.Dial("tcp", d.Addr().String(), &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true})
	if err == nil {
		c.Close()
		t.Fatal("device profile accepted a TLS 1.2-only client")
	}
	// The refused handshake's session ends asynchronously; until it has,
	// the device (one client in T2S) refuses a second one.
	waitFor(t, func() bool { return d.Status().Ports[0].TCPState == "LISTEN" })
	c, err = tls.Dial("tcp", d.Addr().String(), device10())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "tls 1.0")
}

// TestLimitsAtRunTime checks the SSL limits where a running device is
// changed through the API (the RFC 2217 hook and the console use it): each
// refusal names its rule and the running configuration keeps working.
func TestLimitsAtRunTime(t *testing.T) {
	d := startDevice(t, Config{Model: "CSE-M32", SSL: true, KeyBits: 512, Line: Serial{Baud: 115200}})
	p := d.Port("COM1")
	tests := []struct {
		name string
		err  error
		rule string
	}{
		{"baud 230400", p.SetSerial(Serial{Baud: 230400}), RuleSSLMaxBaud},
		{"baud 921600", p.SetSerial(Serial{Baud: 921600}), RuleSSLMaxBaud},
		{"com2 on", d.consoleSet([]string{"com2", "on"}), RuleSSLCOM2},
		{"rfc2217 on", d.consoleSet([]string{"rfc2217", "on"}), RuleSSLRFC2217},
		{"ssh on", d.consoleSet([]string{"ssh", "on"}), RuleSSLSSH},
		{"mode u2s", d.consoleSet([]string{"mode", "u2s"}), RuleSSLU2S},
		{"mm on (M32 has none)", d.consoleSet([]string{"mm", "on"}), RuleModelFeature},
	}
	for _, tt := range tests {
		var le *LimitError
		if !errors.As(tt.err, &le) || le.Rule != tt.rule || !strings.Contains(tt.err.Error(), "rule "+tt.rule) {
			t.Errorf("%s: %v, want rule %s", tt.name, tt.err, tt.rule)
		}
	}
	if b := p.Serial().Baud; b != 115200 {
		t.Fatalf("baud changed to %d", b)
	}
	if st := d.Status(); len(st.Ports) != 2 || st.Ports[1].Enabled || st.Mode != "T2S" {
		t.Fatalf("status after refusals: %+v", st)
	}
	c, err := tls.Dial("tcp", d.Addr().String(), device10())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "still 115200")
	// Multi Monitoring on a CSE-H25 with SSL.
	h25 := startDevice(t, Config{Model: "CSE-H25", SSL: true, KeyBits: 512})
	var le *LimitError
	if err := h25.consoleSet([]string{"mm", "on"}); !errors.As(err, &le) || le.Rule != RuleSSLMultiMonitoring {
		t.Fatalf("mm on H25 with SSL: %v", err)
	}
}

// TestKeepAliveDefaults checks the device-side keep-alive of a T2S session:
// a probe every 10 s, dropped after 4 unanswered ones, and none with a
// Timeout set.
func TestKeepAliveDefaults(t *testing.T) {
	for _, tt := range []struct {
		name                  string
		cfg                   Config
		on, idle, intvl, cnts int
	}{
		{"defaults", Config{}, 1, 10, 10, 4},
		{"timeout set", Config{Timeout: 30 * time.Second}, 0, -1, -1, -1},
		{"off", Config{KeepAlive: -1}, 0, -1, -1, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := startDevice(t, tt.cfg)
			c, err := net.Dial("tcp", d.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c, "ka")
			m := d.Ports()[0].currentMode().(*t2s)
			m.mu.Lock()
			raw := m.sess.raw.(*countingConn).Conn
			m.mu.Unlock()
			conn, ok := raw.(syscall.Conn)
			if !ok {
				t.Fatalf("session connection %T has no SyscallConn", raw)
			}
			on, idle, intvl, cnt, err := keepAliveOpts(conn)
			if err != nil {
				t.Fatal(err)
			}
			if on != tt.on || (tt.on == 1 && (idle != tt.idle || intvl != tt.intvl || cnt != tt.cnts)) {
				t.Fatalf("keep-alive on=%d idle=%d intvl=%d cnt=%d", on, idle, intvl, cnt)
			}
		})
	}
}

func TestT2SEventByteTimeoutSendMAC(t *testing.T) {
	link := filepath.Join(t.TempDir(), "ttyEQ")
	d := startDevice(t, Config{Serial: "pty:" + link, EventByte: 4, SendMAC: true, MAC: "00:30:f9:00:00:02", Timeout: time.Second})
	eq, err := os.OpenFile(link, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer eq.Close()
	eq.Write([]byte("abcdef"))
	waitFor(t, func() bool { st := d.Status().Ports[0]; return st.Buffered == 4 && st.Counters.Dropped == 2 })
	c, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// MAC first, then the Event Byte buffer, then live data.
	if got := readN(t, c, 14+4); got != "0030F9000002\r\nabcd" {
		t.Fatalf("connect-time output %q", got)
	}
	eq.Write([]byte("live"))
	if got := readN(t, c, 4); got != "live" {
		t.Fatalf("live data %q", got)
	}
	// Timeout 1 s: the idle session is closed by the device.
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("idle session not closed: %v", err)
	}
	waitFor(t, func() bool { return d.Status().Ports[0].TCPState == "LISTEN" })
}

// TestPacing checks that paced serial lines are not faster than the line
// speed (a lower bound only, which load cannot break).
func TestPacing(t *testing.T) {
	d := startDevice(t, Config{Pacing: true, Line: Serial{Baud: 1200}})
	c, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// 60 chars of 10 bits at 1200 bps occupy the line 0.5 s; the loopback
	// plug is full duplex, so the echo overlaps with the sending.
	msg := strings.Repeat("x", 60)
	start := time.Now()
	roundTrip(t, c, msg)
	if el := time.Since(start); el < 450*time.Millisecond {
		t.Fatalf("60 bytes echoed at 1200 bps in %v, want >= 0.5 s", el)
	}
}
