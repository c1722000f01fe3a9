package device

import (
	"context"
	"net"
	"sync"
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
		return nil, err
	}
	return &console{d: d, ln: ln}, nil
}

func (c *console) serve(ctx context.Context) {
	go func() { <-ctx.Done(); c.ln.Close() }()
	for {
		conn, err := c.ln.Accept()
		if err != nil {
			break
		}
		conn.Close()
	}
}
