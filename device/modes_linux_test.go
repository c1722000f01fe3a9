//go:build linux

package device

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vsp-dev/vsp/internal/testenv"
)

// vanish closes c without sending FIN or RST, as if the client's host had
// lost its state: in TCP_REPAIR mode the kernel drops the socket silently.
func vanish(c *net.TCPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_REPAIR, 1)
	}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	return c.Close()
}

// keepAliveOpts reads SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL and
// TCP_KEEPCNT of a TCP connection.
func keepAliveOpts(c syscall.Conn) (on, idle, intvl, cnt int, err error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	cerr := rc.Control(func(fd uintptr) {
		f := int(fd)
		if on, err = unix.GetsockoptInt(f, unix.SOL_SOCKET, unix.SO_KEEPALIVE); err != nil {
			return
		}
		if idle, err = unix.GetsockoptInt(f, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE); err != nil {
			return
		}
		if intvl, err = unix.GetsockoptInt(f, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL); err != nil {
			return
		}
		cnt, err = unix.GetsockoptInt(f, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
	})
	if err == nil {
		err = cerr
	}
	return
}

// TestKeepAliveUnansweredProbes frees a half-open session whose peer has
// become unreachable: no FIN, no RST, the probes go unanswered. It re-runs
// itself in a private network namespace (unshare -n, needs root), where it
// can take the client's address away without touching the host's network.
func TestKeepAliveUnansweredProbes(t *testing.T) {
	if os.Getenv("VSP_DEVICE_NETNS") != "1" {
		unshare, err := exec.LookPath("unshare")
		if err != nil {
			testenv.Tool(t, "unshare")
		}
		testenv.Tool(t, "ip")
		if out, err := exec.Command(unshare, "-n", "true").CombinedOutput(); err != nil {
			testenv.Missing(t, fmt.Sprintf("cannot create a network namespace: %v %s", err, out))
		}
		cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run=^TestKeepAliveUnansweredProbes$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "VSP_DEVICE_NETNS=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestKeepAliveUnansweredProbes") {
			t.Fatalf("in the network namespace: %v\n%s", err, out)
		}
		return
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	ip("link", "set", "lo", "up")
	ip("addr", "add", "10.9.9.1/32", "dev", "lo")
	ip("addr", "add", "10.9.9.2/32", "dev", "lo")
	d := startDevice(t, Config{Listen: "10.9.9.1:0", KeepAlive: time.Second, KeepAliveProbes: 2})
	dialer := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(10, 9, 9, 2)}}
	c, err := dialer.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "up")
	ip("addr", "del", "10.9.9.2/32", "dev", "lo") // the client's host is gone
	gone := time.Now()
	if st := d.Status().Ports[0]; st.TCPState != "ESTABLISHED" {
		t.Fatalf("session dropped before any probe: %s", st.TCPState)
	}
	waitFor(t, func() bool { return d.Status().Ports[0].TCPState == "LISTEN" })
	t.Logf("half-open session freed %v after the peer vanished (keep-alive 1 s, 2 probes)", time.Since(gone).Round(100*time.Millisecond))
}

func TestKeepAliveFreesHalfOpenSession(t *testing.T) {
	d := startDevice(t, Config{KeepAlive: 3 * time.Second, KeepAliveProbes: 2})
	c, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, c, "up")
	// Make the client vanish without FIN or RST (TCP_REPAIR close, needs
	// CAP_NET_ADMIN): the device only learns through its keep-alive probe.
	if err := vanish(c.(*net.TCPConn)); err != nil {
		c.Close()
		testenv.Missing(t, fmt.Sprintf("cannot make a half-open connection (TCP_REPAIR needs CAP_NET_ADMIN): %v", err))
	}
	// A second client is refused while the half-open session is held.
	c2, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("second client not refused: %v", err)
	}
	c2.Close()
	if st := d.Status(); st.Ports[0].TCPState != "ESTABLISHED" {
		t.Fatalf("session dropped too early: %s", st.Ports[0].TCPState)
	}
	waitFor(t, func() bool { return d.Status().Ports[0].TCPState == "LISTEN" })
	c3, err := net.Dial("tcp", d.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	roundTrip(t, c3, "new session")
}
