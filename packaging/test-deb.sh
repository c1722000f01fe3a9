#!/bin/sh
# Package test for the vsp Debian package; CI runs it as root.
#
#   packaging/test-deb.sh [PATH.deb]
#
# Builds the .deb (packaging/build-deb.sh) unless given one, installs it
# with dpkg -i into a clean Debian chroot made by debootstrap (a pristine
# copy is cached as a tarball in $VSP_DEB_CACHE, default
# /var/cache/vsp-test-deb, so later runs unpack it in seconds), then checks:
#   - `vsp version` prints the stamped version, the commit and the Go version;
#   - the vsp group exists, man pages, completions, unit and /etc/vsp/ports.d
#     are installed; the unit is what `vsp service unit` prints, and it is
#     enabled although systemd does not run in the chroot;
#   - `systemd-analyze verify` accepts the unit without any warning (skipped,
#     with a message, where systemd-analyze is missing);
#   - the unit's ExecStart line starts the daemon, `vsp list` gets an answer
#     on its control socket, and SIGTERM stops it cleanly;
#   - dpkg -r leaves nothing but configuration (a port file, the trusted
#     device fingerprints and the unit's enablement kept on purpose), and
#     dpkg -P leaves nothing at all
#     (the vsp group aside, as Debian keeps system groups).
# Where debootstrap cannot make a chroot (no debootstrap, no mirror), or
# with VSP_DEB_HOST=1, it installs on this host instead and purges afterwards;
# it says which it did. On a host it keeps an existing /var/lib/vsp and
# /etc/vsp/ports.d, refuses if vsp is installed, and leaves the vsp group. Set VSP_DEB_SUITE / VSP_DEB_MIRROR to change the
# chroot's Debian release and mirror.
set -eu

cd "$(dirname "$0")/.."
say() { echo "test-deb: $*"; }
fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || { say "needs root (dpkg -i, chroot)"; exit 2; }

SUITE=${VSP_DEB_SUITE:-bookworm}
MIRROR=${VSP_DEB_MIRROR:-http://deb.debian.org/debian}
CACHE=${VSP_DEB_CACHE:-/var/cache/vsp-test-deb}
WORK=$(mktemp -d /tmp/vsp-test-deb.XXXXXX)
R=
cleanup() {
	if [ -z "$R" ]; then
		if [ "${HOST_INSTALLED:-0}" = 1 ]; then dpkg -P vsp >/dev/null 2>&1 || true; fi
		# What this script made on the host; nothing else is touched.
		for f in ${CREATED:-}; do rm -f "$f"; done
		rmdir /var/lib/vsp 2>/dev/null || true
		if [ -e "$WORK/var-lib-vsp" ] && [ ! -e /var/lib/vsp ]; then
			cp -a "$WORK/var-lib-vsp" /var/lib/vsp
		fi
		# dpkg removes the package's directories when empty, even if they
		# were there before; put back an empty configuration directory.
		if [ "${HAD_PORTS_D:-0}" = 1 ]; then
			mkdir -p /etc/vsp/ports.d
		fi
	fi
	rm -rf "$WORK"
}
trap cleanup EXIT

if [ $# -ge 1 ]; then
	DEB=$1
else
	DEB=$(DIST="$WORK/dist" packaging/build-deb.sh | tail -n 1)
fi
[ -f "$DEB" ] || fail "no package at $DEB"
VERSION=$(dpkg-deb -f "$DEB" Version)
say "package $DEB (version $VERSION)"

# The chroot: unpack the cached pristine base, or debootstrap one.
MODE=host
if [ "${VSP_DEB_HOST:-0}" != 1 ]; then
	base="$CACHE/$SUITE-minbase.tar"
	if [ ! -s "$base" ] && command -v debootstrap >/dev/null; then
		say "debootstrap $SUITE (minbase) from $MIRROR; cached in $base"
		mkdir -p "$CACHE"
		if debootstrap --variant=minbase "$SUITE" "$WORK/base" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
			tar -C "$WORK/base" -cf "$base.tmp" . && mv "$base.tmp" "$base"
		else
			say "debootstrap failed (last lines below); falling back to the host"
			tail -n 5 "$WORK/debootstrap.log"
		fi
		rm -rf "$WORK/base"
	fi
	if [ -s "$base" ]; then
		mkdir "$WORK/root"
		tar -C "$WORK/root" -xf "$base"
		R=$WORK/root
		MODE=chroot
	elif ! command -v debootstrap >/dev/null; then
		say "debootstrap not installed (apt-get install debootstrap); falling back to the host"
	fi
fi
if [ "$MODE" = host ]; then
	say "installing on this host; the package is purged afterwards"
	case "$(dpkg-query -W -f '${db:Status-Status}' vsp 2>/dev/null || true)" in
	"" | not-installed) ;;
	*) fail "vsp is (or was) installed on this host; refusing to test here" ;;
	esac
	[ -d /etc/vsp/ports.d ] && HAD_PORTS_D=1
	# Purging removes /var/lib/vsp; keep what a root `vsp run` stored there.
	if [ -e /var/lib/vsp ]; then
		cp -a /var/lib/vsp "$WORK/var-lib-vsp"
	fi
