// Command ttyprobe is the legacy application of packaging/test-systemd.sh:
// it holds a serial port open, writes a numbered byte stream to it all the
// time and checks that the device (ezsim's echo plug) sends every byte back,
// in order. It fails at once on anything an application would notice of a
// vsp restart: EIO, POLLHUP or POLLERR, a read of 0 bytes, or a wrong byte.
//
//	ttyprobe -tty /dev/ttyVSP0 -stop /var/tmp/probe.stop
//
// Output lines (stdout): "open PATH", one "gap start=NS end=NS ms=N" each
// time echoes resume after a silence of -gap or more (unix nanoseconds, to
// time a restart against the moment it was caused), and at the end, after
// the -stop file appears and the last bytes came back, "done written=N
// read=N maxgap_ms=N"; every second "progress written=N read=N"; after a
// -pause, "resumed echo=NS" at the first byte read back. A failure prints "FAIL: ..." and exits 1; with
// -expect-hangup a hang-up is what it waits for ("hangup: ...", exit 0).
// While the -pause file exists it writes nothing: a test lets the stream
// drain before it crashes vsp, since bytes in flight inside a process that
// is killed are lost (the pty and the fd store keep everything else).
package main
