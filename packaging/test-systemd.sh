#!/bin/sh
# The vsp package under a real systemd, as root (CI runs it):
#
#   packaging/test-systemd.sh [PATH.deb]
#
# Builds the .deb (packaging/build-deb.sh) unless given one, installs it
# offline (chroot dpkg -i) into a Debian root made by debootstrap (trixie,
# systemd 257; the pristine root is cached as a tarball in
# $VSP_SYSTEMD_CACHE, default /var/cache/vsp-test-systemd), adds a port file
# for an ezsim running on this host's loopback (the container shares the
# host's network), boots the root with systemd-nspawn and runs commands in
# it with nsenter. It asserts:
#   a. autostart: after boot /dev/ttyVSP0 exists and carries bytes, with no
#      manual start (the offline install enabled the unit), with the owner,
#      group and mode its port file sets (the sandbox's capabilities), the
#      control socket answers `vsp list`, and `systemd-analyze security`
#      rates the unit OK or better;
#   b. no hang-up: ttyprobe (packaging/ttyprobe) holds /dev/ttyVSP0 open,
#      writing and reading all the time, while vsp is killed with SIGKILL,
#      restarted with `systemctl restart`, upgraded by installing the same
#      .deb again, and stopped with SIGSTOP until the watchdog (3 s in a
#      test drop-in) restarts it (the application pauses through the two
#      crashes as explained at event()): no EIO, no POLLHUP, no read of 0 bytes,
#      every byte comes back; it prints the time from each event to the
#      first byte echoed again; `systemctl reload` keeps the process;
#   c. stop means stop: `systemctl stop vsp` hangs the application up, and
#      deleting a port file takes its fds out of the store (the store does
#      not grow over add/delete cycles);
#   d. one unit: `vsp service install` writes the packaged unit, byte for
#      byte; `vsp service status` says running; uninstall removes it.
# It skips, saying why, where it cannot boot a container (not root, no
# systemd-nspawn, no debootstrap and no cached root); with VSP_TEST_STRICT=1
# it fails instead. VSP_SYSTEMD_SUITE / VSP_SYSTEMD_MIRROR change the
# release and mirror (.ci/run runs trixie and bookworm).
set -eu

cd "$(dirname "$0")/.."
say() { echo "test-systemd: $*"; }
fail() {
	echo "test-systemd: FAIL: $*" >&2
	if [ -n "${R:-}" ] && [ -n "${PID1:-}" ]; then
		echo "--- journalctl -u vsp (last 40 lines)" >&2
		inct journalctl -u vsp --no-pager -n 40 >&2 2>&1 || true
	fi
	if [ -s "${WORK:-}/probe.log" ]; then
		echo "--- ttyprobe (last 10 lines)" >&2
		tail -n 10 "$WORK/probe.log" >&2
	fi
	exit 1
}
skip() {
	if [ "${VSP_TEST_STRICT:-0}" = 1 ]; then fail "VSP_TEST_STRICT=1 and $*"; fi
	say "SKIP: $*"
	exit 0
}

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, chroot, systemd-nspawn)"
command -v systemd-nspawn >/dev/null || skip "systemd-nspawn is not installed (apt-get install systemd-container)"
command -v nsenter >/dev/null || skip "nsenter is not installed (apt-get install util-linux)"

