// Package service is the vsp daemon, its control plane: ports are files in
// a directory (decoded by service/config), reloaded live when they change;
// each valid file runs as a bridge.Port; live state and Prometheus metrics
// are served on a local control socket.
//
// The byte path itself lives in service/bridge.
package service
