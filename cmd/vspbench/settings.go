//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/rfc2217"
)

// The settings scenario: how long an application's tcsetattr takes to
// reach the device as an RFC 2217 SET-BAUDRATE, and whether the bytes
// written around a tcsetattr(TCSADRAIN) stay on their side of the command.
// The far end is an rfc2217.Server in the bench process behind a plain TCP
// listener; a tap on its connection decodes the raw stream itself, so it
// knows each command's arrival time and its exact position among the data
// bytes.

// settingsModes are the application's modes: pty hears tcsetattr of a
// raw-mode application and of one with input processing by different means.
var settingsModes = []settingsMode{
	{name: "raw", desc: "cfmakeraw-like: no ICANON, ISIG, IEXTEN, ECHO, ICRNL, IXON, OPOST"},
	{name: "canonical", desc: "ICANON, ISIG, IEXTEN, ICRNL, IXON set; ECHO and OPOST off", cooked: true},
}

type settingsMode struct {
	name, desc string
	cooked     bool
}

// settingsOrderBlock is the size of the marked blocks written before and
// after each tcsetattr(TCSADRAIN) of the ordering measurement.
const settingsOrderBlock = 8

// settingsResult is what one run of the settings scenario measured on one
// build in one mode.
type settingsResult struct {
	build   string
	mode    string
	lat     []time.Duration // tcsetattr → SET-BAUDRATE at the far end, one per change
	extra   int             // SET-BAUDRATE commands beyond one per change
	orders  int             // write A, tcsetattr(TCSADRAIN), write B samples
	aAfter  int             // ... where A's bytes arrived after the command
	bBefore int             // ... where B's bytes arrived before it
}

// baudCmd is a SET-BAUDRATE that reached the far end.
type baudCmd struct {
	baud uint32
	at   time.Time
	off  int // data bytes received before it
	idx  int // commands received before it
}

// settingsFarEnd is the device of the settings scenario: RFC 2217 server
// side, plain TCP, one session at a time; it records every data byte and
// every SET-BAUDRATE, in order.
type settingsFarEnd struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	data []byte
	cmds []baudCmd
	conn net.Conn      // current session
	kick chan struct{} // closed and replaced on every record
	err  error         // the first decoding or protocol error
}

func startSettingsFarEnd() (*settingsFarEnd, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("vspbench: settings far end: %w", err)
	}
	f := &settingsFarEnd{ln: ln, kick: make(chan struct{})}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *settingsFarEnd) addr() string { return f.ln.Addr().String() }

func (f *settingsFarEnd) accept() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.conn != nil {
			_ = f.conn.Close() // a redial replaces the session
		}
		f.conn = c
		f.mu.Unlock()
		f.wg.Add(1)
		go f.serve(c)
	}
}

// serve runs one session: the rfc2217.Server answers the client, reading
// through a tap that records what arrives.
func (f *settingsFarEnd) serve(c net.Conn) {
	defer f.wg.Done()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	srv, err := rfc2217.NewServer(&tapConn{Conn: c, f: f}, &settingsHandler{}, nil)
	if err != nil {
		f.fail(err)
		_ = c.Close()
		return
	}
	defer srv.Close()
	buf := make([]byte, 16<<10)
	for {
		if _, err := srv.Read(buf); err != nil {
			if errors.Is(err, rfc2217.ErrProtocol) {
				f.fail(err)
			}
			return
		}
	}
}

func (f *settingsFarEnd) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = fmt.Errorf("vspbench: settings far end: %w", err)
	}
	f.mu.Unlock()
}

// record decodes raw bytes read from the client at time at.
func (f *settingsFarEnd) record(at time.Time, raw []byte, dec *rfc2217.Decoder, scratch []byte) []byte {
	if cap(scratch) < len(raw) {
		scratch = make([]byte, len(raw))
	}
	scratch = scratch[:len(raw)]
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(raw) > 0 {
		nd, ns, ev, err := dec.Decode(scratch, raw)
		f.data = append(f.data, scratch[:nd]...)
		raw = raw[ns:]
		if err != nil {
			if f.err == nil {
				f.err = fmt.Errorf("vspbench: settings far end: %w", err)
			}
			break
		}
		if ev.Verb != rfc2217.SB || ev.Option != rfc2217.OptComPort || len(ev.Data) == 0 {
			continue
		}
		m, err := rfc2217.DecodeMessage(ev.Data)
		if err == nil && !m.Server && m.Command == rfc2217.CmdSetBaudRate && m.BaudRate != 0 {
			f.cmds = append(f.cmds, baudCmd{baud: m.BaudRate, at: at, off: len(f.data), idx: len(f.cmds)})
		}
	}
	close(f.kick)
	f.kick = make(chan struct{})
	return scratch
}

