//go:build linux

package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/tlsconn"
)

// path is one way from an application's tty to an echo and back.
type path interface {
	Name() string
	// Start brings the path up and returns the tty the application opens.
	Start() (tty string, err error)
	// Describe says what ran (versions, TLS parameters), after Start.
	Describe() string
	Stop() error
}

// floorPath is a bare PTY pair with an echo loop on the master: what any
// PTY-based redirector costs at the very least (no network, no crypto).
type floorPath struct {
	master int
	done   chan struct{}
}

func (f *floorPath) Name() string { return "floor" }

func (f *floorPath) Describe() string {
	return "bare PTY pair; an OS thread in the bench process echoes the master (blocking read/write, 64 KiB buffer)"
}

func (f *floorPath) Start() (string, error) {
	m, tty, err := openPTY()
	if err != nil {
		return "", fmt.Errorf("vspbench: floor: %w", err)
	}
	f.master = m
	f.done = make(chan struct{})
	go func() {
		defer close(f.done)
		lockThread()
		echoLoop(m, make([]byte, 64<<10)) // ends with EIO when the application closes the slave
	}()
	return tty, nil
}

// echoLoop writes back everything it reads from fd (blocking system
// calls) until a read fails or reaches the end.
func echoLoop(fd int, buf []byte) {
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			return
		}
		for p := buf[:n]; len(p) > 0; {
			k, err := unix.Write(fd, p)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				return
			}
			p = p[k:]
		}
	}
}

// openPTY opens a PTY master and returns it with its slave's path.
func openPTY() (int, string, error) {
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", err
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return -1, "", fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		unix.Close(m)
		return -1, "", fmt.Errorf("TIOCGPTN: %w", err)
	}
	return m, "/dev/pts/" + strconv.FormatUint(uint64(n), 10), nil
}

// Stop closes the master once the echo loop has ended (the application
// closes the slave first, which makes the master read EIO).
func (f *floorPath) Stop() error {
	select {
	case <-f.done:
	case <-time.After(5 * time.Second):
		return errors.New("vspbench: floor: echo loop did not end after the slave was closed")
	}
	return unix.Close(f.master)
}

// socatPath is the usual alternative: socat bridging a PTY to an OpenSSL
// connection, against a socat OpenSSL server echoing with PIPE.
type socatPath struct {
	dir            string
	cert           string
	server, client *proc
	link           string
	n              int
	cipher         string
}

func (s *socatPath) Name() string { return "socat" }

func (s *socatPath) Describe() string {
	v, _ := exec.Command("socat", "-V").Output()
	ver := ""
	if m := regexp.MustCompile(`socat version (\S+)`).FindSubmatch(v); m != nil {
		ver = string(m[1])
	}
	ov, _ := exec.Command("openssl", "version").Output()
	c := s.cipher
	if c == "" {
		c = "not reported"
	}
	return fmt.Sprintf("socat %s, %s, session %s; `%s` against `%s`", ver, strings.TrimSpace(string(ov)), c,
		strings.Join(s.clientArgs("LINK", "P"), " "), strings.ReplaceAll(strings.Join(s.serverArgs("P"), " "), s.cert, "cert.pem"))
}

// serverArgs is the echo server. -b 4096 keeps each of socat's writes into
// its PIPE within PIPE_BUF: with the default 8192 a write into a pipe that
// has room for less blocks for good, since socat itself is the only reader
// (seen here: socat asleep in anon_pipe_write with 280 KB unread on its
// socket, the stream stalled until the bench's 2-minute timeout).
func (s *socatPath) serverArgs(port any) []string {
	return []string{"socat", "-d", "-d", "-b", "4096", fmt.Sprintf("openssl-listen:%v,reuseaddr,cert=%s,verify=0", port, s.cert), "PIPE"}
}

func (s *socatPath) clientArgs(link string, port any) []string {
	return []string{"socat", "-d", "-d", fmt.Sprintf("pty,link=%s,raw,echo=0", link), fmt.Sprintf("openssl:127.0.0.1:%v,verify=0", port)}
}

