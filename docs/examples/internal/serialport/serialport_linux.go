//go:build linux

package serialport

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

var speeds = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200,
	230400: unix.B230400,
}

// Open opens path raw at baud (8N1, no flow control). The file is in Go's
// poller, so SetReadDeadline works; do not call its Fd method, which would
// make it blocking.
func Open(path string, baud int) (*os.File, error) {
	speed, ok := speeds[baud]
	if !ok {
		return nil, fmt.Errorf("serialport: %s: unsupported baud rate %d", path, baud)
	}
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("serialport: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("serialport: %s: %w", path, err)
	}
	var terr error
	err = rc.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR |
			unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CSTOPB | unix.CRTSCTS | unix.CBAUD
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | speed
		t.Ispeed, t.Ospeed = speed, speed
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	if err == nil {
		err = terr
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("serialport: %s: set raw %d 8N1: %w", path, baud, err)
	}
	return f, nil
}
