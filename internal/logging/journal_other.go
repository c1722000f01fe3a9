//go:build !unix

package logging

import "os"

// OnJournal reports false: systemd's journal exists on Linux only.
func OnJournal(f *os.File, journalStream string) bool { return false }