// state returns how many data bytes and commands have arrived.
func (f *settingsFarEnd) state() (data, cmds int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.data), len(f.cmds)
}

// waitBaud waits for the first SET-BAUDRATE baud from index from on, and
// until at least data bytes have arrived.
func (f *settingsFarEnd) waitBaud(from int, baud uint32, data int, deadline time.Time) (baudCmd, error) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		f.mu.Lock()
		kick, err := f.kick, f.err
		var got *baudCmd
		others := 0
		for i := from; i < len(f.cmds); i++ {
			if f.cmds[i].baud == baud {
				got = &f.cmds[i]
				break
			}
			others++
		}
		enough := len(f.data) >= data
		n := len(f.data)
		f.mu.Unlock()
		if err != nil {
			return baudCmd{}, err
		}
		if got != nil && enough {
			return *got, nil
		}
		select {
		case <-kick:
		case <-t.C:
			if got == nil {
				return baudCmd{}, fmt.Errorf("vspbench: no SET-BAUDRATE %d at the far end (%d other commands): %w", baud, others, context.DeadlineExceeded)
			}
			return baudCmd{}, fmt.Errorf("vspbench: %d of %d data bytes at the far end: %w", n, data, context.DeadlineExceeded)
		}
	}
}

// dataAt returns a copy of the data bytes [from, to).
func (f *settingsFarEnd) dataAt(from, to int) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.data[from:min(to, len(f.data))])
}

func (f *settingsFarEnd) close() error {
	err := f.ln.Close()
	f.mu.Lock()
	if f.conn != nil {
		_ = f.conn.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return err
}

// tapConn hands every byte read to the far end's recorder (with the time
// it arrived) before the rfc2217.Server sees it.
type tapConn struct {
	net.Conn
	f       *settingsFarEnd
	dec     rfc2217.Decoder
	scratch []byte
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.scratch = c.f.record(time.Now(), p[:n], &c.dec, c.scratch)
	}
	return n, err
}

// settingsHandler is the far end's serial port: it takes every setting.
type settingsHandler struct{ cur rfc2217.Settings }

func (h *settingsHandler) SetBaudRate(b uint32) (uint32, error) { h.cur.BaudRate = b; return b, nil }
func (h *settingsHandler) SetDataSize(n int) (int, error)       { h.cur.DataSize = n; return n, nil }
func (h *settingsHandler) SetParity(p rfc2217.Parity) (rfc2217.Parity, error) {
	h.cur.Parity = p
	return p, nil
}
func (h *settingsHandler) SetStopBits(s rfc2217.StopBits) (rfc2217.StopBits, error) {
	h.cur.StopBits = s
	return s, nil
}
func (h *settingsHandler) SetControl(c rfc2217.Control) (rfc2217.Control, error) { return c, nil }
func (h *settingsHandler) Purge(rfc2217.PurgeWhat) error                         { return nil }
func (h *settingsHandler) Current() rfc2217.Settings                             { return h.cur }

// settingsBauds are the speeds the application alternates between, with
// their termios codes.
var settingsBauds = [2]struct {
	baud uint32
	code uint32
}{{19200, unix.B19200}, {38400, unix.B38400}}

// runSettings brings up one vsp port (vspBin, plain TCP, --rfc2217) against
// a settings far end and, in each mode, changes the baud rate changes times
// (tcsetattr TCSANOW, each change waiting for its command) and runs orders
// write A / tcsetattr(TCSADRAIN) / write B samples.
func runSettings(ctx context.Context, vspBin, build string, changes, orders int, dir string, progress io.Writer) (res []settingsResult, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("vspbench: %w", err)
	}
	fe, err := startSettingsFarEnd()
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, fe.close()) }()
	link := filepath.Join(dir, "tty")
	logf := filepath.Join(dir, "vsp.log")
	port, err := startProc("vsp", logf, vspBin, "run", "--device", fe.addr(), "--link", link,
		"--tls", "off", "--rfc2217", "--log-format", "text")
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, port.stop()) }()
	if err := waitFile(link, 10*time.Second); err != nil {
		return nil, fmt.Errorf("%w (see %s)", err, logf)
	}
	app, err := openApp(link)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	// One locked OS thread drives the tty, as an application would.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, m := range settingsModes {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		r, err := settingsMode1(app, fe, m, changes, orders)
		r.build = build
		if err != nil {
			return res, fmt.Errorf("%s, %s mode: %w (see %s)", build, m.name, err, logf)
		}
		res = append(res, r)
		fmt.Fprintf(progress, "  %s, %s: %d changes: tcsetattr → SET-BAUDRATE p50 %.1f µs, p99 %.1f µs; %d extra commands; "+
			"%d ordered writes: A after the command %d, B before it %d\n", build, m.name, len(r.lat),
			us(quantile(r.lat, 0.5)), us(quantile(r.lat, 0.99)), r.extra, r.orders, r.aAfter, r.bBefore)
	}
	return res, nil
}

