package device

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Device is one simulated ezTCP device. Create it with New, bring it up with
// Start and release it with Close.
type Device struct {
	cfg   Config
	model model
	mac   net.HardwareAddr
	log   *slog.Logger
	ports []*Port

	mu          sync.Mutex
	started     bool
	closed      bool
	set         settings   // settings as edited (console); applied at the next boot where not immediate
	running     settings   // settings of the current boot
	image       flashImage // the simulated flash memory
	flashErr    error      // problem with the flash file found at start
	flashBad    bool       // the flash file is corrupt: never overwritten implicitly
	key         *rsa.PrivateKey
	certDER     []byte
	served      *tls.Certificate // key/cert pair the TLS server uses
	servedFP    string
	servedCert  *x509.Certificate
	bootAt      time.Time
	boot        *bootRun
	consoleAddr string    // pinned console address after the first boot
	lockUntil   time.Time // console login lockout
	loginFails  int

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	resetCh   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// bootRun is what one boot of the device runs; a reset tears it down and
// builds a new one.
type bootRun struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	console *console
}

// New validates cfg and returns a device that is not running yet. Model
// limits violated by cfg are reported as *LimitError.
func New(cfg Config, log *slog.Logger) (*Device, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	m, ok := lookupModel(cfg.Model)
	if !ok {
		return nil, fmt.Errorf("%w: model %q (one of %v)", ErrInvalid, cfg.Model, Models())
	}
	mac, err := parseMAC(cfg.MAC)
	if err != nil {
		return nil, err
	}
	set := settingsFromConfig(&cfg)
	set.normalize()
	if err := set.validate(m); err != nil {
		return nil, err
	}
	if err := checkMode(set.Mode); err != nil {
		return nil, err
	}
	if cfg.ClientTLS != "device" && cfg.ClientTLS != "modern" {
		return nil, fmt.Errorf("%w: client TLS profile %q (device or modern)", ErrInvalid, cfg.ClientTLS)
	}
	if cfg.ServerTLS != "any" && cfg.ServerTLS != "device" {
		return nil, fmt.Errorf("%w: server TLS profile %q (any or device)", ErrInvalid, cfg.ServerTLS)
	}
	if cfg.Key != nil && cfg.Key.N.BitLen() != set.KeyBits && cfg.KeyBits != 0 {
		return nil, fmt.Errorf("%w: Key has %d bits but KeyBits is %d", ErrInvalid, cfg.Key.N.BitLen(), cfg.KeyBits)
	}
	d := &Device{cfg: cfg, model: m, mac: mac, log: log.With("device", cfg.IP, "model", m.name), set: set, resetCh: make(chan struct{}, 1)}
	specs := []string{cfg.Serial}
	addrs := []string{cfg.Listen}
	if m.ports > 1 {
		if cfg.COM2 != nil {
			specs = append(specs, cfg.COM2.Serial)
			addrs = append(addrs, cfg.COM2.Listen)
		} else {
			specs = append(specs, "echo")
			addrs = append(addrs, nextPort(cfg.Listen))
		}
	}
	for i := range specs {
		d.ports = append(d.ports, &Port{d: d, idx: i, name: fmt.Sprintf("COM%d", i+1), spec: specs[i], addr: addrs[i]})
	}
	return d, nil
}

// checkMode reports modes that are valid settings but not implemented (all
// four are implemented; kept for settings read from newer flash formats).
func checkMode(mode string) error {
	switch mode {
	case "T2S", "COD", "ATC", "U2S":
		return nil
	}
	return fmt.Errorf("%w: %s", ErrModeUnsupported, mode)
}

// Start opens the serial backends, loads the flash, generates the SSL key and
// certificate if needed and brings the listeners up. ctx bounds the device's
// life: when it is cancelled the device stops serving (Close must still be
// called).
func (d *Device) Start(ctx context.Context) error {
	d.mu.Lock()
	switch {
	case d.closed:
		d.mu.Unlock()
		return ErrClosed
	case d.started:
		d.mu.Unlock()
		return ErrStarted
	}
	d.started = true
	d.ctx, d.cancel = context.WithCancel(ctx)
	d.mu.Unlock()

	if err := d.start(); err != nil {
		d.Close()
		return err
	}
	d.wg.Add(1)
	go d.supervise()
	return nil
}

