#!/bin/sh
# Build the vsp Debian package with nfpm (pinned in packaging/go.mod).
#
#   packaging/build-deb.sh            # or: make deb
#
# Environment (all optional):
#   VERSION     package and `vsp version` version (default: from git, or 0.0.0~dev)
#   COMMIT      commit shown by `vsp version` (default: git HEAD, or unknown)
#   GOARCH      target architecture: amd64, arm64, arm (armhf), ... (default: host)
#   DIST        output directory (default: dist)
#   GO          go command (default: go)
# Prints the path of the .deb on its last line.
set -eu

cd "$(dirname "$0")/.."
GO=${GO:-go}
DIST=${DIST:-dist}
case "$DIST" in /*) ;; *) DIST=$PWD/$DIST ;; esac
HOSTARCH=$($GO env GOHOSTARCH)
ARCH=${GOARCH:-$HOSTARCH}
# Only the packaged binaries are cross-built; generators and nfpm run here.
unset GOARCH GOOS

if [ -z "${COMMIT:-}" ]; then
	COMMIT=$(git rev-parse HEAD 2>/dev/null || echo unknown)
fi
if [ -z "${VERSION:-}" ]; then
	# v1.2.3 -> 1.2.3; without a tag: 0.0.0~git<date>.<hash>, which sorts
	# below any release. A Debian version must start with a digit.
	if d=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
		VERSION=$(echo "$d" | sed -e 's/^v//' -e 's/-\([0-9]*\)-g/+git\1./')
	elif h=$(git rev-parse --short=12 HEAD 2>/dev/null); then
		VERSION=0.0.0~git$(git show -s --format=%cd --date=format:%Y%m%d HEAD).$h
	else
		VERSION=0.0.0~dev
	fi
fi
case "$VERSION" in
[0-9]*) ;;
*) echo "build-deb: VERSION must start with a digit, got $VERSION" >&2; exit 2 ;;
esac

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/man" "$STAGE/completion" "$STAGE/host" "$DIST"

LDFLAGS="-s -w -X main.version=$VERSION -X main.commit=$COMMIT"
CGO_ENABLED=0 GOOS=linux GOARCH=$ARCH $GO build -trimpath -ldflags "$LDFLAGS" -o "$STAGE/" ./cmd/vsp ./cmd/ezsim

# Man pages and completions come from a host build of the same source, so
# they match the packaged binaries even when cross-building.
if [ "$ARCH" = "$HOSTARCH" ]; then
	HOST=$STAGE
else
	HOST=$STAGE/host
	CGO_ENABLED=0 $GO build -o "$HOST/" ./cmd/vsp ./cmd/ezsim
fi
"$HOST/vsp" gen-docs "$STAGE/docs"
"$HOST/ezsim" gen-docs "$STAGE/docs"
for m in vsp ezsim; do
	gzip -9n <"$STAGE/docs/man/$m.1" >"$STAGE/man/$m.1.gz"
done
"$HOST/vsp" completion bash >"$STAGE/completion/vsp.bash"
"$HOST/vsp" completion zsh >"$STAGE/completion/_vsp"
"$HOST/vsp" completion fish >"$STAGE/completion/vsp.fish"
for sh in bash zsh fish; do "$HOST/ezsim" completion $sh >"$STAGE/completion/ezsim.$sh"; done
mv "$STAGE/completion/ezsim.zsh" "$STAGE/completion/_ezsim"
mkdir -p "$STAGE/doc" && gzip -9n <CHANGELOG.md >"$STAGE/doc/changelog.gz"
# The unit comes from the same template `vsp service install` uses; the
# daemon runs with the root defaults (/etc/vsp/ports.d, /run/vsp, /var/lib/vsp).
"$HOST/vsp" service unit --user=false --executable /usr/bin/vsp >"$STAGE/vsp.service"

case "$ARCH" in
arm) DEBARCH=armhf ;;
386) DEBARCH=i386 ;;
*) DEBARCH=$ARCH ;;
esac
OUT="$DIST/vsp_${VERSION}_${DEBARCH}.deb"
rm -f "$OUT"
VSP_ROOT=$PWD VSP_STAGE=$STAGE VSP_VERSION=$VERSION VSP_ARCH=$DEBARCH \
	VSP_MAINTAINER=${VSP_MAINTAINER:-vsp developers <vsp@vsp-dev.invalid>} \
	$GO -C packaging tool nfpm package --config "$PWD/packaging/nfpm.yaml" --packager deb --target "$OUT" >&2
echo "$OUT"
