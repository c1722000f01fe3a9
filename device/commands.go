package device

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strconv"
	"strings"
)

// commandTable lists the console commands. The rsa, cert and ssl commands
// use the vendor's wording; the others are simulator-defined.
func commandTable() []consoleCommand {
	return []consoleCommand{
		{[]string{"rsa", "keygen"}, "rsa keygen <512|768|1024>  generate the RSA key pair", (*consoleSession).rsaKeygen},
		{[]string{"rsa", "key"}, "rsa key                    show the RSA key", (*consoleSession).rsaKey},
		{[]string{"rsa", "test"}, "rsa test                   check the RSA key", (*consoleSession).rsaTest},
		{[]string{"cert", "new"}, "cert new                   generate the self-signed host certificate", (*consoleSession).certNew},
		{[]string{"cert", "view"}, "cert view                  show the host certificate", (*consoleSession).certView},
		{[]string{"ssl", "save"}, "ssl save aa55cc33          save RSA key and certificate to flash", (*consoleSession).sslSave},
		{[]string{"st", "net"}, "st net                     network information", stPart("net")},
		{[]string{"st", "sio"}, "st sio                     serial settings and counters", stPart("sio")},
		{[]string{"st", "tcp"}, "st tcp                     TCP state and connections", stPart("tcp")},
		{[]string{"st", "ssl"}, "st ssl                     SSL status", stPart("ssl")},
		{[]string{"st", "uptime"}, "st uptime                  firmware version and uptime", stPart("uptime")},
		{[]string{"st"}, "st                         full status", (*consoleSession).status},
		{[]string{"status"}, "status                     full status", (*consoleSession).status},
		{[]string{"sc"}, "sc com1 close              close the data session of a port", (*consoleSession).sessionClose},
		{[]string{"set"}, "set ...                    change a setting (type 'set' for the list)", (*consoleSession).set},
		{[]string{"show"}, "show                       show the settings", (*consoleSession).show},
		{[]string{"save"}, "save                       write the settings to flash", (*consoleSession).save},
		{[]string{"passwd"}, "passwd <new>               change the console password ('passwd -' clears it)", (*consoleSession).passwd},
		{[]string{"reset"}, "reset                      reboot (unsaved settings, key and certificate are lost)", (*consoleSession).reset},
		{[]string{"exit"}, "exit                       close the console", (*consoleSession).exit},
		{[]string{"quit"}, "quit                       close the console", (*consoleSession).exit},
		{[]string{"help"}, "help                       this list", (*consoleSession).help},
	}
}

func (s *consoleSession) help(_ context.Context, _ []string) bool {
	for _, c := range commandTable() {
		s.println("  " + c.usage)
	}
	return true
}

func (s *consoleSession) exit(_ context.Context, _ []string) bool {
	s.println("bye")
	return false
}

var keygenSeconds = map[int]int{512: 5, 768: 20, 1024: 50}

func (s *consoleSession) rsaKeygen(_ context.Context, args []string) bool {
	bits := 0
	if len(args) == 1 {
		bits, _ = strconv.Atoi(args[0])
	}
	if bits != 512 && bits != 768 && bits != 1024 {
		s.println("rsa: supporting KEY length 512/768/1024 (usage: rsa keygen <512|768|1024>)")
		return true
	}
	s.println(fmt.Sprintf("average %dsec required to find two %dbits prime numbers, please wait", keygenSeconds[bits], bits/2))
	s.flush()
	key, err := GenerateKey(bits, flushWriter{s})
	if err != nil {
		s.println("rsa: " + err.Error())
		return true
	}
	s.println("rsa: RSA key pair(public/private key) generated.")
	s.println("rsa: key validation OK")
	d := s.d
	d.mu.Lock()
	existed := d.key != nil
	d.key = key
	d.mu.Unlock()
	if existed {
		s.println("rsa: rsa_server_key exist, replaced to new key")
	}
	return true
}

// flushWriter writes progress to the client as it is produced.
type flushWriter struct{ s *consoleSession }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.s.w.Write(p)
	if err == nil {
		err = f.s.flush()
	}
	return n, err
}

func (s *consoleSession) rsaKey(_ context.Context, _ []string) bool {
	d := s.d
	d.mu.Lock()
	key := d.key
	d.mu.Unlock()
	if key == nil {
		s.println("rsa: no rsa_server_key, use rsa keygen")
		return true
	}
	s.println(fmt.Sprintf("rsa_server_key: %d bits", key.N.BitLen()))
	s.println("modulus:")
	s.println(hexBlock(key.N))
	s.println(fmt.Sprintf("publicExponent: %d (0x%x)", key.E, key.E))
	return true
}