func (d *Device) start() error {
	if d.cfg.Flash != "" {
		img, err := readFlash(d.cfg.Flash)
		switch {
		case errors.Is(err, ErrFlashCorrupt):
			d.log.Error("flash file corrupt: falling back to factory defaults; the file is left untouched", "path", d.cfg.Flash, "err", err)
			d.flashErr, d.flashBad = err, true
		case err != nil:
			return err
		case img != nil:
			d.image = *img
		}
	}
	d.image.Model = d.model.name
	s := d.set.clone()
	d.image.Settings = &s
	for _, p := range d.ports {
		be, err := openBackend(p.spec)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		p.be = be
		d.wg.Add(1)
		go p.pump(d.ctx)
	}
	return d.bootUp()
}

// supervise performs resets and the final halt.
func (d *Device) supervise() {
	defer d.wg.Done()
	for {
		select {
		case <-d.ctx.Done():
			d.halt()
			return
		case <-d.resetCh:
			d.log.Info("reset: rebooting")
			d.halt()
			if d.ctx.Err() != nil {
				return
			}
			if err := d.bootUp(); err != nil {
				d.log.Error("reboot failed", "err", err)
			}
		}
	}
}

// requestReset asks the supervisor to reboot the device.
func (d *Device) requestReset() {
	select {
	case d.resetCh <- struct{}{}:
	default:
	}
}

// Reset reboots the device as the console's "reset" does: sessions drop,
// settings and SSL material not saved to flash are lost.
func (d *Device) Reset() { d.requestReset() }

// bootUp loads the running configuration from the (in-memory) flash and
// brings up the ports and the console.
func (d *Device) bootUp() error {
	d.mu.Lock()
	set := d.image.Settings.clone()
	d.set, d.running = set.clone(), set.clone()
	d.key, d.certDER, d.served, d.servedFP, d.servedCert = nil, nil, nil, "", nil
	if d.image.SSL != nil {
		key, err1 := parseKeyPEM(d.image.SSL.Key)
		cert, err2 := parseCertPEM(d.image.SSL.Cert)
		if err := errors.Join(err1, err2); err != nil {
			d.mu.Unlock()
			return err
		}
		d.key, d.certDER = key, cert.Raw
		d.serveLocked()
	}
	if set.SSL && d.served == nil {
		if err := d.generateInitialLocked(set); err != nil {
			d.mu.Unlock()
			return err
		}
	}
	if d.served != nil && certCN(d.servedCert) != set.IP {
		d.log.Warn("certificate CN differs from the device IP; run cert new", "cn", certCN(d.servedCert), "ip", set.IP)
	}
	d.bootAt = time.Now()
	ctx, cancel := context.WithCancel(d.ctx)
	br := &bootRun{ctx: ctx, cancel: cancel}
	d.boot = br
	d.mu.Unlock()

	for i, p := range d.ports {
		enabled := i == 0 || set.COM2
		if err := p.boot(br, set, enabled); err != nil {
			return err
		}
	}
	if d.cfg.Console != "" {
		addr := d.consoleAddr
		if addr == "" {
			addr = d.cfg.Console
		}
		c, err := listenConsole(br.ctx, d, addr)
		if err != nil {
			return err
		}
		d.mu.Lock()
		d.consoleAddr = c.ln.Addr().String()
		br.console = c
		d.mu.Unlock()
		br.wg.Add(1)
		go func() {
			defer br.wg.Done()
			c.serve(br.ctx)
		}()
	}
	d.log.Info("device up", "listen", d.ports[0].Addr(), "ssl", set.SSL, "fingerprint", d.Fingerprint())
	return nil
}