SUITE=${VSP_SYSTEMD_SUITE:-trixie}
MIRROR=${VSP_SYSTEMD_MIRROR:-http://deb.debian.org/debian}
CACHE=${VSP_SYSTEMD_CACHE:-/var/cache/vsp-test-systemd}
WORK=$(mktemp -d /var/tmp/vsp-test-systemd.XXXXXX)
R=
PID1=
NSPAWN=
SIMS=
PROBE=
cleanup() {
	[ -n "$PROBE" ] && kill "$PROBE" 2>/dev/null || true
	if [ -n "$NSPAWN" ]; then
		kill -TERM "$NSPAWN" 2>/dev/null || true # nspawn powers the container off
		i=0
		while kill -0 "$NSPAWN" 2>/dev/null && [ $i -lt 100 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$NSPAWN" 2>/dev/null || true
	fi
	for p in $SIMS; do kill "$p" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# inct runs a command in the booted container (its mount, UTS, IPC and PID
# namespaces; the network is the host's anyway).
inct() { nsenter -t "$PID1" -m -u -i -p -- "$@"; }

# waitfor DESCRIPTION SECONDS COMMAND...: until COMMAND succeeds.
waitfor() {
	what=$1 secs=$2
	shift 2
	end=$(($(date +%s) + secs))
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt $end ] || fail "$what: not within $secs s"
		sleep 0.1
	done
}

now_ns() { date +%s%N; }
mainpid() { inct systemctl show -P MainPID vsp; }
fdstore() { inct systemctl show -P NFileDescriptorStore vsp; }
probe_alive() { [ -n "$PROBE" ] && kill -0 "$PROBE" 2>/dev/null; }
probe_read() { sed -n 's/^progress written=[0-9]* read=\([0-9]*\)$/\1/p' "$WORK/probe.log" | tail -n 1; }
probe_failed() {
	if grep -q '^FAIL' "$WORK/probe.log"; then
		grep '^FAIL' "$WORK/probe.log" >&2
		fail "the application noticed: $1"
	fi
	probe_alive || {
		cat "$WORK/probe.log" >&2
		fail "the application exited during: $1"
	}
}
# read_beyond N: the probe has read more than N bytes.
read_beyond() { r=$(probe_read) && [ -n "$r" ] && [ "$r" -gt "$1" ]; }
# echoed_after LINES: bytes were echoed after the log had LINES lines (between
# two progress lines printed after that).
echoed_after() {
	awk -v l="$1" 'NR > l && /^progress/ { split($3, r, "="); if (seen && r[2] > first) { ok = 1; exit } if (!seen) { seen = 1; first = r[2] } } END { exit !ok }' "$WORK/probe.log"
}

# --- build
if [ $# -ge 1 ]; then DEB=$1; else DEB=$(DIST="$WORK/dist" packaging/build-deb.sh | tail -n 1); fi
[ -f "$DEB" ] || fail "no package at $DEB"
CGO_ENABLED=0 go build -o "$WORK/ezsim" ./cmd/ezsim
CGO_ENABLED=0 go -C packaging build -o "$WORK/ttyprobe" ./ttyprobe
say "package $DEB"

# --- the root: the cached pristine tarball, or debootstrap one.
base=$CACHE/$SUITE.tar
if [ ! -s "$base" ]; then
	command -v debootstrap >/dev/null || skip "no cached root at $base and debootstrap is not installed (apt-get install debootstrap)"
	say "debootstrap $SUITE (minbase + systemd) from $MIRROR; cached in $base"
	mkdir -p "$CACHE"
	if ! debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus "$SUITE" "$WORK/base" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
		tail -n 5 "$WORK/debootstrap.log"
		skip "debootstrap $SUITE failed (no mirror?)"
	fi
	tar -C "$WORK/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
	rm -rf "$WORK/base"
fi
mkdir "$WORK/root"
tar -C "$WORK/root" -xf "$base"
R=$WORK/root

# --- offline install, a port file for an ezsim on the host, a short watchdog
cp "$DEB" "$R/var/tmp/vsp.deb"
cp "$WORK/ttyprobe" "$R/var/tmp/ttyprobe"
chroot "$R" dpkg -i /var/tmp/vsp.deb >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "chroot dpkg -i"; }

# startsim NAME: an ezsim with an echo plug on a free loopback port; sets SIM.
startsim() {
	"$WORK/ezsim" --listen 127.0.0.1:0 --console off --serial echo >"$WORK/$1.log" 2>&1 &
	SIMS="$SIMS $!"
	waitfor "ezsim $1 announcing its address" 10 grep -q '^listen: ' "$WORK/$1.log"
	SIM=$(sed -n 's/^listen: //p' "$WORK/$1.log")
}
startsim sim0
# The tty's owner, group and mode need the unit's CAP_CHOWN and CAP_FOWNER.
printf 'link = "/dev/ttyVSP0"\ndevice = "%s"\ntls = "off"\n[tty]\nowner = "nobody"\ngroup = "dialout"\nmode = "0620"\n' "$SIM" >"$R/etc/vsp/ports.d/p0.toml"
mkdir -p "$R/etc/systemd/system/vsp.service.d"
printf '[Service]\nWatchdogSec=3s\nTimeoutAbortSec=3s\n' >"$R/etc/systemd/system/vsp.service.d/test-watchdog.conf"
say "installed offline into a $SUITE root; port p0 -> ezsim $SIM"

# --- boot
systemd-nspawn --register=no --keep-unit -q -D "$R" -b >"$WORK/console.log" 2>&1 </dev/null &
NSPAWN=$!
t0=$(date +%s)
until PID1=$(pgrep -P "$NSPAWN" -x systemd) && [ -n "$PID1" ]; do
	kill -0 "$NSPAWN" 2>/dev/null || {
		tail -n 20 "$WORK/console.log"
		skip "systemd-nspawn cannot boot a container here"
	}
	[ $(($(date +%s) - t0)) -lt 30 ] || skip "no systemd in the container after 30 s"
	sleep 0.1
done
booted() { s=$(inct systemctl is-system-running 2>/dev/null) || true; [ "$s" = running ] || [ "$s" = degraded ]; }
waitfor "the container booting" 90 booted
say "booted $SUITE ($(inct systemctl --version | head -n 1)), container PID 1 = $PID1"

# --- a. autostart
waitfor "vsp.service active after boot" 60 sh -c "[ \"\$(nsenter -t $PID1 -m -u -i -p -- systemctl is-active vsp)\" = active ]"
waitfor "/dev/ttyVSP0 in the container" 30 inct test -c /dev/ttyVSP0
inct /var/tmp/ttyprobe -tty /dev/ttyVSP0 -stop /var/tmp/probe.stop -pause /var/tmp/probe.pause -gap 50ms >"$WORK/probe.log" 2>&1 &
PROBE=$!
waitfor "the first bytes echoed through /dev/ttyVSP0" 20 read_beyond 0
probe_failed "start"
tty=$(inct stat -L -c '%U %G %a' /dev/ttyVSP0)
[ "$tty" = "nobody dialout 620" ] || fail "/dev/ttyVSP0 is '$tty' (owner, group, mode), want 'nobody dialout 620' as the port file says"
sock=$(inct stat -c '%G %a' /run/vsp/vsp.sock)
[ "$sock" = "vsp 660" ] || fail "the control socket is '$sock' (group, mode), want 'vsp 660'"
inct vsp list >"$WORK/list.out" 2>&1 || { cat "$WORK/list.out"; fail "vsp list in the container"; }
grep -q p0 "$WORK/list.out" || { cat "$WORK/list.out"; fail "vsp list does not show p0"; }
inct systemd-analyze security --no-pager vsp.service >"$WORK/security.txt" 2>&1 || true
score=$(sed -n 's/^→ Overall exposure level for vsp.service: //p' "$WORK/security.txt")
case "$score" in
*" OK"* | *SAFE* | *PERFECT*) say "a. systemd-analyze security vsp.service: $score" ;;
*) cat "$WORK/security.txt"; fail "systemd-analyze security rates the unit '$score', want OK or better" ;;
esac
say "a. autostart: vsp active after boot, /dev/ttyVSP0 (nobody dialout 620) carries bytes ($(probe_read) echoed), vsp list answers"