// followed waits until vsp has followed the application's switch of input
// mode on the tty fd: EXTPROC set while the input is raw, cleared
// otherwise (pty.Port's own tcsetattr, made just after the application's).
// It returns the termios then. A tcsetattr the application makes
// between vsp's check and its write would be overwritten (pty/LIMITS.md),
// so the changes the scenario times come after it, built from the termios
// as vsp left it, as an application's read-modify-write would be.
func followed(fd int, raw bool) (*unix.Termios, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
		if err != nil {
			return nil, fmt.Errorf("vspbench: TCGETS: %w", err)
		}
		if (t.Lflag&unix.EXTPROC != 0) == raw {
			return t, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("vspbench: vsp did not follow the input mode (EXTPROC %v, want %v) in 10s", !raw, raw)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// settingsMode1 measures one mode on an open port.
func settingsMode1(app *appTTY, fe *settingsFarEnd, m settingsMode, changes, orders int) (settingsResult, error) {
	res := settingsResult{mode: m.name}
	t, err := unix.IoctlGetTermios(app.fd, unix.TCGETS)
	if err != nil {
		return res, fmt.Errorf("vspbench: TCGETS: %w", err)
	}
	if m.cooked {
		t.Iflag |= unix.ICRNL | unix.IXON
		t.Lflag |= unix.ICANON | unix.ISIG | unix.IEXTEN
	} else {
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
	}
	t.Oflag &^= unix.OPOST
	// The mode, then (once vsp has followed it) a first change to a known
	// speed (the first one on a port may wait for the link): its command
	// marks the start.
	if err := unix.IoctlSetTermios(app.fd, unix.TCSETS, t); err != nil {
		return res, fmt.Errorf("vspbench: TCSETS: %w", err)
	}
	if t, err = followed(app.fd, !m.cooked); err != nil {
		return res, err
	}
	var tt [2]unix.Termios
	cur := -1
	for i, b := range settingsBauds {
		tt[i] = *t
		tt[i].Cflag = tt[i].Cflag&^unix.CBAUD | b.code
		if t.Cflag&unix.CBAUD == b.code {
			cur = i
		}
	}
	next := 1
	if cur == 1 {
		next = 0
	}
	_, first := fe.state()
	if err := unix.IoctlSetTermios(app.fd, unix.TCSETS, &tt[next]); err != nil {
		return res, fmt.Errorf("vspbench: TCSETS: %w", err)
	}
	warm, err := fe.waitBaud(first, settingsBauds[next].baud, 0, time.Now().Add(30*time.Second))
	if err != nil {
		return res, fmt.Errorf("first change: %w", err)
	}
	for i := range changes {
		next ^= 1
		_, from := fe.state()
		t0 := time.Now()
		if err := unix.IoctlSetTermios(app.fd, unix.TCSETS, &tt[next]); err != nil {
			return res, fmt.Errorf("vspbench: TCSETS: %w", err)
		}
		c, err := fe.waitBaud(from, settingsBauds[next].baud, 0, t0.Add(5*time.Second))
		if err != nil {
			return res, fmt.Errorf("change %d: %w", i, err)
		}
		res.lat = append(res.lat, c.at.Sub(t0))
	}
	for i := range orders {
		next ^= 1
		d0, from := fe.state()
		a := fmt.Appendf(nil, "a%0*d", settingsOrderBlock-1, i%1e7)
		b := fmt.Appendf(nil, "b%0*d", settingsOrderBlock-1, i%1e7)
		deadline := time.Now().Add(5 * time.Second)
		if err := app.writeAll(a, deadline); err != nil {
			return res, err
		}
		if err := unix.IoctlSetTermios(app.fd, unix.TCSETSW, &tt[next]); err != nil {
			return res, fmt.Errorf("vspbench: TCSETSW: %w", err)
		}
		if err := app.writeAll(b, deadline); err != nil {
			return res, err
		}
		c, err := fe.waitBaud(from, settingsBauds[next].baud, d0+2*settingsOrderBlock, deadline)
		if err != nil {
			return res, fmt.Errorf("ordered write %d: %w", i, err)
		}
		if got, want := fe.dataAt(d0, d0+2*settingsOrderBlock), append(a, b...); !bytes.Equal(got, want) {
			return res, fmt.Errorf("ordered write %d: the far end got %q, want %q", i, got, want)
		}
		res.orders++
		switch {
		case c.off < d0+settingsOrderBlock:
			res.aAfter++
		case c.off > d0+settingsOrderBlock:
			res.bBefore++
		}
	}
	// One command per change: any other SET-BAUDRATE after the first
	// change's is extra.
	_, n := fe.state()
	res.extra = n - warm.idx - 1 - changes - orders
	return res, nil
}

// settingsAll runs the settings scenario runs times on every build,
// interleaved (the order rotating), and returns every result.
func settingsAll(ctx context.Context, o options, builds []build, work string, stdout io.Writer) ([]settingsResult, error) {
	fmt.Fprintf(stdout, "settings: %d baud changes and %d ordered writes per mode and run, %d runs per build ...\n", o.settings, o.settingsOrder, o.settingsRuns)
	var all []settingsResult
	for r := range o.settingsRuns {
		for i := range builds {
			b := builds[(i+r)%len(builds)]
			dir := filepath.Join(work, fmt.Sprintf("settings%d-%d", r, (i+r)%len(builds)))
			res, err := runSettings(ctx, b.vsp, b.name, o.settings, o.settingsOrder, dir, stdout)
			if err != nil {
				return all, err
			}
			all = append(all, res...)
		}
	}
	return all, nil
}

// settingsFigures is the settings section of the generated figures: the
// runs of each build and mode pooled.
func (r *report) settingsFigures() string {
	type key struct{ build, mode string }
	type agg struct {
		lat                         []time.Duration
		runs, extra, orders, aA, bB int
	}
	sums := map[key]*agg{}
	var builds []string
	for _, s := range r.settings {
		k := key{s.build, s.mode}
		a := sums[k]
		if a == nil {
			a = &agg{}
			sums[k] = a
			if !slices.Contains(builds, s.build) {
				builds = append(builds, s.build)
			}
		}
		a.lat = append(a.lat, s.lat...)
		a.runs++
		a.extra += s.extra
		a.orders += s.orders
		a.aA += s.aAfter
		a.bB += s.bBefore
	}
	o := r.opts
	var b strings.Builder
	fmt.Fprintf(&b, "\n### Settings: application tcsetattr → RFC 2217 command on the wire\n\n")
	fmt.Fprintf(&b, "A vsp port (`vsp run --device ADDR --link LINK --tls off --rfc2217`, built binary) against an RFC 2217 server "+
		"in the bench process (`rfc2217.Server`, plain TCP) that records when each SET-BAUDRATE arrives and where it falls among the data bytes. "+
		"The application (one locked OS thread) alternates the speed between 19200 and 38400 with tcsetattr(TCSANOW), %d times per mode and run, "+
		"each change waiting for its command; then, %d times, writes %d bytes A, changes the speed with tcsetattr(TCSADRAIN), writes %d bytes B, "+
		"and the far end checks that A arrived before the command and B after it. Modes: ", o.settings, o.settingsOrder, settingsOrderBlock, settingsOrderBlock)
	for i, m := range settingsModes {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "**%s** (%s)", m.name, m.desc)
	}
	fmt.Fprintf(&b, ". %d runs per build, builds interleaved, each run on a fresh port; samples of the runs pooled.\n\n", o.settingsRuns)
	b.WriteString("| build | mode | changes | p50 µs | p99 µs | max µs | over 1 ms | extra commands | ordered writes | A after the command | B before the command |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, bn := range builds {
		for _, m := range settingsModes {
			a := sums[key{bn, m.name}]
			if a == nil {
				continue
			}
			slow := 0
			for _, d := range a.lat {
				if d > time.Millisecond {
					slow++
				}
			}
			fmt.Fprintf(&b, "| %s | %s | %d | %.1f | %.1f | %.1f | %d | %d | %d | %d | %d |\n", bn, m.name, len(a.lat),
				us(quantile(a.lat, 0.5)), us(quantile(a.lat, 0.99)), us(quantile(a.lat, 1)), slow, a.extra, a.orders, a.aA, a.bB)
		}
	}
	if len(builds) > 1 {
		this := builds[len(builds)-1]
		b.WriteString("\n")
		for _, base := range builds[:len(builds)-1] {
			fmt.Fprintf(&b, "this build / %s:", base)
			for i, m := range settingsModes {
				x, y := sums[key{this, m.name}], sums[key{base, m.name}]
				if x == nil || y == nil || quantile(y.lat, 0.5) == 0 || quantile(y.lat, 0.99) == 0 {
					continue
				}
				sep := ","
				if i == len(settingsModes)-1 {
					sep = "."
				}
				fmt.Fprintf(&b, " %s p50 %.2f×, p99 %.2f×%s", m.name, float64(quantile(x.lat, 0.5))/float64(quantile(y.lat, 0.5)),
					float64(quantile(x.lat, 0.99))/float64(quantile(y.lat, 0.99)), sep)
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}
