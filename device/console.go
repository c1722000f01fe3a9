package device

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Console timing.
const (
	consoleIdle    = 10 * time.Minute // an idle console session is closed
	maxLoginFails  = 3                // wrong passwords before the connection is closed
	defaultSollae  = "sollae"         // firmware 2.0A: asked even when no password is set
	sslSaveCode    = "aa55cc33"
	consolePrompt  = "lsh>"
	passwordPrompt = "password:"
)

// console is the telnet console server of one boot.
type console struct {
	d  *Device
	ln net.Listener
	wg sync.WaitGroup
}

func listenConsole(ctx context.Context, d *Device, addr string) (*console, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("device: console: %w", err)
	}
	return &console{d: d, ln: ln}, nil
}

func (c *console) serve(ctx context.Context) {
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		<-ctx.Done()
		c.ln.Close()
		mu.Lock()
		for conn := range conns {
			conn.Close()
		}
		mu.Unlock()
	}()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			break
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			conn.Close()
			break
		}
		conns[conn] = true
		mu.Unlock()
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			s := &consoleSession{d: c.d, conn: conn, w: bufio.NewWriter(conn)}
			s.t = newTelnetReader(conn, s.w)
			s.run(ctx)
			conn.Close()
			mu.Lock()
			delete(conns, conn)
			mu.Unlock()
		}()
	}
	c.wg.Wait()
}

// consoleSession is one telnet client.
type consoleSession struct {
	d    *Device
	conn net.Conn
	w    *bufio.Writer
	t    *telnetReader
}

func (s *consoleSession) printf(format string, a ...any) {
	fmt.Fprintf(s.w, format, a...)
}

// println writes a line with CR LF, converting embedded LF.
func (s *consoleSession) println(text string) {
	text = strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\n", "\r\n")
	s.w.WriteString(text + "\r\n")
}

func (s *consoleSession) flush() error { return s.w.Flush() }

func (s *consoleSession) readLine() (string, error) {
	s.conn.SetReadDeadline(time.Now().Add(consoleIdle))
	if err := s.flush(); err != nil {
		return "", err
	}
	return s.t.readLine()
}

func (s *consoleSession) run(ctx context.Context) {
	log := s.d.log.With("console", s.conn.RemoteAddr().String())
	if !s.login(ctx) {
		s.flush()
		return
	}
	log.Info("console login")
	for ctx.Err() == nil {
		s.printf("%s", consolePrompt)
		line, err := s.readLine()
		switch {
		case errors.Is(err, errLineTooLong):
			s.println(fmt.Sprintf("lsh: line too long (max %d bytes)", maxLine))
			continue
		case errors.Is(err, errBinary):
			s.println("lsh: invalid characters in command")
			continue
		case err != nil:
			return
		}
		if !s.exec(ctx, line) {
			s.flush()
			return
		}
	}
}

// login asks the password as firmware 2.0A does and enforces the lockout.
func (s *consoleSession) login(ctx context.Context) bool {
	d := s.d
	d.mu.Lock()
	want := d.set.Password
	wait := time.Until(d.lockUntil)
	d.mu.Unlock()
	if want == "" {
		if !firmwareAtLeast2(d.cfg.Firmware) {
			return true
		}
		want = defaultSollae
	}
	if wait > 0 {
		s.println(fmt.Sprintf("too many login failures: wait %.0f seconds", wait.Seconds()+0.5))
		s.flush()
		sleep(ctx, wait)
		if ctx.Err() != nil {
			return false
		}
	}
	s.t.setCharMode(true)
	for {
		s.printf("%s", passwordPrompt)
		line, err := s.readLine()
		s.println("")
		if err != nil && !errors.Is(err, errLineTooLong) && !errors.Is(err, errBinary) {
			return false
		}
		if err == nil && line == want {
			s.t.setCharMode(false)
			d.mu.Lock()
			d.loginFails = 0
			d.mu.Unlock()
			return true
		}
		s.println("password incorrect")
		// Failures count for the device, not the connection: reconnecting
		// after two wrong passwords does not buy three more.
		d.mu.Lock()
		d.loginFails++
		locked := d.loginFails >= maxLoginFails
		if locked {
			d.loginFails = 0
			d.lockUntil = time.Now().Add(d.cfg.LoginDelay)
		}
		d.mu.Unlock()
		if locked {
			break
		}
	}
	s.d.log.Warn("console: too many wrong passwords", "remote", s.conn.RemoteAddr().String())
	s.println("too many login failures")
	return false
}

// consoleCommand is one console command.
type consoleCommand struct {
	words []string // leading words that select it
	usage string
	run   func(s *consoleSession, ctx context.Context, args []string) bool
}

// parseCommand splits a console line into lower-cased command words and
// arguments (arguments keep their case).
func parseCommand(line string) []string {
	return strings.Fields(line)
}

// lookupCommand finds the command for the words of a line.
func lookupCommand(f []string) (*consoleCommand, []string) {
	var best *consoleCommand
	table := commandTable()
	for i := range table {
		c := &table[i]
		if len(f) < len(c.words) {
			continue
		}
		ok := true
		for j, w := range c.words {
			if !strings.EqualFold(f[j], w) {
				ok = false
				break
			}
		}
		if ok && (best == nil || len(c.words) > len(best.words)) {
			best = c
		}
	}
	if best == nil {
		return nil, nil
	}
	return best, f[len(best.words):]
}

// exec runs one line; false ends the session.
func (s *consoleSession) exec(ctx context.Context, line string) bool {
	f := parseCommand(line)
	if len(f) == 0 {
		return true
	}
	c, args := lookupCommand(f)
	if c == nil {
		s.println("lsh: unknown command: " + f[0] + " (type help)")
		return true
	}
	return c.run(s, ctx, args)
}
