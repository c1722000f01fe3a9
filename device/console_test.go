package device

import (
	"bytes"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tclient is a minimal Telnet client for the console tests.
type tclient struct {
	t    testing.TB
	c    net.Conn
	buf  []byte
	iacs [][]byte // negotiation commands received
}

func dialConsole(t testing.TB, d *Device) *tclient {
	t.Helper()
	c, err := net.Dial("tcp", d.ConsoleAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tclient{t: t, c: c}
}

// until reads until the text (IAC sequences removed) contains marker and
// returns everything up to and including it.
func (tc *tclient) until(marker string) string {
	tc.t.Helper()
	tc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if i := strings.Index(string(tc.buf), marker); i >= 0 {
			out := string(tc.buf[:i+len(marker)])
			tc.buf = tc.buf[i+len(marker):]
			return out
		}
		b := make([]byte, 4096)
		n, err := tc.c.Read(b)
		for i := 0; i < n; i++ {
			if b[i] == tnIAC && i+2 < n && b[i+1] >= tnWILL {
				tc.iacs = append(tc.iacs, b[i:i+3])
				i += 2
				continue
			}
			tc.buf = append(tc.buf, b[i])
		}
		if err != nil {
			tc.t.Fatalf("console read (waiting for %q): %v; got %q", marker, err, tc.buf)
		}
	}
}

func (tc *tclient) send(s string) {
	tc.t.Helper()
	if _, err := tc.c.Write([]byte(s)); err != nil {
		tc.t.Fatal(err)
	}
}

// cmd runs a command and returns its output (without the next prompt).
func (tc *tclient) cmd(line string) string {
	tc.t.Helper()
	tc.send(line + "\r\n")
	return strings.TrimSuffix(tc.until(consolePrompt), consolePrompt)
}

func (tc *tclient) login(pw string) {
	tc.t.Helper()
	tc.until(passwordPrompt)
	tc.send(pw + "\r\n")
	tc.until(consolePrompt)
}

// closed reports whether the server closed the connection.
func (tc *tclient) closed() bool {
	tc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 512)
	for {
		_, err := tc.c.Read(b)
		if err != nil {
			return !isTimeout(err)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestConsoleLogin(t *testing.T) {
	d := startDevice(t, Config{Console: "127.0.0.1:0", LoginDelay: 300 * time.Millisecond})
	tc := dialConsole(t, d)
	tc.until(passwordPrompt)
	// The client is told the server echoes (so the password is hidden).
	if !bytes.Contains(bytes.Join(tc.iacs, nil), []byte{tnIAC, tnWILL, optEcho}) {
		t.Fatalf("no IAC WILL ECHO before the password: %v", tc.iacs)
	}
	for i := 0; i < 3; i++ {
		tc.send("wrong\r\n")
		tc.until("password incorrect")
	}
	if !tc.closed() {
		t.Fatal("connection not closed after 3 wrong passwords")
	}
	// Further attempts are delayed.
	start := time.Now()
	tc2 := dialConsole(t, d)
	tc2.until("too many login failures: wait")
	tc2.login("sollae") // firmware 2.0A: "sollae" with no password set
	if time.Since(start) < 200*time.Millisecond {
		t.Fatal("login after lockout not delayed")
	}
	out := tc2.cmd("help")
	if !strings.Contains(out, "rsa keygen") {
		t.Fatalf("help: %q", out)
	}
	// A configured password replaces "sollae".
	tc2.cmd("passwd secret")
	tc3 := dialConsole(t, d)
	tc3.until(passwordPrompt)
	tc3.send("sollae\r\n")
	tc3.until("password incorrect")
	tc3.send("secret\r\n")
	tc3.until(consolePrompt)
}

func TestConsoleFirmware17NoPassword(t *testing.T) {
	d := startDevice(t, Config{Console: "127.0.0.1:0", Firmware: "1.7 Rev.B"})
	tc := dialConsole(t, d)
	tc.until(consolePrompt)
	if out := tc.cmd("st uptime"); !strings.Contains(out, "CSE-H25 / 1.7 Rev.B") || !strings.Contains(out, "0 days / 00:00:") {
		t.Fatalf("st uptime: %q", out)
	}
}

func TestConsoleSSLLifecycle(t *testing.T) {
	flash := filepath.Join(t.TempDir(), "flash.json")
	d := startDevice(t, Config{Console: "127.0.0.1:0", SSL: true, KeyBits: 512, Flash: flash})
	fp0 := d.Fingerprint()
	tc := dialConsole(t, d)
	tc.login("sollae")

	out := tc.cmd("rsa keygen 512")
	for _, want := range []string{
		"average 5sec required to find two 256bits prime numbers, please wait",
		"found", "rsa: find 256bits random prime q",
		"rsa: RSA key pair(public/private key) generated.",
		"rsa: key validation OK",
		"rsa: rsa_server_key exist, replaced to new key",
	} {
		if !strings.Contains(out, want) {
			t.Fatalf("rsa keygen output lacks %q:\n%s", want, out)
		}
	}
	if out := tc.cmd("rsa keygen 2048"); !strings.Contains(out, "512/768/1024") {
		t.Fatalf("rsa keygen 2048: %q", out)
	}
	if out := tc.cmd("rsa test"); !strings.Contains(out, "rsa: key validation OK") {
		t.Fatalf("rsa test: %q", out)
	}
	if out := tc.cmd("rsa key"); !strings.Contains(out, "512 bits") {
		t.Fatalf("rsa key: %q", out)
	}
	// Key and certificate no longer match until cert new.
	if out := tc.cmd("cert view"); !strings.Contains(out, "does not match") {
		t.Fatalf("cert view after keygen: %q", out)
	}
	if out := tc.cmd("ssl save aa55cc33"); !strings.Contains(out, "does not match") {
		t.Fatalf("ssl save with mismatched pair: %q", out)
	}
	out = tc.cmd("cert new")
	for _, want := range []string{"generating self-signed host certificate... done", "-----BEGIN CERTIFICATE-----", "cert: host certificate exist, replaced to new one"} {
		if !strings.Contains(out, want) {
			t.Fatalf("cert new lacks %q:\n%s", want, out)
		}
	}
	fp1 := d.Fingerprint()
	if fp1 == fp0 {
		t.Fatal("cert new did not change the served certificate")
	}
	// Unsaved material is lost at reset.
	tc.send("reset\r\n")
	tc.until("rebooting...")
	waitFor(t, func() bool { return d.ConsoleAddr() != nil && d.Fingerprint() == fp0 })

	tc = dialConsole(t, d)
	tc.login("sollae")
	tc.cmd("rsa keygen 512")
	tc.cmd("cert new")
	fp2 := d.Fingerprint()
	if out := tc.cmd("ssl save 12345678"); !strings.Contains(out, "invalid save code") {
		t.Fatalf("ssl save wrong code: %q", out)
	}
	if out := tc.cmd("ssl save aa55cc33"); !strings.Contains(out, "save keyRSA CERT_host ok") {
		t.Fatalf("ssl save: %q", out)
	}
	resetAt := time.Now()
	tc.send("reset\r\n")
	tc.until("rebooting...")
	// The fingerprint is fp2 before the reset too: an uptime shorter than
	// the time since the reset shows the device booted again.
	waitFor(t, func() bool {
		up := d.Status().UptimeSec
		return up < time.Since(resetAt).Seconds() && d.ConsoleAddr() != nil && d.Fingerprint() == fp2
	})
	// The served pair works.
	c, err := tls.Dial("tcp", d.Addr().String(), device10())
	if err != nil {
		t.Fatal(err)
	}
	if Fingerprint(c.ConnectionState().PeerCertificates[0].Raw) != fp2 {
		t.Fatal("served certificate is not the saved one")
	}
	c.Close()
	d.Close()
	d2 := startDevice(t, Config{SSL: true, KeyBits: 512, Flash: flash})
	if d2.Fingerprint() != fp2 {
		t.Fatal("saved material not loaded from the flash file")
	}
}

func TestConsoleCNWarning(t *testing.T) {
	d := startDevice(t, Config{Console: "127.0.0.1:0", SSL: true, KeyBits: 512})
	tc := dialConsole(t, d)
	tc.login("sollae")
	if out := tc.cmd("cert view"); strings.Contains(out, "WARNING") || !strings.Contains(out, "CN=10.1.0.1, emailAddress=support@eztcp.com") {
		t.Fatalf("cert view: %q", out)
	}
	if out := tc.cmd("set ip 10.1.0.9"); !strings.Contains(out, "ok") {
		t.Fatalf("set ip: %q", out)
	}
	if out := tc.cmd("cert view"); !strings.Contains(out, "CN 10.1.0.1 differs from the device IP 10.1.0.9") {
		t.Fatalf("cert view after IP change: %q", out)
	}
	if st := d.Status(); !strings.Contains(st.SSL.Warning, "differs") {
		t.Fatalf("status warning %q", st.SSL.Warning)
	}
	tc.cmd("cert new")
	if out := tc.cmd("cert view"); strings.Contains(out, "WARNING") {
		t.Fatalf("warning after cert new: %q", out)
	}
}

func TestConsoleRobustness(t *testing.T) {
	d := startDevice(t, Config{Console: "127.0.0.1:0"})
	tc := dialConsole(t, d)
	tc.until(passwordPrompt)
	// Option negotiation and a subnegotiation in the middle of the password.
	tc.send(string([]byte{tnIAC, tnDO, optEcho, tnIAC, tnWILL, 24, tnIAC, tnSB, 24, 0, 'x', 't', 'e', 'r', 'm', tnIAC, tnSE, tnIAC, tnDO, 31}))
	tc.send("sol" + string([]byte{tnIAC, tnSB, 31, 0, 80, 0, 24, tnIAC, tnSE}) + "lae\r\x00")
	tc.until(consolePrompt)
	for _, tcase := range []struct{ in, want string }{
		{"bogus", "unknown command: bogus"},
		{strings.Repeat("x", 300), "line too long"},
		{"st\x01\x02\xff\xfe", "invalid characters"},
		{"\x80\x81garbage", "invalid characters"},
		{"sc com1 close", "com1: no session"},
		{"sc com9 close", "no such port"},
		{"st ssl", "SSL disabled"},
		{"rsa key", "no rsa_server_key"},
		{"cert new", "use rsa keygen first"},
		{"set", "usage"},
		{"set com1 baud 12345", "baud rate 12345 not offered"},
		{"set com1 baud 230400", "ok"},
		{"set ssl on", "rule " + RuleSSLMaxBaud},
		{"set com1 baud 115200", "ok"},
		{"set ssl on", "ok"},
		{"set com1 baud 460800", "rule " + RuleSSLMaxBaud},
		{"set mm on", "rule " + RuleSSLMultiMonitoring},
		{"set rfc2217 on", "rule " + RuleSSLRFC2217},
		{"set ssh on", "rule " + RuleSSLSSH},
		{"set mode u2s", "rule " + RuleSSLU2S},
		{"set com2 on", "rule " + RuleModelPorts},
		{"set mode cod", "needs a peer address"},
		{"set peer 127.0.0.1", "not host:port"},
		{"show", "ssl on"},
		{"", ""},
	} {
		out := tc.cmd(tcase.in)
		if !strings.Contains(out, tcase.want) {
			t.Errorf("%q: got %q, want %q", tcase.in, out, tcase.want)
		}
	}
	if got := d.Ports()[0].Serial().Baud; got != 115200 {
		t.Fatalf("refused changes leaked: baud %d", got)
	}
	// Bare LF and CR-only line ends.
	tc.send("st net\n")
	if out := tc.until(consolePrompt); !strings.Contains(out, "Device IP address - 10.1.0.1") {
		t.Fatalf("LF line: %q", out)
	}
	tc.send("st tcp\r")
	if out := tc.until(consolePrompt); !strings.Contains(out, "COM1 - LISTEN") || !strings.Contains(out, "tty   LISTEN:") {
		t.Fatalf("CR line: %q", out)
	}
	// A session is visible and can be closed from the console.
	c, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "x")
	if out := tc.cmd("st tcp"); !strings.Contains(out, "COM1 - ESTABLISHED") {
		t.Fatalf("st tcp: %q", out)
	}
	if out := tc.cmd("sc com1 close"); !strings.Contains(out, "com1: session closed") {
		t.Fatalf("sc: %q", out)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("session not closed: %v", err)
	}
	tc.send("exit\r\n")
	if !tc.closed() {
		t.Fatal("exit did not close")
	}
}

// Wrong passwords count for the device: reconnecting after two does not
// buy three more.
func TestConsoleLoginFailuresSurviveReconnect(t *testing.T) {
	d := startDevice(t, Config{Console: "127.0.0.1:0", LoginDelay: 300 * time.Millisecond})
	tc := dialConsole(t, d)
	tc.until(passwordPrompt)
	for i := 0; i < 2; i++ {
		tc.send("wrong\r\n")
		tc.until("password incorrect")
	}
	tc.c.Close()
	tc2 := dialConsole(t, d)
	tc2.until(passwordPrompt)
	tc2.send("wrong\r\n")
	tc2.until("password incorrect")
	if !tc2.closed() {
		t.Fatal("third wrong password (after a reconnect) did not close the connection")
	}
	tc3 := dialConsole(t, d)
	tc3.until("too many login failures: wait")
}

// ECHO and SGA change together: both on for the password (the client
// neither echoes nor buffers a line), both off after login, so a Telnet
// client is back in line mode with local echo and shows a clean prompt
// (with SGA left on, `telnet` shows "lsh>help^M"). A client asking for
// either after login is refused.
func TestConsoleTelnetModes(t *testing.T) {
	d := startDevice(t, Config{Console: "127.0.0.1:0"})
	tc := dialConsole(t, d)
	tc.until(passwordPrompt)
	has := func(from int, cmd, opt byte) bool {
		for _, c := range tc.iacs[from:] {
			if bytes.Equal(c, []byte{tnIAC, cmd, opt}) {
				return true
			}
		}
		return false
	}
	if !has(0, tnWILL, optEcho) || !has(0, tnWILL, optSGA) {
		t.Fatalf("password prompt without WILL ECHO and WILL SGA: %v", tc.iacs)
	}
	at := len(tc.iacs)
	tc.send("sollae\r\n")
	tc.until(consolePrompt)
	if !has(at, tnWONT, optEcho) || !has(at, tnWONT, optSGA) {
		t.Fatalf("after login ECHO and SGA are not both withdrawn: %v", tc.iacs[at:])
	}
	at = len(tc.iacs)
	tc.send(string([]byte{tnIAC, tnDO, optSGA, tnIAC, tnDO, optEcho}))
	tc.cmd("help")
	if has(at, tnWILL, optSGA) || has(at, tnWILL, optEcho) || !has(at, tnWONT, optSGA) || !has(at, tnWONT, optEcho) {
		t.Errorf("DO SGA / DO ECHO after login: %v, want WONT for both", tc.iacs[at:])
	}
}
