package main

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/vsp-dev/vsp/service/config"
	"github.com/vsp-dev/vsp/tlsconn"
)

func trustCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "trust",
		Usage:     "show a device's certificate and fingerprint, and optionally pin it",
		ArgsUsage: "HOST:PORT",
		Description: "Connects to the device without trusting it, sends no data, and prints its\n" +
			"certificate: subject, validity, key and SHA-256 fingerprint. Compare the\n" +
			"fingerprint with the one the device shows (or that ezsim prints) before\n" +
			"pinning it. --write NAME stores it as the pin of port NAME.\n\n" +
			"For ports in trust-on-first-use mode (trust.mode = \"tofu\"), a device whose\n" +
			"certificate changed is refused until you accept the new one:\n" +
			"  vsp trust --accept [--expect sha256:HEX] HOST:PORT\n" +
			"records the certificate the device presents now in the known-devices file\n" +
			"(replacing the old entry); --expect refuses unless it is that fingerprint.\n" +
			"Running ports pick it up at their next redial, without a restart.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tls", Usage: "TLS profile to connect with: legacy or modern", Value: "legacy"},
			&cli.DurationFlag{Name: "timeout", Usage: "connect and handshake timeout", Value: 5 * time.Second},
			&cli.StringFlag{Name: "write", Usage: "pin the fingerprint in port `NAME`'s file"},
			&cli.BoolFlag{Name: "accept", Usage: "trust the certificate the device presents now in the known-devices file (tofu mode), replacing a changed one"},
			&cli.StringFlag{Name: "expect", Usage: "with --accept: accept only this fingerprint `sha256:HEX`"},
			configDirFlag(), knownDevicesFlag(),
		},
		Action: func(c *cli.Context) error {
			addr := c.Args().First()
			prof, err := tlsconn.ParseProfile(c.String("tls"))
			if err != nil {
				return usageError{fmt.Errorf("--tls: %w", err)}
			}
			if prof == tlsconn.ProfileOff {
				return usagef("--tls off: a plain TCP device has no certificate to trust")
			}
			cert, info, err := tlsconn.Probe(c.Context, addr, prof, c.Duration("timeout"))
			weak := errors.Is(err, tlsconn.ErrWeakKey) && cert != nil
			switch {
			case weak: // show the certificate, then refuse
			case errors.Is(err, tlsconn.ErrHandshake) && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "no handshake within"):
				return fmt.Errorf("trust: the device did not answer TLS: a plain TCP device? then give its port --tls off (tls = \"off\" in a port file): it has no certificate to trust\n(%w)", err)
			case err != nil:
				return fmt.Errorf("trust: %w", err)
			}
			fmt.Fprintf(e.stdout, "device:       %s\n", addr)
			fmt.Fprintf(e.stdout, "tls:          %s %s\n", info.Version, info.Cipher)
			fmt.Fprintf(e.stdout, "subject:      %s\n", readableName(cert.Subject))
			fmt.Fprintf(e.stdout, "issuer:       %s\n", readableName(cert.Issuer))
			fmt.Fprintf(e.stdout, "valid:        %s to %s\n", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
			fmt.Fprintf(e.stdout, "key:          %s %d bits, signed with %s\n", cert.PublicKeyAlgorithm, info.KeyBits, cert.SignatureAlgorithm)
			fmt.Fprintf(e.stdout, "fingerprint:  %s\n", tlsconn.Fingerprint(cert))
			if weak {
				return fmt.Errorf("trust: the device's %d-bit key is too weak for the %s profile, which would refuse it: connect with --tls legacy (a pin is only good with the profile that accepts the key)", info.KeyBits, prof)
			}
			if c.Bool("accept") {
				return acceptDevice(c, e, addr, tlsconn.Fingerprint(cert))
			}
			name := c.String("write")
			if name == "" {
				fmt.Fprintf(e.stdout, "\nTo pin it in a new port:  vsp create NAME --device %s --tls %s --pin %s\n", addr, prof, tlsconn.Fingerprint(cert))
				fmt.Fprintf(e.stdout, "in an existing port:      vsp trust --write NAME --tls %s %s\n", prof, addr)
				fmt.Fprintf(e.stdout, "or in the foreground:     vsp run --device %s --tls %s --pin %s\n", addr, prof, tlsconn.Fingerprint(cert))
				return nil
			}
			path := config.PortFile(c.String("config-dir"), name)
			p, err := config.Load(path)
			if err != nil {
				return fmt.Errorf("trust: %w", err)
			}
			p.Trust.Mode = config.TrustPin
			p.Trust.Pin = tlsconn.Fingerprint(cert)
			if err := writePort(p, path, true); err != nil {
				return fmt.Errorf("trust: %w", err)
			}
			fmt.Fprintf(e.stdout, "pinned in %s\n", path)
			return nil
		},
	}
}

// acceptDevice records fp as the trusted certificate of addr in the
// known-devices file, after checking it against --expect.
func acceptDevice(c *cli.Context, e *env, addr, fp string) error {
	if want := c.String("expect"); want != "" {
		w, err := tlsconn.ParsePin(want)
		if err != nil {
			return usageError{fmt.Errorf("--expect: %w", err)}
		}
		if w != fp {
			return fmt.Errorf("trust: %s presents %s, not the expected %s: nothing accepted", addr, fp, w)
		}
	}
	path := c.String("known-devices")
	old, replaced, err := tlsconn.AcceptKnownDevice(path, addr, fp)
	if err != nil {
		return fmt.Errorf("trust: %w", err)
	}
	switch {
	case replaced && old.Fingerprint == fp:
		fmt.Fprintf(e.stdout, "\n%s was already trusted with this certificate; first seen time reset\n", addr)
	case replaced:
		fmt.Fprintf(e.stdout, "\naccepted in %s: %s\n  old: %s (first seen %s)\n  new: %s\n",
			path, addr, old.Fingerprint, old.FirstSeen.UTC().Format(time.RFC3339), fp)
	default:
		fmt.Fprintf(e.stdout, "\naccepted in %s: %s %s\n", path, addr, fp)
	}
	return nil
}

// attributeNames are the short names of the distinguished-name attributes
// certificates carry; crypto/x509 prints the e-mail address as a raw OID.
var attributeNames = map[string]string{
	"2.5.4.3": "CN", "2.5.4.5": "SERIALNUMBER", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
	"2.5.4.9": "STREET", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.17": "POSTALCODE",
	"1.2.840.113549.1.9.1": "emailAddress", "0.9.2342.19200300.100.1.25": "DC",
}

// readableName prints a distinguished name with every attribute by its
// short name and its value as text, most specific first (as openssl does
// not, but as RFC 4514 and crypto/x509 do).
func readableName(n pkix.Name) string {
	var parts []string
	for i := len(n.Names) - 1; i >= 0; i-- {
		a := n.Names[i]
		key, ok := attributeNames[a.Type.String()]
		if !ok {
			key = a.Type.String()
		}
		parts = append(parts, key+"="+fmt.Sprint(a.Value))
	}
	if len(parts) == 0 {
		return "(empty)"
	}
	return strings.Join(parts, ", ")
}
