//go:build !unix

package config

import "io/fs"

// trustedFile checks nothing where files have no Unix owner and mode.
func trustedFile(path string, fi fs.FileInfo) error { return nil }
