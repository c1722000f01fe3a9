// Package logging holds the slog handlers vsp's logs pass through on their
// way to a person: [Dedup] rate-limits repeated identical warnings (the
// first one is written, later identical ones are counted and summarised),
// and [Journal] prefixes each line with its sd-daemon(3) priority ("<4>"
// for a warning) when stderr is connected to the systemd journal, so that
// `journalctl -p warning` selects by level. The package knows nothing of
// vsp.
package logging
