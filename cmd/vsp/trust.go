package main

import (
	"fmt"
	"path/filepath"
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
			if err != nil {
				return fmt.Errorf("trust: %w", err)
			}
			fmt.Fprintf(e.stdout, "device:       %s\n", addr)
			fmt.Fprintf(e.stdout, "tls:          %s %s\n", info.Version, info.Cipher)
			fmt.Fprintf(e.stdout, "subject:      %s\n", cert.Subject)
			fmt.Fprintf(e.stdout, "issuer:       %s\n", cert.Issuer)
			fmt.Fprintf(e.stdout, "valid:        %s to %s\n", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339))
			fmt.Fprintf(e.stdout, "key:          %s %d bits, signed with %s\n", cert.PublicKeyAlgorithm, info.KeyBits, cert.SignatureAlgorithm)
			fmt.Fprintf(e.stdout, "fingerprint:  %s\n", tlsconn.Fingerprint(cert))
			if c.Bool("accept") {
				return acceptDevice(c, e, addr, tlsconn.Fingerprint(cert))
			}
			name := c.String("write")
			if name == "" {
				fmt.Fprintf(e.stdout, "\nTo pin it: vsp run --device %s --tls %s --pin %s\n", addr, prof, tlsconn.Fingerprint(cert))
				return nil
			}
			path := filepath.Join(c.String("config-dir"), name+".toml")
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
