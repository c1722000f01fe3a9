//go:build !unix

package main

// socketAccessible reports false: the system daemon's socket is a Unix
// one, on Unix systems only.
func socketAccessible(string) bool { return false }

// socketGroup reports no group: there are no Unix groups here.
func socketGroup(string) (int, bool) { return 0, false }
