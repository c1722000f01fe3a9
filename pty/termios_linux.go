//go:build linux

package pty

import "golang.org/x/sys/unix"

// baudRates maps the standard CBAUD codes to bit rates.
var baudRates = [...]struct {
	code uint32
	rate uint32
}{
	{unix.B0, 0}, {unix.B50, 50}, {unix.B75, 75}, {unix.B110, 110},
	{unix.B134, 134}, {unix.B150, 150}, {unix.B200, 200}, {unix.B300, 300},
	{unix.B600, 600}, {unix.B1200, 1200}, {unix.B1800, 1800},
	{unix.B2400, 2400}, {unix.B4800, 4800}, {unix.B9600, 9600},
	{unix.B19200, 19200}, {unix.B38400, 38400}, {unix.B57600, 57600},
	{unix.B115200, 115200}, {unix.B230400, 230400}, {unix.B460800, 460800},
	{unix.B500000, 500000}, {unix.B576000, 576000}, {unix.B921600, 921600},
	{unix.B1000000, 1000000}, {unix.B1152000, 1152000},
	{unix.B1500000, 1500000}, {unix.B2000000, 2000000},
	{unix.B2500000, 2500000}, {unix.B3000000, 3000000},
	{unix.B3500000, 3500000}, {unix.B4000000, 4000000},
}

// outputSpeed returns the output bit rate of t. The kernel keeps c_ospeed
// up to date on every TCSETS*, so it is used when set; the CBAUD code is
// the fallback (and the only source for B0).
func outputSpeed(t *unix.Termios) uint32 {
	code := t.Cflag & unix.CBAUD
	if code == unix.BOTHER {
		return t.Ospeed
	}
	for _, b := range baudRates {
		if b.code == code {
			return b.rate
		}
	}
	return t.Ospeed
}

// settingsFromTermios decodes the parts of a termios a serial port cares
// about.
func settingsFromTermios(t *unix.Termios) Settings {
	s := Settings{
		Baud:     outputSpeed(t),
		DataBits: 8,
		StopBits: 1,
		RTSCTS:   t.Cflag&unix.CRTSCTS != 0,
		XONXOFF:  t.Iflag&(unix.IXON|unix.IXOFF) != 0,
		Raw:      t.Lflag&(unix.ICANON|unix.ECHO) == 0,
	}
	switch t.Cflag & unix.CSIZE {
	case unix.CS5:
		s.DataBits = 5
	case unix.CS6:
		s.DataBits = 6
	case unix.CS7:
		s.DataBits = 7
	}
	if t.Cflag&unix.CSTOPB != 0 {
		s.StopBits = 2
	}
	if t.Cflag&unix.PARENB != 0 {
		odd := t.Cflag&unix.PARODD != 0
		switch {
		case t.Cflag&unix.CMSPAR != 0 && odd:
			s.Parity = ParityMark
		case t.Cflag&unix.CMSPAR != 0:
			s.Parity = ParitySpace
		case odd:
			s.Parity = ParityOdd
		default:
			s.Parity = ParityEven
		}
	}
	return s
}

// setSpeed sets both speeds of t to rate, with a standard CBAUD code when
// one exists and BOTHER otherwise.
func setSpeed(t *unix.Termios, rate uint32) {
	code := uint32(unix.BOTHER)
	for _, b := range baudRates {
		if b.rate == rate {
			code = b.code
			break
		}
	}
	t.Cflag = t.Cflag&^unix.CBAUD | code
	// Input speed follows output speed (CIBAUD = 0 means "same").
	t.Cflag &^= unix.CIBAUD
	t.Ispeed = rate
	t.Ospeed = rate
}

// applySettings writes s into t (speed, frame, flow control, raw or
// cooked), leaving unrelated flags alone.
func applySettings(t *unix.Termios, s Settings) {
	setSpeed(t, s.Baud)
	t.Cflag &^= unix.CSIZE | unix.CSTOPB | unix.PARENB | unix.PARODD | unix.CMSPAR | unix.CRTSCTS
	switch s.DataBits {
	case 5:
		t.Cflag |= unix.CS5
	case 6:
		t.Cflag |= unix.CS6
	case 7:
		t.Cflag |= unix.CS7
	default:
		t.Cflag |= unix.CS8
	}
	if s.StopBits == 2 {
		t.Cflag |= unix.CSTOPB
	}
	switch s.Parity {
	case ParityOdd:
		t.Cflag |= unix.PARENB | unix.PARODD
	case ParityEven:
		t.Cflag |= unix.PARENB
	case ParityMark:
		t.Cflag |= unix.PARENB | unix.PARODD | unix.CMSPAR
	case ParitySpace:
		t.Cflag |= unix.PARENB | unix.CMSPAR
	}
	if s.RTSCTS {
		t.Cflag |= unix.CRTSCTS
	}
	t.Iflag &^= unix.IXON | unix.IXOFF
	if s.XONXOFF {
		t.Iflag |= unix.IXON | unix.IXOFF
	}
	if s.Raw {
		makeRaw(t)
	} else {
		t.Lflag |= unix.ICANON | unix.ECHO
	}
}

// makeRaw is cfmakeraw(3) without the CSIZE/PARENB part (the caller sets
// the frame).
func makeRaw(t *unix.Termios) {
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
}

// initialTermios turns t into the port's power-on state: raw, 8N, the
// speed, stop bits and flow control of init (9600 1 stop bit when
// init.Baud is 0), CLOCAL|CREAD, no HUPCL (like a freshly probed UART but
// raw), without EXTPROC (Open then sets it: the input is raw; see follow).
func initialTermios(t *unix.Termios, init Settings) {
	s := Settings{Baud: 9600, DataBits: 8, StopBits: 1, Raw: true}
	if init.Baud != 0 {
		s.Baud = init.Baud
		s.RTSCTS, s.XONXOFF = init.RTSCTS, init.XONXOFF
		if init.StopBits == 2 {
			s.StopBits = 2
		}
	}
	applySettings(t, s)
	t.Cflag |= unix.CLOCAL | unix.CREAD
	t.Cflag &^= unix.HUPCL
	t.Lflag &^= unix.EXTPROC
}

// packet is a decoded TIOCPKT control byte (a non-zero first byte of a
// master read).
type packet struct {
	flushRead  bool // TIOCPKT_FLUSHREAD
	flushWrite bool // TIOCPKT_FLUSHWRITE
	stop       bool // TIOCPKT_STOP
	start      bool // TIOCPKT_START
	reread     bool // TIOCPKT_IOCTL, TIOCPKT_NOSTOP or TIOCPKT_DOSTOP: termios changed
}

// decodePacket decodes a packet-mode status byte.
func decodePacket(c byte) packet {
	return packet{
		flushRead:  c&unix.TIOCPKT_FLUSHREAD != 0,
		flushWrite: c&unix.TIOCPKT_FLUSHWRITE != 0,
		stop:       c&unix.TIOCPKT_STOP != 0,
		start:      c&unix.TIOCPKT_START != 0,
		reread:     c&(unix.TIOCPKT_IOCTL|unix.TIOCPKT_NOSTOP|unix.TIOCPKT_DOSTOP) != 0,
	}
}
