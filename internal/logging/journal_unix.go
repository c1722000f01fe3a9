//go:build unix

package logging

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// OnJournal reports whether f is the stream systemd connected to the
// journal: $JOURNAL_STREAM ("DEVICE:INODE") names f's device and inode.
func OnJournal(f *os.File, journalStream string) bool {
	dev, ino, ok := strings.Cut(journalStream, ":")
	if !ok {
		return false
	}
	fi, err := f.Stat() // not f.Fd(): that would make the fd blocking
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return dev == strconv.FormatUint(uint64(st.Dev), 10) && ino == strconv.FormatUint(uint64(st.Ino), 10)
}