// hexBlock renders a number as colon-separated hex, 16 bytes a line.
func hexBlock(n *big.Int) string {
	b := n.Bytes()
	var out strings.Builder
	for i, c := range b {
		if i%16 == 0 {
			if i > 0 {
				out.WriteString("\n")
			}
			out.WriteString("    ")
		}
		fmt.Fprintf(&out, "%02x", c)
		if i < len(b)-1 {
			out.WriteString(":")
		}
	}
	return out.String()
}

func (s *consoleSession) rsaTest(_ context.Context, _ []string) bool {
	d := s.d
	d.mu.Lock()
	key := d.key
	d.mu.Unlock()
	switch {
	case key == nil:
		s.println("rsa: no rsa_server_key, use rsa keygen")
	case key.Validate() != nil:
		s.println("rsa: key validation FAILED")
	default:
		s.println("rsa: key validation OK")
	}
	return true
}

func (s *consoleSession) certNew(_ context.Context, _ []string) bool {
	d := s.d
	d.mu.Lock()
	key, ip := d.key, d.set.IP
	d.mu.Unlock()
	if key == nil {
		s.println("cert: no rsa_server_key, use rsa keygen first")
		return true
	}
	s.printf("generating self-signed host certificate...")
	s.flush()
	der, err := NewCertificate(key, ip)
	if err != nil {
		s.println(" failed: " + err.Error())
		return true
	}
	s.println(" done")
	s.println(strings.TrimRight(certPEM(der), "\n"))
	d.mu.Lock()
	existed := d.certDER != nil
	if d.key == key {
		d.certDER = der
		d.serveLocked()
	}
	d.mu.Unlock()
	if existed {
		s.println("cert: host certificate exist, replaced to new one")
	}
	return true
}

func (s *consoleSession) certView(_ context.Context, _ []string) bool {
	d := s.d
	d.mu.Lock()
	der := d.certDER
	warn := d.certWarningLocked()
	d.mu.Unlock()
	if der == nil {
		s.println("cert: no host certificate, use cert new")
		return true
	}
	cert, err := x509.ParseCertificate(der)
	if err == nil {
		s.println("subject: " + deviceSubjectString(cert))
		s.println("valid: " + cert.NotBefore.UTC().Format("2006-01-02 15:04:05Z") + " to " + cert.NotAfter.UTC().Format("2006-01-02 15:04:05Z"))
		s.println("fingerprint: " + Fingerprint(der))
	}
	s.println(strings.TrimRight(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), "\n"))
	if warn != "" {
		s.println("WARNING: " + warn)
	}
	return true
}

// deviceSubjectString renders the subject in OpenSSL's one-line order.
func deviceSubjectString(c *x509.Certificate) string {
	n := c.Subject
	first := func(v []string) string {
		if len(v) == 0 {
			return ""
		}
		return v[0]
	}
	email := ""
	for _, a := range n.Names {
		if a.Type.Equal(oidEmail) {
			email, _ = a.Value.(string)
		}
	}
	return fmt.Sprintf("C=%s, ST=%s, L=%s, O=%s, OU=%s, CN=%s, emailAddress=%s",
		first(n.Country), first(n.Province), first(n.Locality), first(n.Organization), first(n.OrganizationalUnit), n.CommonName, email)
}

func (s *consoleSession) sslSave(_ context.Context, args []string) bool {
	if len(args) != 1 || !strings.EqualFold(args[0], sslSaveCode) {
		s.println("ssl: invalid save code (usage: ssl save aa55cc33)")
		return true
	}
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.key == nil || d.certDER == nil {
		s.println("ssl: nothing to save: create the key (rsa keygen) and certificate (cert new) first")
		return true
	}
	cert, err := x509.ParseCertificate(d.certDER)
	if err != nil || !certMatchesKey(cert, d.key) {
		s.println("ssl: host certificate does not match the RSA key, run cert new first")
		return true
	}
	prev := d.image.SSL
	d.image.SSL = &flashSSL{Key: keyPEM(d.key), Cert: certPEM(d.certDER)}
	if err := d.commitFlashLocked(); err != nil {
		d.image.SSL = prev
		s.println("ssl: save failed: " + err.Error())
		return true
	}
	s.println("save keyRSA CERT_host ok")
	return true
}

// commitFlashLocked writes the in-memory flash to the flash file, if any. A
// corrupt file found at start is moved aside to PATH.corrupt first: an
// explicit save is the user's decision to replace it.
func (d *Device) commitFlashLocked() error {
	if d.cfg.Flash == "" {
		return nil
	}
	if d.flashBad {
		if err := os.Rename(d.cfg.Flash, d.cfg.Flash+".corrupt"); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("device: flash: %w", err)
		}
		d.log.Warn("corrupt flash file moved aside", "path", d.cfg.Flash+".corrupt")
		d.flashBad = false
	}
	return writeFlash(d.cfg.Flash, &d.image)
}

