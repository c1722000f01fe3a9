package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	path := flag.String("tty", "/dev/ttyVSP0", "serial port to open")
	stop := flag.String("stop", "", "stop writing when this file exists, then wait for the last echoes")
	pause := flag.String("pause", "", "do not write while this file exists (reading goes on)")
	chunk := flag.Int("chunk", 32, "bytes per write")
	every := flag.Duration("every", 10*time.Millisecond, "time between writes")
	gap := flag.Duration("gap", 100*time.Millisecond, "silence reported as a gap")
	drain := flag.Duration("drain", 60*time.Second, "longest wait for the last echoes after -stop")
	hangup := flag.Bool("expect-hangup", false, "succeed when the port hangs up (stop means stop)")
	flag.Parse()
	if err := run(*path, *stop, *pause, *chunk, *every, *gap, *drain, *hangup); err != nil {
		fmt.Printf("FAIL: %v\n", err)
		os.Exit(1)
	}
}

// pattern is the byte at stream position i: not periodic in a chunk size.
func pattern(i int64) byte { return byte(i%251) ^ byte(i/251) }

func run(path, stop, pause string, chunk int, every, gap, drain time.Duration, expectHangup bool) error {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("TCGETS: %w", err)
	}
	// cfmakeraw
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return fmt.Errorf("TCSETS: %w", err)
	}
	fmt.Printf("open %s\n", path)

	var written, read, maxGap int64
	last := time.Now() // last echo, or the start
	progress := time.Now()
	paused, resumed := false, false // resumed: the first echo after a pause is due
	nextWrite := time.Now()
	stopping := time.Time{}
	out := make([]byte, chunk)
	in := make([]byte, 4096)
	for {
		now := time.Now()
		if now.Sub(progress) >= time.Second {
			fmt.Printf("progress written=%d read=%d\n", written, read)
			progress = now
		}
		if stopping.IsZero() && stop != "" {
			if _, err := os.Stat(stop); err == nil {
				stopping = now
			}
		}
		if !stopping.IsZero() {
			if read == written {
				fmt.Printf("done written=%d read=%d maxgap_ms=%d\n", written, read, maxGap)
				return nil
			}
			if now.Sub(stopping) > drain {
				return fmt.Errorf("lost: written=%d read=%d after waiting %v", written, read, drain)
			}
		}
		wantWrite := stopping.IsZero() && !now.Before(nextWrite)
		if wantWrite && pause != "" {
			_, err := os.Stat(pause)
			switch {
			case err == nil:
				wantWrite = false
				paused = true
			case paused:
				paused, resumed = false, true
			}
		}
		ev := int16(unix.POLLIN)
		if wantWrite {
			ev |= unix.POLLOUT
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: ev}}
		if _, err := unix.Poll(pfd, 5); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll: %w", err)
		}
		re := pfd[0].Revents
		if re&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
			if expectHangup {
				fmt.Printf("hangup: revents=%#x written=%d read=%d\n", re, written, read)
				return nil
			}
			return fmt.Errorf("poll revents %#x (hang-up) after written=%d read=%d", re, written, read)
		}
		if re&unix.POLLIN != 0 {
			n, err := unix.Read(fd, in)
			switch {
			case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			case err != nil:
				if expectHangup && errors.Is(err, unix.EIO) {
					fmt.Printf("hangup: read: %v\n", err)
					return nil
				}
				return fmt.Errorf("read: %w after written=%d read=%d", err, written, read)
			case n == 0:
				return fmt.Errorf("read returned 0 bytes (end of file) after written=%d read=%d", written, read)
			default:
				for i := 0; i < n; i++ {
					if want := pattern(read); in[i] != want || read >= written {
						return fmt.Errorf("byte %d: got %#02x, want %#02x (written %d)", read, in[i], want, written)
					}
					read++
				}
				now := time.Now()
				if resumed {
					fmt.Printf("resumed echo=%d\n", now.UnixNano())
					resumed = false
				}
				if d := now.Sub(last); d >= gap {
					fmt.Printf("gap start=%d end=%d ms=%d\n", last.UnixNano(), now.UnixNano(), d.Milliseconds())
					maxGap = max(maxGap, d.Milliseconds())
				}
				last = now
			}
		}
		if read == written {
			// Nothing outstanding: silence is not a gap.
			last = time.Now()
		}
		if wantWrite && re&unix.POLLOUT != 0 {
			for i := range out {
				out[i] = pattern(written + int64(i))
			}
			n, err := unix.Write(fd, out)
			switch {
			case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR):
			case err != nil:
				if expectHangup && errors.Is(err, unix.EIO) {
					fmt.Printf("hangup: write: %v\n", err)
					return nil
				}
				return fmt.Errorf("write: %w after written=%d read=%d", err, written, read)
			default:
				written += int64(n)
				nextWrite = time.Now().Add(every)
			}
		}
	}
}