# --- b. no hang-up
N0=$(fdstore)
[ "$N0" -ge 2 ] || fail "the fd store holds $N0 fds with one port; want the pty master and the daemon's slave fd at least"
: >"$WORK/figures"
# quiesced_after LINES: a progress line after the first LINES lines shows
# every byte written read back.
quiesced_after() {
	awk -v l="$1" 'NR > l && /^progress/ { split($2, w, "="); split($3, r, "="); if (w[2] == r[2]) { ok = 1; exit } } END { exit !ok }' "$WORK/probe.log"
}
# event NAME graceful|crash|hung COMMAND...: run the event, wait for a new
# main process and bytes echoed after it, and record the time to the first
# echo. Before a crash the application pauses until its bytes came back, and
# writes again right after the kill: bytes in flight inside a killed
# process are lost (the outage buffer; TLS state), everything the
# application writes while vsp is down waits in the pty and must come back.
# A hung vsp is killed by the watchdog with SIGABRT (and SIGCONT): it runs
# on while Go prints every goroutine's stack, and whatever it reads from the
# pty then is lost with it, so the application pauses until the new process
# is there. A graceful restart hands everything over: no pause at all.
event() {
	name=$1 kind=$2
	shift 2
	old=$(mainpid)
	before=$(probe_read)
	if [ "$kind" != graceful ]; then
		lines=$(wc -l <"$WORK/probe.log")
		touch "$R/var/tmp/probe.pause"
		waitfor "$name: the application's bytes back before the crash" 20 quiesced_after "$lines"
	fi
	t=$(now_ns)
	"$@" >"$WORK/event.log" 2>&1 || { cat "$WORK/event.log"; fail "$name: $*"; }
	[ "$kind" = hung ] || rm -f "$R/var/tmp/probe.pause"
	waitfor "$name: a new vsp process" 60 sh -c "p=\$(nsenter -t $PID1 -m -u -i -p -- systemctl show -P MainPID vsp); [ \"\$p\" != 0 ] && [ \"\$p\" != $old ]"
	rm -f "$R/var/tmp/probe.pause"
	waitfor "$name: vsp active again" 60 sh -c "[ \"\$(nsenter -t $PID1 -m -u -i -p -- systemctl is-active vsp)\" = active ]"
	waitfor "$name: bytes echoed again" 30 echoed_after "$(wc -l <"$WORK/probe.log")"
	probe_failed "$name"
	# The first echo after the event ends the first gap that ends after it.
	# Its length is how long the application heard nothing back.
	ms=$(awk -v t="$t" '$1 == "gap" { split($3, e, "="); if (e[2] > t) { printf "%d", (e[2] - t) / 1e6; exit } }' "$WORK/probe.log")
	silent=$(awk -v t="$t" '$1 == "gap" { split($3, e, "="); split($4, m, "="); if (e[2] > t) { print m[2]; exit } }' "$WORK/probe.log")
	[ -n "$ms" ] || ms="<50" silent="<50"
	if [ "$kind" = hung ]; then
		# No silence while paused: count to the first echo after the pause.
		ms=$(awk -v t="$t" '$1 == "resumed" { split($2, e, "="); if (e[2] > t) { printf "%d", (e[2] - t) / 1e6; exit } }' "$WORK/probe.log")
		silent=paused
	fi
	n=$(fdstore)
	[ "$n" = "$N0" ] || fail "$name: the fd store holds $n fds, had $N0"
	printf '%-28s %8s %8s\n' "$name" "$ms" "$silent" >>"$WORK/figures"
	if [ "$silent" = paused ]; then quiet="the application paused"; else quiet="silent for $silent ms"; fi
	say "b. $name: pid $old -> $(mainpid), no hang-up, first echo $ms ms after the event, $quiet (read $before -> $(probe_read) bytes)"
}
event "SIGKILL" crash inct systemctl kill --kill-whom=main --signal=SIGKILL vsp
event "systemctl restart" graceful inct systemctl restart vsp
event "dpkg -i (same .deb)" graceful inct dpkg -i /var/tmp/vsp.deb
event "SIGSTOP until the watchdog" hung inct systemctl kill --kill-whom=main --signal=SIGSTOP vsp
# systemctl reload: SIGHUP re-reads the settings; the same process goes on.
pid=$(mainpid)
inct systemctl reload vsp
waitfor "vsp logging the settings reload" 20 sh -c "nsenter -t $PID1 -m -u -i -p -- journalctl -u vsp _PID=$pid --no-pager | grep -q 'settings reloaded'"
[ "$(mainpid)" = "$pid" ] || fail "systemctl reload replaced the vsp process ($pid -> $(mainpid))"
probe_failed "systemctl reload"
say "b. systemctl reload: same process $pid, no hang-up"
touch "$R/var/tmp/probe.stop"
waitfor "the application's last bytes" 90 grep -q '^done\|^FAIL' "$WORK/probe.log"
wait "$PROBE" || { cat "$WORK/probe.log" >&2; fail "the application failed"; }
PROBE=
say "b. no hang-up: $(grep '^done' "$WORK/probe.log")"