// newSocatPath checks the tools and makes a self-signed certificate.
func newSocatPath(dir string) (*socatPath, error) {
	for _, t := range []string{"socat", "openssl"} {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("%s is not installed (apt-get install %s)", t, t)
		}
	}
	key, crt, pem := filepath.Join(dir, "socat.key"), filepath.Join(dir, "socat.crt"), filepath.Join(dir, "socat.pem")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
		"-out", crt, "-days", "2", "-subj", "/CN=127.0.0.1").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("openssl req: %w: %s", err, out)
	}
	k, _ := os.ReadFile(key)
	c, _ := os.ReadFile(crt)
	if err := os.WriteFile(pem, append(c, k...), 0o600); err != nil {
		return nil, err
	}
	return &socatPath{dir: dir, cert: pem}, nil
}

var sslCipherRE = regexp.MustCompile(`SSL connection using (\S+)`)

func (s *socatPath) Start() (string, error) {
	s.n++
	port, err := freePort()
	if err != nil {
		return "", err
	}
	logf := filepath.Join(s.dir, "socat.log")
	if s.server, err = startProc("socat server", logf, s.serverArgs(port)...); err != nil {
		return "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for !listening(port) {
		if s.server.exited() || time.Now().After(deadline) {
			return "", fmt.Errorf("vspbench: socat server did not listen on %d (see %s)", port, logf)
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.link = filepath.Join(s.dir, fmt.Sprintf("socat-tty%d", s.n))
	if s.client, err = startProc("socat client", logf, s.clientArgs(s.link, port)...); err != nil {
		return "", err
	}
	if err := waitFile(s.link, 10*time.Second); err != nil {
		return "", err
	}
	return s.link, nil
}

func (s *socatPath) Stop() error {
	if s.client != nil {
		s.client.end(3 * time.Second)
	}
	if s.server != nil {
		s.server.end(3 * time.Second)
	}
	if s.cipher == "" {
		if data, err := os.ReadFile(filepath.Join(s.dir, "socat.log")); err == nil {
			if m := sslCipherRE.FindSubmatch(data); m != nil {
				s.cipher = string(m[1])
			}
		}
	}
	return nil
}

// vspPath is a real vsp port (the built vsp binary, `vsp run --device`, a
// separate process) against the built ezsim with SSL on and the echo
// serial backend.
type vspPath struct {
	dir       string
	bin       binaries
	profile   string
	simTLS    string // ezsim --server-tls; "" = ezsim's default (any)
	sim, port *proc
	n         int
	session   string
}

func (v *vspPath) Name() string { return "vsp" }

func (v *vspPath) Describe() string {
	s := v.session
	if s == "" {
		s = "not reported"
	}
	return fmt.Sprintf("`vsp run --device ADDR --link LINK --tls %s --pin FP` (built binary, own process) against `ezsim --listen 127.0.0.1:0 --ssl --key-bits 1024 --serial echo --console off%s` (own process); session %s", v.profile, serverTLSFlag(v.simTLS), s)
}

var linkUpRE = regexp.MustCompile(`link up.*tls="?([^"]*?)"? cipher=(\S+)`)

func (v *vspPath) Start() (string, error) {
	v.n++
	logf := filepath.Join(v.dir, "vsp.log")
	var err error
	args := []string{"--listen", "127.0.0.1:0", "--ssl", "--key-bits", "1024",
		"--serial", "echo", "--console", "off", "--log-level", "warn"}
	args = append(args, simTLSArgs(v.simTLS)...)
	v.sim, err = startProc("ezsim", logf, append([]string{v.bin.ezsim}, args...)...)
	if err != nil {
		return "", err
	}
	addr, err := v.sim.waitLines("listen:", 1, 30*time.Second)
	if err != nil {
		return "", err
	}
	fp, err := v.sim.waitLines("fingerprint:", 1, 5*time.Second)
	if err != nil {
		return "", err
	}
	link := filepath.Join(v.dir, fmt.Sprintf("vsp-tty%d", v.n))
	v.port, err = startProc("vsp", logf, v.bin.vsp, "run", "--device", addr[0], "--link", link,
		"--tls", v.profile, "--pin", fp[0], "--log-format", "text")
	if err != nil {
		return "", err
	}
	if err := waitFile(link, 10*time.Second); err != nil {
		return "", err
	}
	return link, nil
}

func (v *vspPath) Stop() error {
	var errs []error
	if v.port != nil {
		errs = append(errs, v.port.stop())
	}
	if v.sim != nil {
		errs = append(errs, v.sim.stop())
	}
	if v.session == "" {
		if data, err := os.ReadFile(filepath.Join(v.dir, "vsp.log")); err == nil {
			if m := linkUpRE.FindSubmatch(data); m != nil {
				v.session = string(m[1]) + " " + string(m[2])
			}
		}
	}
	return errors.Join(errs...)
}

// vspPipePath is vsp against the socat path's echo server (socat
// openssl-listen … PIPE) instead of ezsim: the same far end as the socat
// path, so the difference to socat is the redirector alone.
type vspPipePath struct {
	socat   *socatPath
	bin     binaries
	profile string
	server  *proc
	port    *proc
	n       int
	session string
}

func (v *vspPipePath) Name() string { return "vsp-pipe" }

func (v *vspPipePath) Describe() string {
	s := v.session
	if s == "" {
		s = "not reported"
	}
	return fmt.Sprintf("the same vsp binary and flags, against the socat path's server (`socat -b 4096 openssl-listen:P,… PIPE`) instead of ezsim; session %s", s)
}

func (v *vspPipePath) Start() (string, error) {
	v.n++
	pin, err := pemFingerprint(v.socat.cert)
	if err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	logf := filepath.Join(v.socat.dir, "vsp-pipe.log")
	if v.server, err = startProc("socat server", logf, v.socat.serverArgs(port)...); err != nil {
		return "", err
	}
	deadline := time.Now().Add(10 * time.Second)
	for !listening(port) {
		if v.server.exited() || time.Now().After(deadline) {
			return "", fmt.Errorf("vspbench: socat server did not listen on %d (see %s)", port, logf)
		}
		time.Sleep(5 * time.Millisecond)
	}
	link := filepath.Join(v.socat.dir, fmt.Sprintf("vsp-pipe-tty%d", v.n))
	v.port, err = startProc("vsp", logf, v.bin.vsp, "run", "--device", fmt.Sprintf("127.0.0.1:%d", port), "--link", link,
		"--tls", v.profile, "--pin", pin, "--log-format", "text")
	if err != nil {
		return "", err
	}
	if err := waitFile(link, 10*time.Second); err != nil {
		return "", err
	}
	return link, nil
}

func (v *vspPipePath) Stop() error {
	var errs []error
	if v.port != nil {
		errs = append(errs, v.port.stop())
	}
	if v.server != nil {
		v.server.end(3 * time.Second)
	}
	if v.session == "" {
		if data, err := os.ReadFile(filepath.Join(v.socat.dir, "vsp-pipe.log")); err == nil {
			if m := linkUpRE.FindSubmatch(data); m != nil {
				v.session = string(m[1]) + " " + string(m[2])
			}
		}
	}
	return errors.Join(errs...)
}

// pemFingerprint returns the "sha256:<hex>" pin of the first certificate in
// a PEM file.
func pemFingerprint(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("vspbench: %w", err)
	}
	for {
		var blk *pem.Block
		blk, data = pem.Decode(data)
		if blk == nil {
			return "", fmt.Errorf("vspbench: no certificate in %s", file)
		}
		if blk.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				return "", fmt.Errorf("vspbench: %s: %w", file, err)
			}
			return tlsconn.Fingerprint(c), nil
		}
	}
}

func serverTLSFlag(p string) string {
	if p == "" {
		return ""
	}
	return " --server-tls " + p
}
