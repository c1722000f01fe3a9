//go:build linux

package tlsconn_test

import (
	"crypto/tls"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/tlsconn"
)

// getsockopts reads the TCP options of conn through SyscallConn.
func getsockopts(t *testing.T, conn net.Conn) map[string]int {
	t.Helper()
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	rc, err := conn.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	var gerr error
	err = rc.Control(func(fd uintptr) {
		for name, opt := range map[string][2]int{
			"SO_KEEPALIVE":     {unix.SOL_SOCKET, unix.SO_KEEPALIVE},
			"TCP_NODELAY":      {unix.IPPROTO_TCP, unix.TCP_NODELAY},
			"TCP_KEEPIDLE":     {unix.IPPROTO_TCP, unix.TCP_KEEPIDLE},
			"TCP_KEEPINTVL":    {unix.IPPROTO_TCP, unix.TCP_KEEPINTVL},
			"TCP_KEEPCNT":      {unix.IPPROTO_TCP, unix.TCP_KEEPCNT},
			"TCP_USER_TIMEOUT": {unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT},
		} {
			v, err := unix.GetsockoptInt(int(fd), opt[0], opt[1])
			if err != nil {
				gerr = err
			}
			got[name] = v
		}
	})
	if err != nil || gerr != nil {
		t.Fatalf("getsockopt: %v %v", err, gerr)
	}
	return got
}

func TestSocketOptions(t *testing.T) {
	plain := startServer(t, nil)
	cert := newCert(t, certOpts{rsaBits: 512, sha1: true})
	ez := startServer(t, ezTCPServerConfig(cert))

	tests := []struct {
		name string
		cfg  tlsconn.Config
		addr string
		want map[string]int
	}{
		{"defaults plain", tlsconn.Config{Profile: tlsconn.ProfileOff}, plain.addr,
			map[string]int{"SO_KEEPALIVE": 1, "TCP_NODELAY": 1, "TCP_KEEPIDLE": 3, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 9000}},
		{"defaults legacy TLS", tlsconn.Config{Profile: tlsconn.ProfileLegacy, Pin: cert.pin()}, ez.addr,
			map[string]int{"SO_KEEPALIVE": 1, "TCP_NODELAY": 1, "TCP_KEEPIDLE": 3, "TCP_KEEPINTVL": 2, "TCP_KEEPCNT": 3, "TCP_USER_TIMEOUT": 9000}},
		{"custom", tlsconn.Config{Profile: tlsconn.ProfileOff, KeepAlive: tlsconn.KeepAlive{
			Idle: 7 * time.Second, Interval: 5 * time.Second, Count: 9, UserTimeout: 1500 * time.Millisecond}}, plain.addr,
			map[string]int{"SO_KEEPALIVE": 1, "TCP_NODELAY": 1, "TCP_KEEPIDLE": 7, "TCP_KEEPINTVL": 5, "TCP_KEEPCNT": 9, "TCP_USER_TIMEOUT": 1500}},
		{"keep-alive and user timeout off", tlsconn.Config{Profile: tlsconn.ProfileOff, KeepAlive: tlsconn.KeepAlive{
			Idle: -1, UserTimeout: -1}}, plain.addr,
			map[string]int{"SO_KEEPALIVE": 0, "TCP_NODELAY": 1, "TCP_USER_TIMEOUT": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, _, err := tlsconn.Dial(ctxT(t), tt.addr, tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			got := getsockopts(t, conn)
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %d, want %d", k, got[k], v)
				}
			}
		})
	}
}

// TestTuneDialedConn: Tune also reaches a connection Dial returned (on
// Linux not a *net.TCPConn but its raw-I/O wrapper).
func TestTuneDialedConn(t *testing.T) {
	srv := startServer(t, nil)
	conn, _, err := tlsconn.Dial(ctxT(t), srv.addr, tlsconn.Config{Profile: tlsconn.ProfileOff}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := tlsconn.Tune(conn, tlsconn.KeepAlive{Idle: 11 * time.Second, Interval: 4 * time.Second, Count: 6, UserTimeout: 2500 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	got := getsockopts(t, conn)
	for k, v := range map[string]int{"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 11, "TCP_KEEPINTVL": 4, "TCP_KEEPCNT": 6, "TCP_USER_TIMEOUT": 2500} {
		if got[k] != v {
			t.Errorf("%s = %d, want %d", k, got[k], v)
		}
	}
}
