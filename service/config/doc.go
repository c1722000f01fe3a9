// Package config reads, validates and writes vsp's configuration files: one
// TOML file per port in a directory (<dir>/<name>.toml, the port's name
// being the file name), and an optional daemon-wide settings file.
//
// The reference for users is docs/configuration.md. In short:
//
//	link   = "/dev/ttyVSP0"      # the tty symlink (required)
//	device = "10.1.0.1:1470"     # or devices = [...], or listen = ":1470"
//	tls    = "legacy"            # off | legacy | modern
//
//	[trust]                      # certificate verification
//	pin = "sha256:…"
//
//	[net]                        # TCP link tuning
//	[tty]                        # owner, group, mode of the tty
//	[serial]                     # what the device's serial line runs at
//
// Naming: the top-level key `link` is the tty symlink, the thing a user
// configures first and names most often; TCP tuning of the link to the
// device lives in the table [net]. A TOML file cannot have both a key and a
// table called "link", and "net" says what the table tunes.
//
// Every problem is reported as an *Error that says where and what,
// formatted "<file>:<line>:<col>: <key>: <reason>" (for example
// "/etc/vsp/ports.d/plc1.toml:7:1: trust.pin: want sha256:<64 hex digits>,
// got "abc""). Parse, Load and Validate report all problems of a file at
// once, joined with errors.Join in file order; Errors splits them again.
// Unknown keys (with a "did you mean"), wrong types and TOML syntax errors
// are positioned by go-toml; values checked after decoding are positioned
// by an index of key locations built with go-toml's unstable parser.
//
// Load is the one port-file loader: it reads only a regular file of at most
// 1 MiB and refuses anything else (FIFO, socket, device, directory) at once,
// without blocking. Ignored is the one rule for which directory entries are
// not port files, and Conflicts the one check for two ports that cannot run
// side by side (the same link, overlapping listen addresses); the daemon
// uses all three.
//
// A Port built in code (rather than parsed) follows the usual vsp
// convention: zero fields mean the default. Validate and Encode treat them
// so, and SetDefaults fills them in.
//
// Each key has one parser, shared with its command-line flag: sizes
// (ParseByteSize), durations (ParseDuration), tty modes (ParseMode) and MAC
// addresses (ParseMAC) live here; certificate pins and TLS profile names are
// parsed by tlsconn (ParsePin, ParseProfile), whose values they are and
// which needs them itself (known-devices file, `vsp trust`), and the trust
// mode names are tlsconn's constants. So the package imports tlsconn, a
// package with no vsp imports but internal/rawio, and nothing else of vsp:
// it stays below the daemon and the bridge. The daemon maps a Port onto the
// pty, tlsconn and bridge configurations (service.SpecFromConfig), for a
// file and for `vsp run --device` alike.
package config
