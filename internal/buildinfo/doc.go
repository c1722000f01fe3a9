// Package buildinfo says which build a binary is: the version and commit
// stamped by `make build` (-ldflags "-X main.version=… -X main.commit=…"),
// else what the Go toolchain recorded. vsp and ezsim use it alike.
package buildinfo
