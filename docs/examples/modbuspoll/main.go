package main

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vsp-dev/vsp/docs/examples/internal/serialport"
)

const usage = `usage:
  modbuspoll serve [flags] PORT   play a Modbus-RTU slave (the equipment) on PORT
  modbuspoll poll  [flags] PORT   poll that slave through PORT (e.g. a vsp port)

Run "modbuspoll serve -h" or "modbuspoll poll -h" for the flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "modbuspoll:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	fs := flag.NewFlagSet("modbuspoll "+args[0], flag.ExitOnError)
	baud := fs.Int("baud", 19200, "serial speed (ezsim's default is 19200)")
	slave := fs.Uint("slave", 1, "slave address, 1-247")
	switch args[0] {
	case "serve":
		regs := fs.Int("registers", 16, "number of holding registers")
		fs.Parse(args[1:])
		f, err := openPort(fs, *baud)
		if err != nil {
			return err
		}
		defer f.Close()
		return serve(ctx, f, byte(*slave), make([]uint16, *regs), out)
	case "poll":
		start := fs.Uint("start", 0, "first register to read")
		count := fs.Uint("count", 4, "number of registers to read, 1-125")
		interval := fs.Duration("interval", time.Second, "time between polls")
		n := fs.Int("n", 0, "number of polls (0 = until interrupted)")
		timeout := fs.Duration("timeout", time.Second, "response timeout")
		retries := fs.Int("retries", 2, "retries after a timeout or a bad response")
		write := fs.String("write", "", "first write `REG=VALUE` (function 6), then poll")
		fs.Parse(args[1:])
		if *count < 1 || *count > maxReadCount {
			return fmt.Errorf("-count %d: want 1 to %d", *count, maxReadCount)
		}
		f, err := openPort(fs, *baud)
		if err != nil {
			return err
		}
		defer f.Close()
		m := &master{f: f, slave: byte(*slave), timeout: *timeout, retries: *retries, out: out}
		if *write != "" {
			reg, val, err := parseWrite(*write)
			if err != nil {
				return err
			}
			if err := m.writeRegister(reg, val); err != nil {
				return err
			}
			fmt.Fprintf(out, "wrote register %d = %d\n", reg, val)
		}
		return m.pollLoop(ctx, uint16(*start), uint16(*count), *interval, *n)
	}
	fmt.Fprint(os.Stderr, usage)
	os.Exit(2)
	return nil
}

func openPort(fs *flag.FlagSet, baud int) (*os.File, error) {
	if fs.NArg() != 1 {
		return nil, fmt.Errorf("%s: want one argument, the serial port", fs.Name())
	}
	return serialport.Open(fs.Arg(0), baud)
}

func parseWrite(s string) (reg, val uint16, err error) {
	r, v, ok := strings.Cut(s, "=")
	rn, err1 := strconv.ParseUint(r, 10, 16)
	vn, err2 := strconv.ParseUint(v, 0, 16)
	if !ok || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("-write %q: want REG=VALUE, both 0-65535", s)
	}
	return uint16(rn), uint16(vn), nil
}

// master is the polling side.
type master struct {
	f       *os.File
	slave   byte
	timeout time.Duration
	retries int
	out     io.Writer
}

func (m *master) pollLoop(ctx context.Context, start, count uint16, interval time.Duration, n int) error {
	var ok, failed int
	defer func() { fmt.Fprintf(m.out, "polls %d: ok %d, failed %d\n", ok+failed, ok, failed) }()
	for i := 1; n == 0 || i <= n; i++ {
		t0 := time.Now()
		resp, err := m.transact(request(m.slave, fnReadHolding, start, count))
		if err == nil && (int(resp[2]) != 2*int(count)) {
			err = fmt.Errorf("modbus: %d data bytes for %d registers", resp[2], count)
		}
		if err != nil {
			failed++
			fmt.Fprintf(m.out, "poll %d: %v\n", i, err)
		} else {
			ok++
			vals := make([]uint16, count)
			for j := range vals {
				vals[j] = binary.BigEndian.Uint16(resp[3+2*j:])
			}
			fmt.Fprintf(m.out, "poll %d: registers %d-%d = %v (%.1f ms)\n", i, start, start+count-1, vals,
				float64(time.Since(t0).Microseconds())/1000)
		}
		if n != 0 && i == n {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d polls failed", failed, ok+failed)
	}
	return nil
}

func (m *master) writeRegister(reg, val uint16) error {
	req := request(m.slave, fnWriteSingle, reg, val)
	resp, err := m.transact(req)
	if err != nil {
		return fmt.Errorf("write register %d: %w", reg, err)
	}
	if string(resp) != string(req) {
		return fmt.Errorf("write register %d: response % x does not echo the request", reg, resp)
	}
	return nil
}

// transact sends req and returns the slave's checked response, retrying
// after timeouts and bad frames.
func (m *master) transact(req []byte) ([]byte, error) {
	var err error
	for try := 0; try <= m.retries; try++ {
		var resp []byte
		resp, err = m.once(req)
		if err == nil {
			return resp, nil
		}
		var ex *exceptionError
		if errors.As(err, &ex) {
			return nil, err // the slave answered: retrying will not help
		}
	}
	return nil, err
}

type exceptionError struct{ fn, code byte }

func (e *exceptionError) Error() string {
	return fmt.Sprintf("modbus: slave exception %d to function %d", e.code, e.fn)
}

func (m *master) once(req []byte) ([]byte, error) {
	m.drain()
	if _, err := m.f.Write(req); err != nil {
		return nil, err
	}
	if err := m.f.SetReadDeadline(time.Now().Add(m.timeout)); err != nil {
		return nil, err
	}
	defer m.f.SetReadDeadline(time.Time{})
	resp := make([]byte, 0, 256)
	buf := make([]byte, 256)
	for {
		need := responseLen(resp)
		if need > 0 && len(resp) >= need {
			resp = resp[:need]
			break
		}
		k, err := m.f.Read(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, fmt.Errorf("modbus: timeout after %v (%d bytes received)", m.timeout, len(resp))
		}
		if err != nil {
			return nil, err
		}
		resp = append(resp, buf[:k]...)
	}
	if err := checkCRC(resp); err != nil {
		return nil, err
	}
	if resp[0] != req[0] {
		return nil, fmt.Errorf("modbus: response from slave %d, want %d", resp[0], req[0])
	}
	if resp[1]&exceptionFlag != 0 {
		return nil, &exceptionError{fn: resp[1] &^ exceptionFlag, code: resp[2]}
	}
	if resp[1] != req[1] {
		return nil, fmt.Errorf("modbus: response to function %d, want %d", resp[1], req[1])
	}
	return resp, nil
}

// drain discards stale input (a late answer to a timed-out request).
func (m *master) drain() {
	buf := make([]byte, 256)
	for {
		_ = m.f.SetReadDeadline(time.Now().Add(5 * time.Millisecond))
		if n, err := m.f.Read(buf); n == 0 || err != nil {
			break
		}
	}
	_ = m.f.SetReadDeadline(time.Time{})
}

// serve answers requests for slave until ctx ends. Register 0 counts the
// requests served, so successive polls see it change; the others start at
// 100+i and keep what function 6 writes.
func serve(ctx context.Context, f *os.File, slave byte, regs []uint16, out io.Writer) error {
	for i := range regs {
		regs[i] = uint16(100 + i)
	}
	regs[0] = 0
	fmt.Fprintf(out, "modbus slave %d on %s: %d holding registers\n", slave, f.Name(), len(regs))
	go func() { <-ctx.Done(); _ = f.SetReadDeadline(time.Now()) }()
	const gap = 100 * time.Millisecond // silence that ends an incomplete frame
	var pending []byte
	buf := make([]byte, 256)
	for ctx.Err() == nil {
		if len(pending) > 0 {
			_ = f.SetReadDeadline(time.Now().Add(gap))
		} else {
			_ = f.SetReadDeadline(time.Time{})
		}
		n, err := f.Read(buf)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			fmt.Fprintf(out, "discarded %d bytes: incomplete or unknown frame\n", len(pending))
			pending = nil
			continue
		}
		if err != nil {
			return err
		}
		pending = append(pending, buf[:n]...)
		for len(pending) >= requestLen {
			req := pending[:requestLen]
			if err := checkCRC(req); err != nil {
				// Out of step: drop a byte and look for a frame again.
				pending = pending[1:]
				continue
			}
			pending = pending[requestLen:]
			if resp := answer(req, slave, regs); resp != nil {
				if _, err := f.Write(resp); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// answer returns the response to a checked 8-byte request, or nil when the
// request is for another slave or a broadcast.
func answer(req []byte, slave byte, regs []uint16) []byte {
	if req[0] != slave && req[0] != 0 {
		return nil
	}
	resp := respond(req, slave, regs)
	if req[0] == 0 {
		return nil // a broadcast is obeyed but never answered
	}
	return resp
}

func respond(req []byte, slave byte, regs []uint16) []byte {
	fn := req[1]
	a := binary.BigEndian.Uint16(req[2:])
	b := binary.BigEndian.Uint16(req[4:])
	exception := func(code byte) []byte { return frame(slave, fn|exceptionFlag, code) }
	regs[0]++
	switch fn {
	case fnReadHolding:
		if b < 1 || b > maxReadCount || int(a)+int(b) > len(regs) {
			return exception(exIllegalAddr)
		}
		pdu := []byte{slave, fn, byte(2 * b)}
		for _, v := range regs[a : a+b] {
			pdu = binary.BigEndian.AppendUint16(pdu, v)
		}
		return frame(pdu...)
	case fnWriteSingle:
		if int(a) >= len(regs) || a == 0 {
			return exception(exIllegalAddr)
		}
		regs[a] = b
		return append([]byte(nil), req...)
	}
	return exception(exIllegalFunc)
}
