// Package service is the vsp daemon, its control plane: ports are files in
// a directory (decoded by service/config), reloaded live when they change;
// each valid file runs as a bridge.Port; live state and Prometheus metrics
// are served on a local control socket.
//
// Under systemd (fdstore.go) the daemon reports readiness, status and
// watchdog beats, and keeps every port's pty in the unit's
// file-descriptor store, so its own crash, restart or upgrade never hangs
// an application up; SIGUSR2 re-executes it with the ptys where there is
// no service manager (reexec.go).
//
// The byte path itself lives in service/bridge.
package service