else
	say "installing into a clean $SUITE chroot ($R)"
fi

# inroot runs a command in the test system.
inroot() {
	if [ -n "$R" ]; then chroot "$R" "$@"; else "$@"; fi
}

# snapshot lists the test system's files, minus what dpkg, logs and
# account backups change by themselves.
snapshot() {
	if [ -n "$R" ]; then
		(cd "$R" && find . -xdev \( -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp \
			-o -path ./run -o -path ./var/lib/dpkg -o -path ./var/log -o -path ./var/cache \) -prune \
			-o -print) | sed 's#^\.##' | grep -v -e '^/etc/\(group\|gshadow\|passwd\|shadow\|subgid\|subuid\)-\?$' -e '^$' | sort
	else
		for d in /usr/bin /usr/lib/systemd/system /usr/share/man/man1 /usr/share/bash-completion/completions \
			/usr/share/zsh/vendor-completions /usr/share/fish/vendor_completions.d /usr/share/doc/vsp \
			/etc/vsp /var/lib/vsp /run/vsp /etc/systemd/system; do
			[ -e "$d" ] && find "$d" -xdev
		done | sort
	fi
}

# leftovers prints the files in $1 (a later snapshot) that are not in before.
leftovers() { comm -13 "$WORK/before" "$1"; }

snapshot >"$WORK/before"
cp "$DEB" "$WORK/vsp.deb"
if [ -n "$R" ]; then
	cp "$DEB" "$R/tmp/vsp.deb"
	inroot dpkg -i /tmp/vsp.deb >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
else
	HOST_INSTALLED=1
	dpkg -i "$WORK/vsp.deb" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i"; }
fi
say "dpkg -i: ok"

out=$(inroot /usr/bin/vsp version) || fail "vsp version exited $?"
echo "$out" | sed 's/^/    /'
echo "$out" | grep -qx "vsp $VERSION" || fail "vsp version does not show the package version $VERSION"
echo "$out" | grep -q '^commit [0-9a-f]\{7,\}\|^commit unknown' || fail "vsp version shows no commit"
echo "$out" | grep -q '^go1\.[0-9]' || fail "vsp version shows no Go version"
inroot /usr/bin/ezsim --help >/dev/null || fail "ezsim --help"
inroot /usr/bin/ezsim --version | grep -q '^ezsim [0-9]' || fail "ezsim --version shows no version"
inroot getent group vsp >/dev/null || fail "no vsp group after install"
for f in /usr/share/man/man1/vsp.1.gz /usr/share/man/man1/ezsim.1.gz \
	/usr/share/bash-completion/completions/vsp /usr/share/zsh/vendor-completions/_vsp \
	/usr/share/fish/vendor_completions.d/vsp.fish /usr/lib/systemd/system/vsp.service \
	/usr/share/doc/vsp/copyright /usr/share/doc/vsp/changelog.gz /usr/share/doc/vsp/README.md \
	/usr/share/bash-completion/completions/ezsim /usr/share/zsh/vendor-completions/_ezsim \
	/usr/share/fish/vendor_completions.d/ezsim.fish; do
	inroot test -s "$f" || fail "$f missing or empty"
done
inroot test -d /etc/vsp/ports.d || fail "/etc/vsp/ports.d missing"
inroot bash -n /usr/share/bash-completion/completions/vsp || fail "bash completion has a syntax error"
gzip -dc "$R/usr/share/man/man1/vsp.1.gz" | grep -q '^\.TH vsp 1' || fail "vsp.1.gz is not a section-1 man page"
say "files, group and vsp version: ok"

# One unit: the packaged file is what the packaged binary's template prints.
inroot /usr/bin/vsp service unit --user=false --executable /usr/bin/vsp >"$WORK/unit.want" || fail "vsp service unit"
if ! cmp -s "$WORK/unit.want" "$R/usr/lib/systemd/system/vsp.service"; then
	diff -u "$WORK/unit.want" "$R/usr/lib/systemd/system/vsp.service" || true
	fail "the packaged vsp.service differs from \`vsp service unit\`"
fi
# Enabled although systemd does not run here (deb-systemd-helper semantics),
# so an image built offline starts vsp at boot.
WANTS=/etc/systemd/system/multi-user.target.wants/vsp.service
[ -L "$R$WANTS" ] && [ "$(inroot readlink -f $WANTS)" = "$(inroot readlink -f /usr/lib/systemd/system/vsp.service)" ] ||
	fail "$WANTS is not a link to the unit after an offline install"