func (s *consoleSession) status(_ context.Context, _ []string) bool {
	s.println(strings.TrimRight(s.d.Status().Text(), "\r\n"))
	return true
}

// stPart prints one block of the status screen.
func stPart(part string) func(*consoleSession, context.Context, []string) bool {
	return func(s *consoleSession, _ context.Context, _ []string) bool {
		st := s.d.Status()
		var text string
		switch part {
		case "net":
			text = st.netText()
		case "sio":
			text = st.sioText()
		case "tcp":
			text = st.tcpText() + st.connText()
		case "ssl":
			if !st.SSL.Enabled {
				text = "SSL STATUS\r\n  SSL disabled\r\n"
			} else {
				text = st.sslText()
			}
		case "uptime":
			text = fmt.Sprintf("FIRMWARE VERSION\r\n  %s\r\nSYSTEM UPTIME\r\n  %s\r\n", st.Firmware, st.Uptime)
		}
		s.println(strings.TrimRight(text, "\r\n"))
		return true
	}
}

func (s *consoleSession) sessionClose(_ context.Context, args []string) bool {
	if len(args) != 2 || !strings.EqualFold(args[1], "close") {
		s.println("sc: usage: sc com1 close")
		return true
	}
	p := s.d.Port(args[0])
	if p == nil {
		s.println("sc: no such port: " + args[0])
		return true
	}
	if p.CloseSession() {
		s.println(strings.ToLower(p.name) + ": session closed")
	} else {
		s.println(strings.ToLower(p.name) + ": no session")
	}
	return true
}

func (s *consoleSession) passwd(_ context.Context, args []string) bool {
	if len(args) != 1 {
		s.println("passwd: usage: passwd <new password> ('passwd -' clears it)")
		return true
	}
	pw := args[0]
	if pw == "-" {
		pw = ""
	}
	d := s.d
	d.mu.Lock()
	d.set.Password = pw
	d.mu.Unlock()
	s.println("passwd: password changed; run save to keep it after reset")
	return true
}

func (s *consoleSession) reset(_ context.Context, _ []string) bool {
	s.println("rebooting...")
	s.flush()
	s.d.requestReset()
	return false
}

func (s *consoleSession) save(_ context.Context, _ []string) bool {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	prev := d.image.Settings
	next := d.set.clone()
	d.image.Settings = &next
	if err := d.commitFlashLocked(); err != nil {
		d.image.Settings = prev
		s.println("save: failed: " + err.Error())
		return true
	}
	s.println("save config ok (applied at the next reset)")
	return true
}

func (s *consoleSession) show(_ context.Context, _ []string) bool {
	d := s.d
	d.mu.Lock()
	set := d.set.clone()
	d.mu.Unlock()
	onoff := func(b bool) string {
		if b {
			return "on"
		}
		return "off"
	}
	s.println(fmt.Sprintf("model %s, mode %s, ip %s, mask %s, gateway %s, dns %s", d.model.name, set.Mode, set.IP, set.Mask, set.Gateway, set.DNS))
	s.println(fmt.Sprintf("ssl %s, keybits %d, rfc2217 %s, ssh %s, mm %s, com2 %s", onoff(set.SSL), set.KeyBits, onoff(set.RFC2217), onoff(set.SSH), onoff(set.MultiMonitoring), onoff(set.COM2)))
	s.println(fmt.Sprintf("timeout %d, eventbyte %d, sendmac %s, second %s", set.TimeoutSec, set.EventByte, onoff(set.SendMAC), set.SecondClient))
	s.println(fmt.Sprintf("peer %s, bytecount %d, guardtime %d, dataframe %d", set.Peer, set.ByteCount, set.GuardTime, set.DataFrame))
	for i, l := range set.Lines {
		s.println(fmt.Sprintf("com%d %s", i+1, l.String()))
	}
	return true
}

const setUsage = `set: usage:
  set com1|com2 baud|data|parity|stop|flow|dtrdsr|txi <value>   (applied at once)
  set ssl|rfc2217|ssh|mm|com2|sendmac on|off
  set mode t2s|cod|atc|u2s
  set ip|mask|gateway|dns <a.b.c.d>
  set timeout <seconds> | set eventbyte <n> | set keybits <512|768|1024> | set second refuse|replace
  set peer <host:port> | set bytecount <n> | set guardtime <10ms units> | set dataframe <10ms units>
(settings other than the serial ones take effect after save and reset)`

func (s *consoleSession) set(_ context.Context, args []string) bool {
	if err := s.d.consoleSet(args); err != nil {
		if errors.Is(err, errUsage) {
			s.println(setUsage)
		} else {
			s.println("set: " + strings.TrimPrefix(err.Error(), "device: "))
		}
		return true
	}
	s.println("ok")
	return true
}
