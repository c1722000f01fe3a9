package testenv

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Eventually polls cond until it holds, or fails the test after timeout
// saying what it waited for. Tests wait on conditions with this instead of
// sleeping and assuming.
func Eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	eventually(tb, timeout, what, cond, func() string { return "" })
}

func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool, last func() string) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v waiting for %s%s", timeout, what, last())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Await polls get until ok accepts its value and returns that value, or
// fails the test after timeout saying what it waited for and showing the
// last value.
func Await[T any](tb testing.TB, timeout time.Duration, what string, get func() T, ok func(T) bool) T {
	tb.Helper()
	var v T
	eventually(tb, timeout, what, func() bool { v = get(); return ok(v) }, func() string { return fmt.Sprintf("; last %+v", v) })
	return v
}

// Blocked waits until a goroutine that has fn on its stack (a function
// name as a stack trace shows it, e.g. "pty.(*Port).Read") is blocked in
// state: "IO wait" (parked in Go's network poller) or "syscall" (in a
// blocking system call, e.g. on a file that Fd put in blocking mode). A
// test can then act on a call known to be blocked instead of sleeping and
// hoping it is. Fails the test after timeout.
func Blocked(tb testing.TB, timeout time.Duration, state, fn string) {
	tb.Helper()
	Eventually(tb, timeout, fn+" blocked ("+state+")", func() bool { return blocked(state, fn) })
}

func blocked(state, fn string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	// Each goroutine: "goroutine 7 [IO wait, 2 minutes]:" then its frames.
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		header, stack, _ := strings.Cut(string(g), "\n")
		if strings.Contains(header, "["+state+"]") || strings.Contains(header, "["+state+",") {
			if strings.Contains(stack, fn+"(") {
				return true
			}
		}
	}
	return false
}
