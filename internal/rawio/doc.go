// Package rawio moves bytes through non-blocking descriptors that are in
// Go's poller (a PTY master, a TCP socket) with raw read(2) and write(2)
// system calls, waiting in the poller through syscall.RawConn while the
// descriptor is not ready. It exists for one measured reason: the
// runtime's system-call bookkeeping that os.File and net.Conn go through
// wakes the runtime's sysmon thread on the first call after every idle
// moment, which costs a thread wake-up per message in a request/response
// exchange (docs/performance.md, change 5). IO does the calls on any
// such descriptor; Conn wraps a TCP connection with it. Used by tlsconn
// (the link) and device (the simulator's sessions). ReadFD and WriteFD are
// the bare calls, for a descriptor its owner waits for otherwise (pty's
// master, which is out of Go's poller and waited for through epoll sets
// of its own).
// Linux only; elsewhere Conn returns its argument.
package rawio