say "unit = \`vsp service unit\`, enabled offline ($WANTS): ok"

if command -v systemd-analyze >/dev/null; then
	# Verify a copy whose ExecStart points into the chroot, so the check of
	# the executable finds it; the rest of the unit is verified as shipped.
	mkdir "$WORK/unit"
	sed "s#=/usr/bin/vsp #=$R/usr/bin/vsp #" "$R/usr/lib/systemd/system/vsp.service" >"$WORK/unit/vsp.service"
	if ! systemd-analyze verify --man=no "$WORK/unit/vsp.service" >"$WORK/verify.log" 2>&1; then
		cat "$WORK/verify.log"
		fail "systemd-analyze verify"
	fi
	if [ -s "$WORK/verify.log" ]; then
		cat "$WORK/verify.log"
		fail "systemd-analyze verify warned about the unit"
	fi
	say "systemd-analyze verify: ok"
else
	say "SKIP systemd-analyze verify: systemd-analyze is not installed"
fi

# The unit's command line against the installed binary: the daemon starts
# with the packaged paths and answers on its control socket. (mkdir does
# what RuntimeDirectory= and StateDirectory= do under systemd.)
execstart=$(sed -n 's/^ExecStart=//p' "$R/usr/lib/systemd/system/vsp.service")
inroot mkdir -p /run/vsp /var/lib/vsp
if [ -n "$R" ]; then
	chroot "$R" sh -c "exec $execstart" >"$WORK/daemon.log" 2>&1 &
else
	sh -c "exec $execstart" >"$WORK/daemon.log" 2>&1 &
fi
dpid=$!
i=0
until inroot test -S /run/vsp/vsp.sock; do
	i=$((i + 1))
	if [ $i -gt 200 ] || ! kill -0 $dpid 2>/dev/null; then
		kill $dpid 2>/dev/null || true
		cat "$WORK/daemon.log"
		fail "the unit's ExecStart ($execstart) did not bring up /run/vsp/vsp.sock within 20 s"
	fi
	sleep 0.1
done
sock=$(inroot stat -c '%G %a' /run/vsp/vsp.sock)
[ "$sock" = "vsp 660" ] || { kill $dpid; fail "control socket is '$sock' (group, mode), want 'vsp 660'"; }
inroot /usr/bin/vsp list --socket /run/vsp/vsp.sock >"$WORK/list.out" 2>&1 || { cat "$WORK/list.out"; fail "vsp list against the packaged daemon"; }
kill -TERM $dpid
wait $dpid || { cat "$WORK/daemon.log"; fail "the daemon did not exit cleanly on SIGTERM"; }
say "daemon from the unit's ExecStart: up, socket group vsp mode 660, vsp list answered, stopped on SIGTERM"

# What an administrator and the service leave behind: a port file and the
# trust-on-first-use store. dpkg -r must keep these and remove the rest.
# On a host, an existing trust store is left alone (and out of the check).
PORTFILE=/etc/vsp/ports.d/test-deb-$$.toml
inroot sh -c "printf '[device]\naddress = \"10.1.0.1:1470\"\n' >$PORTFILE"
CREATED=$PORTFILE
if ! inroot test -e /var/lib/vsp/known_devices; then
	inroot sh -c 'mkdir -p /var/lib/vsp && echo "10.1.0.1:1470 sha256:00" >/var/lib/vsp/known_devices'
	CREATED="$CREATED /var/lib/vsp/known_devices"
fi
inroot dpkg -r vsp >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -r"; }
snapshot >"$WORK/removed"
left=$(leftovers "$WORK/removed")
# Removal keeps whether the unit is enabled (the link and, in a chroot,
# deb-systemd-helper's record of it), as dh_installsystemd does; purge
# removes them.
enabled=$WANTS
if [ -n "$R" ]; then
	enabled="$enabled /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/vsp.service
		/var/lib/systemd/deb-systemd-helper-enabled/vsp.service.dsh-also"
fi
want=$(printf '%s\n' /etc/vsp /etc/vsp/ports.d $PORTFILE /var/lib/vsp /var/lib/vsp/known_devices $enabled | sort | comm -23 - "$WORK/before")
if [ "$left" != "$want" ]; then
	printf 'left after dpkg -r:\n%s\nexpected only configuration:\n%s\n' "$left" "$want" >&2
	fail "dpkg -r left stray files"
fi
say "dpkg -r: only configuration left ($(echo "$left" | wc -l) paths)"

inroot rm $CREATED
inroot dpkg -P vsp >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -P"; }
HOST_INSTALLED=0
snapshot >"$WORK/purged"
left=$(leftovers "$WORK/purged")
if [ -n "$left" ]; then
	printf 'left after dpkg -P:\n%s\n' "$left" >&2
	fail "dpkg -P left stray files"
fi
say "dpkg -P: nothing left"
say "PASS ($MODE)"
