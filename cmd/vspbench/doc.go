// Command vspbench measures vsp against socat and a bare-PTY floor on the
// same machine in one run, with yardsticks (relay-min: the least any
// PTY-to-TCP redirector costs here; go-min and go-min-raw: the least a Go
// redirector costs, in a process of its own; vsp-plain: vsp on the same
// footing),
// plus the scale, churn, busy, settings (tcsetattr → RFC 2217 command
// latency and order) and recovery scenarios, and writes docs/performance.md and
// docs/performance-rtt.svg. See docs/performance.md.
//
//	go run ./cmd/vspbench            # everything, about 2 minutes
//	go run ./cmd/vspbench -scale 0   # skip the 1000-port scenario
//
// It installs nothing: socat and openssl must be on PATH for the socat path
// (skipped with a message otherwise), and go for building vsp and ezsim.
package main
