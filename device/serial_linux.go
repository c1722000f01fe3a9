//go:build linux

package device

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

func isEIO(err error) bool { return errors.Is(err, syscall.EIO) }

// openPTY creates a PTY pair; the device drives the master and the slave's
// name is symlinked at path, where a test program plays the equipment.
func openPTY(path string) (*fileBackend, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("device: pty: %w", err)
	}
	b := &fileBackend{name: "pty:" + path, f: master, slave: slave}
	if err := setRaw(slave); err != nil {
		b.Close()
		return nil, err
	}
	if target, err := os.Readlink(path); err == nil {
		_ = target
		os.Remove(path) // a stale link from an earlier run
	}
	if err := os.Symlink(slave.Name(), path); err != nil {
		b.Close()
		return nil, fmt.Errorf("device: pty: %w", err)
	}
	b.link = path
	return b, nil
}

// openTTY opens a real serial device.
func openTTY(path string) (*fileBackend, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("device: serial: %w", err)
	}
	b := &fileBackend{name: path, f: f}
	if err := setRaw(f); err != nil {
		f.Close()
		return nil, err
	}
	return b, nil
}

func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func setRaw(f *os.File) error {
	err := control(f, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
		t.Cc[unix.VMIN] = 1
		t.Cc[unix.VTIME] = 0
		return unix.IoctlSetTermios(fd, unix.TCSETS, t)
	})
	if err != nil {
		return fmt.Errorf("device: termios: %w", err)
	}
	return nil
}

var baudFlags = map[int]uint32{
	1200: unix.B1200, 2400: unix.B2400, 4800: unix.B4800, 9600: unix.B9600,
	19200: unix.B19200, 38400: unix.B38400, 57600: unix.B57600, 115200: unix.B115200,
	230400: unix.B230400, 460800: unix.B460800, 921600: unix.B921600,
}

// configure applies s to the termios of the tty (or of the PTY slave, so
// the program playing the equipment can see the speed).
func (b *fileBackend) configure(s Serial) error {
	f := b.f
	if b.slave != nil {
		f = b.slave
	}
	speed, ok := baudFlags[s.Baud]
	if !ok {
		return fmt.Errorf("%w: baud rate %d", ErrInvalid, s.Baud)
	}
	err := control(f, func(fd int) error {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return err
		}
		t.Cflag &^= unix.CBAUD | unix.CSIZE | unix.PARENB | unix.PARODD | unix.CSTOPB | unix.CRTSCTS
		t.Cflag |= speed
		t.Ispeed, t.Ospeed = uint32(s.Baud), uint32(s.Baud)
		if s.DataBits == 7 {
			t.Cflag |= unix.CS7
		} else {
			t.Cflag |= unix.CS8
		}
		switch s.Parity {
		case "even":
			t.Cflag |= unix.PARENB
		case "odd":
			t.Cflag |= unix.PARENB | unix.PARODD
		}
		if s.StopBits == 2 {
			t.Cflag |= unix.CSTOPB
		}
		t.Iflag &^= unix.IXON | unix.IXOFF
		switch s.Flow {
		case "rtscts":
			t.Cflag |= unix.CRTSCTS
		case "xonxoff":
			t.Iflag |= unix.IXON | unix.IXOFF
		}
		return unix.IoctlSetTermios(fd, unix.TCSETS, t)
	})
	if err != nil {
		return fmt.Errorf("device: termios %s: %w", b.name, err)
	}
	return nil
}

// flush discards the tty's input and/or output queues (tcflush), counting
// them first (TIOCINQ, TIOCOUTQ).
func (b *fileBackend) flush(input, output bool) (in, out int, err error) {
	err = control(b.f, func(fd int) error {
		if input {
			in, _ = unix.IoctlGetInt(fd, unix.TIOCINQ)
			err := unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
			b.epoch.Add(1)
			if err != nil {
				return err
			}
		}
		if output {
			out, _ = unix.IoctlGetInt(fd, unix.TIOCOUTQ)
			return unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCOFLUSH)
		}
		return nil
	})
	if err != nil {
		return in, out, fmt.Errorf("device: flush %s: %w", b.name, err)
	}
	return in, out, nil
}