# --- c. stop means stop
inct /var/tmp/ttyprobe -tty /dev/ttyVSP0 -expect-hangup >"$WORK/probe.log" 2>&1 &
PROBE=$!
waitfor "bytes echoed before the stop" 20 read_beyond 0
inct systemctl stop vsp
waitfor "the application hung up by systemctl stop" 20 grep -q '^hangup' "$WORK/probe.log"
wait "$PROBE" || { cat "$WORK/probe.log" >&2; fail "the application did not see the hang-up"; }
PROBE=
[ "$(fdstore)" = 0 ] || fail "the fd store holds $(fdstore) fds after systemctl stop"
say "c. systemctl stop: the application was hung up ($(grep '^hangup' "$WORK/probe.log")), the store is empty"

inct systemctl start vsp
waitfor "/dev/ttyVSP0 after start" 30 inct test -c /dev/ttyVSP0
waitfor "the fd store refilled after start" 30 sh -c "[ \"\$(nsenter -t $PID1 -m -u -i -p -- systemctl show -P NFileDescriptorStore vsp)\" = $N0 ]"
startsim sim1
for round in 1 2; do
	printf 'link = "/dev/ttyVSP1"\ndevice = "%s"\ntls = "off"\n' "$SIM" >"$R/etc/vsp/ports.d/p1.toml"
	waitfor "port p1's fds in the store (round $round)" 30 sh -c "[ \"\$(nsenter -t $PID1 -m -u -i -p -- systemctl show -P NFileDescriptorStore vsp)\" = $((2 * N0)) ]"
	rm "$R/etc/vsp/ports.d/p1.toml"
	waitfor "port p1's fds out of the store (round $round)" 30 sh -c "[ \"\$(nsenter -t $PID1 -m -u -i -p -- systemctl show -P NFileDescriptorStore vsp)\" = $N0 ]"
done
say "c. a port file added and deleted twice: the store went $N0 -> $((2 * N0)) -> $N0 each time"

# --- d. one unit: `vsp service install` writes the packaged unit
inct vsp service install >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "vsp service install"; }
cmp -s "$R/etc/systemd/system/vsp.service" "$R/usr/lib/systemd/system/vsp.service" || {
	diff -u "$R/usr/lib/systemd/system/vsp.service" "$R/etc/systemd/system/vsp.service" || true
	fail "vsp service install wrote another unit than the package's"
}
[ "$(inct vsp service status)" = running ] || fail "vsp service status: $(inct vsp service status 2>&1)"
inct vsp service uninstall >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "vsp service uninstall"; }
[ ! -e "$R/etc/systemd/system/vsp.service" ] || fail "vsp service uninstall left /etc/systemd/system/vsp.service"
say "d. vsp service install wrote the packaged unit byte for byte; status running; uninstall removed it"

say "figures: ms from the event to the first byte echoed again, ms the application heard nothing"
sed 's/^/    /' "$WORK/figures"
say "PASS ($SUITE, $(inct systemctl --version | head -n 1))"