// generateInitialLocked creates a key and certificate at boot when SSL is on
// and flash holds none, and saves them to flash.
func (d *Device) generateInitialLocked(set settings) error {
	key := d.cfg.Key
	if key == nil {
		var err error
		d.log.Info("generating RSA key", "bits", set.KeyBits)
		if key, err = GenerateKey(set.KeyBits, nil); err != nil {
			return err
		}
	}
	der, err := NewCertificate(key, set.IP)
	if err != nil {
		return err
	}
	d.key, d.certDER = key, der
	d.serveLocked()
	d.image.SSL = &flashSSL{Key: keyPEM(key), Cert: certPEM(der)}
	if d.cfg.Flash != "" && !d.flashBad {
		if err := writeFlash(d.cfg.Flash, &d.image); err != nil {
			return err
		}
	}
	return nil
}

// serveLocked makes the RAM key/cert the pair the TLS server presents,
// provided they belong together.
func (d *Device) serveLocked() {
	cert, err := x509.ParseCertificate(d.certDER)
	if err != nil || !certMatchesKey(cert, d.key) {
		return
	}
	d.served = &tls.Certificate{Certificate: [][]byte{d.certDER}, PrivateKey: d.key, Leaf: cert}
	d.servedFP = Fingerprint(d.certDER)
	d.servedCert = cert
}

// halt tears the current boot down and waits for it.
func (d *Device) halt() {
	d.mu.Lock()
	br := d.boot
	d.boot = nil
	d.mu.Unlock()
	if br == nil {
		return
	}
	br.cancel()
	for _, p := range d.ports {
		p.halt()
	}
	br.wg.Wait()
}

// Addr returns the address COM1 listens on (nil before Start).
func (d *Device) Addr() net.Addr { return d.ports[0].Addr() }

// Mode returns the communication mode of the current boot (T2S, COD, ATC,
// U2S).
func (d *Device) Mode() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running.Mode
}

// Peer returns the configured peer address of the current boot (COD's
// server, ATC's ATD default, U2S's destination); "" when none is set.
func (d *Device) Peer() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.running.Peer
}

// LocalAddr returns COM1's configured local address (the address ATA
// listens on in ATC mode), pinned to the real port after a listener was
// bound.
func (d *Device) LocalAddr() string {
	p := d.ports[0]
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addr
}

// ConsoleAddr returns the telnet console's address, or nil when it is off.
func (d *Device) ConsoleAddr() net.Addr {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.boot == nil || d.boot.console == nil {
		return nil
	}
	return d.boot.console.ln.Addr()
}

// Fingerprint returns "sha256:<hex>" of the certificate the TLS server
// presents, or "" without SSL.
func (d *Device) Fingerprint() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.running.SSL {
		return ""
	}
	return d.servedFP
}

// Certificate returns the DER certificate the TLS server presents (nil
// without one).
func (d *Device) Certificate() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.served == nil {
		return nil
	}
	return d.served.Certificate[0]
}

// Ports returns the device's serial ports (COM1 first).
func (d *Device) Ports() []*Port { return d.ports }

// Port returns the port called name ("COM1", case-insensitive), or nil.
func (d *Device) Port(name string) *Port {
	for _, p := range d.ports {
		if equalFold(p.name, name) {
			return p
		}
	}
	return nil
}

// servedCertificate is the TLS server's GetCertificate.
func (d *Device) servedCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.served == nil {
		return nil, fmt.Errorf("%w: no key/certificate pair", ErrNoCert)
	}
	return d.served, nil
}

// Close stops the device and waits for all its goroutines. It is
// idempotent and returns the first error.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.mu.Lock()
		d.closed = true
		cancel := d.cancel
		d.mu.Unlock()
		if cancel == nil {
			return
		}
		cancel()
		var errs []error
		for _, p := range d.ports {
			if p.be != nil {
				errs = append(errs, p.be.Close())
			}
		}
		d.wg.Wait()
		d.halt() // when Start failed before the supervisor ran
		d.closeErr = errors.Join(errs...)
	})
	return d.closeErr
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'a' <= x && x <= 'z' {
			x -= 32
		}
		if 'a' <= y && y <= 'z' {
			y -= 32
		}
		if x != y {
			return false
		}
	}
	return true
}
